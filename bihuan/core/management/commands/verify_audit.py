"""`bihuan verify_audit`: seal the audit rows not yet chained, then check the whole chain and name the first
broken link (exit status 1 if there is one)."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from bihuan.core import audit


class Command(BaseCommand):
    help = "Check the audit log's hash chain; report the first row that was changed or deleted."

    def add_arguments(self, parser):
        parser.add_argument("--no-seal", action="store_true",
                            help="only check: do not chain the rows written since the worker last sealed")

    def handle(self, *args, no_seal: bool = False, **options):
        sealed = 0 if no_seal else audit.seal_all()
        verdict = audit.verify()
        if not verdict.ok:
            raise CommandError(f"audit chain broken at link {verdict.broken_seq} (row {verdict.broken_id}): "
                               f"{verdict.reason}; {verdict.checked} links before it hold")
        self.stdout.write(f"audit chain holds: {verdict.checked} rows checked"
                          + (f", {sealed} newly sealed" if sealed else "")
                          + (f", {verdict.unsealed} not yet sealed" if verdict.unsealed else ""))
