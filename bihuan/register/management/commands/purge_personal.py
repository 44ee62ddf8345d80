import datetime as dt

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from bihuan.core.retention import purge_all


class Command(BaseCommand):
    help = ("Remove personal data kept past the retention period (default --days 365): names, ID numbers and "
            "phones of residents who moved out or died, of people pushed for verification, of closed control "
            "cases, and delivered notifications. Rows that counts are derived from stay. Idempotent.")

    def add_arguments(self, parser):
        parser.add_argument("--before", help="YYYY-MM-DD: purge records last changed before this date")
        parser.add_argument("--days", type=int, default=365, help="retention in days when --before is not given")

    def handle(self, *args, before, days, **options):
        try:
            cutoff = dt.date.fromisoformat(before) if before else timezone.localdate() - dt.timedelta(days=days)
        except ValueError:
            raise CommandError("--before must be a date like 2023-01-31") from None
        for name, n in purge_all(cutoff).items():
            self.stdout.write(f"{name}: {n} purged (before {cutoff})")
