"""`bihuan create_token USERNAME [--name NAME] [--write] [--unit ID] [--days N]`: a bearer token for /api/v1/, printed
once (read-only unless --write; the unit, if given, is checked against the user's subtree on every request)."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from bihuan.core.actions import TokenError, do_create_api_token


class Command(BaseCommand):
    help = "Create an API token for USERNAME and print its key (the only time it is shown)."

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--name", default="command line", help="what the token is for (default: %(default)s)")
        parser.add_argument("--write", action="store_true", help="may write (POST, PATCH…); read-only without it")
        parser.add_argument("--unit", type=int, default=None, help="limit to this unit's subtree (an id)")
        parser.add_argument("--days", type=int, default=None, help="days until it expires (BIHUAN_API_TOKEN_DAYS)")

    def handle(self, *args, username: str, name: str, write: bool = False, unit: int | None = None,
               days: int | None = None, **options):
        try:
            user = get_user_model().objects.get(username=username)
        except get_user_model().DoesNotExist:
            raise CommandError(f"no user {username!r}") from None
        try:
            token, key = do_create_api_token(user=user, name=name, acting_user=None, write=write, subtree_unit_id=unit,
                                             days=days)
        except TokenError as exc:
            raise CommandError(str(exc)) from exc
        # The key alone on stdout (scripts capture it); the explanation on stderr.
        self.stderr.write(f"Token {token.prefix}… ({token.name}) for {username}. "
                          "Store the key now: it is not stored and cannot be shown again.")
        self.stdout.write(key)
