"""The writes of the account pages: one's own language, signing out everywhere. Each with its audit row."""

from __future__ import annotations

from django.contrib.sessions.models import Session
from django.db import transaction
from django.utils import timezone

from bihuan.core import audit
from bihuan.core.errors import Refused
from bihuan.register.models import Language, Staff


def do_set_own_language(*, user, language: str) -> str:
    """Remember the person's language (``Staff.language``: it wins over the browser's on every page)."""
    if language not in Language.values:
        raise Refused("language", "zh-hans, en or empty (the browser's)")
    with transaction.atomic():
        changed = Staff.objects.filter(user=user).exclude(language=language).update(language=language)
        if changed:
            audit.record(actor=user, action="staff.language", target_type="auth.user", target_id=str(user.pk),
                         changes={"language": language})
    return language


def do_logout_everywhere(*, user, keep_session_key: str | None = None) -> int:
    """End every session of ``user`` (other phones and browsers), except ``keep_session_key`` if given."""
    ended = []
    for session in Session.objects.filter(expire_date__gt=timezone.now()).iterator():
        if session.get_decoded().get("_auth_user_id") == str(user.pk) and session.session_key != keep_session_key:
            ended.append(session.session_key)
    with transaction.atomic():
        Session.objects.filter(session_key__in=ended).delete()
        audit.record(actor=user, action="staff.logout_everywhere", target_type="auth.user", target_id=str(user.pk),
                     changes={"sessions": len(ended)})
    return len(ended)
