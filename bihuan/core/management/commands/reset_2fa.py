"""`bihuan reset_2fa USERNAME --reason TEXT`: remove a user's second factor (a lost phone); they enrol again at the
next sign-in. The same action as the staff page's reset (``bihuan.second_factor.do_reset_second_factor``): audited
(actor: the console), and the person is told through the outbox."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from bihuan.core.errors import Refused
from bihuan.second_factor import do_reset_second_factor


class Command(BaseCommand):
    help = "Remove USERNAME's second factor (authenticator app and recovery codes); audited, the person is told."

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--reason", required=True, help="why (kept in the audit log and told to the person)")

    def handle(self, *args, username: str, reason: str, **options):
        user = get_user_model().objects.filter(username=username).first()
        if user is None:
            raise CommandError(f"no user {username!r}")
        try:
            do_reset_second_factor(user=user, reason=reason, acting_user=None)
        except Refused as exc:
            raise CommandError(str(exc)) from None
        self.stderr.write(f"The second factor of {username} is reset: they enrol again at the next sign-in.")
