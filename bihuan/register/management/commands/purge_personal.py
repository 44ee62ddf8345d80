import datetime as dt

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from bihuan.register.actions import do_purge_personal_data


class Command(BaseCommand):
    help = ("Remove names, ID numbers and phones of residents who moved out or died before a date (default: "
            "the retention period, --days, ago). Rows stay, so anonymous counts are kept. Idempotent.")

    def add_arguments(self, parser):
        parser.add_argument("--before", help="YYYY-MM-DD: purge records last changed before this date")
        parser.add_argument("--days", type=int, default=365, help="retention in days when --before is not given")

    def handle(self, *args, before, days, **options):
        try:
            cutoff = dt.date.fromisoformat(before) if before else timezone.localdate() - dt.timedelta(days=days)
        except ValueError:
            raise CommandError("--before must be a date like 2023-01-31") from None
        n = do_purge_personal_data(before=cutoff)
        self.stdout.write(f"purged personal data of {n} residents (moved out or deceased before {cutoff})")
