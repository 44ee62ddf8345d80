"""`bihuan create_token USERNAME [--name NAME]`: a bearer token for /api/v1/, printed once."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from bihuan.core.actions import TokenError, do_create_api_token


class Command(BaseCommand):
    help = "Create an API token for USERNAME and print its key (the only time it is shown)."

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--name", default="command line", help="what the token is for (default: %(default)s)")

    def handle(self, *args, username: str, name: str, **options):
        try:
            user = get_user_model().objects.get(username=username)
        except get_user_model().DoesNotExist:
            raise CommandError(f"no user {username!r}") from None
        try:
            token, key = do_create_api_token(user=user, name=name, acting_user=None)
        except TokenError as exc:
            raise CommandError(str(exc)) from exc
        # The key alone on stdout (scripts capture it); the explanation on stderr.
        self.stderr.write(f"Token {token.prefix}… ({token.name}) for {username}. "
                          "Store the key now: it is not stored and cannot be shown again.")
        self.stdout.write(key)
