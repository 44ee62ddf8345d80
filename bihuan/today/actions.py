"""The writes of the account pages: one's own language, signing out everywhere. Each with its audit row."""

from __future__ import annotations

from django.db import transaction

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

