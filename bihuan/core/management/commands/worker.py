from django.core.management.base import BaseCommand

from bihuan.core import worker


class Command(BaseCommand):
    help = ("Run background work (reminders, escalation, fan-out, notifications) from state in the database. "
            "Run as many as you like, on any machines: rows are claimed, never lost or done twice.")

    def add_arguments(self, parser):
        parser.add_argument("--interval", type=float, default=2.0, help="seconds between idle ticks (default 2)")
        parser.add_argument("--once", action="store_true", help="run one tick and exit")

    def handle(self, *args, interval, once, **options):
        if once:
            self.stdout.write(str(worker.run_tick()))
        else:
            worker.run_forever(interval=interval)
