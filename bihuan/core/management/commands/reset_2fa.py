"""`bihuan reset_2fa USERNAME --reason TEXT`: remove a user's second factor (a lost phone); they enrol again at the
next sign-in. Audited (actor: the console)."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from bihuan.core.totp import do_reset


class Command(BaseCommand):
    help = "Remove USERNAME's second factor (authenticator app and recovery codes); audited."

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--reason", required=True, help="why (kept in the audit log)")

    def handle(self, *args, username: str, reason: str, **options):
        user = get_user_model().objects.filter(username=username).first()
        if user is None:
            raise CommandError(f"no user {username!r}")
        do_reset(user=user, acting_user=None, reason=reason)
        self.stderr.write(f"The second factor of {username} is reset: they enrol again at the next sign-in.")
