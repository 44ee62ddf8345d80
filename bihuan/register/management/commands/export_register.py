"""`bihuan export_register UNIT_CODE OUT.xlsx --user USERNAME`: a unit's subtree as a register workbook.

Masked by default (ID numbers as their last four characters, phones masked, birth years); ``--full --reason
"…"`` writes full ID numbers and phones (needs the reveal permission too; the only form that imports back).
Audited either way.
"""

import os

from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.core.management.base import BaseCommand, CommandError
from django.http import Http404

from bihuan.register.models import Unit
from bihuan.register.workbook import write_workbook


class Command(BaseCommand):
    help = "Export a unit's subtree (units, households, residents) to a register workbook (.xlsx), audited."

    def add_arguments(self, parser):
        parser.add_argument("unit_code", help="code of the unit whose subtree is exported")
        parser.add_argument("out", help="the .xlsx file to write")
        parser.add_argument("--user", required=True, help="username of the staff member the export is done as")
        parser.add_argument("--full", action="store_true", help="full ID numbers and phones (needs --reason)")
        parser.add_argument("--reason", default="", help="why full values are needed (audited)")

    def handle(self, *args, unit_code, out, user, full=False, reason="", **options):
        if full and not reason.strip():
            raise CommandError("--full needs --reason: why the full values are needed (it is audited)")
        try:
            acting_user = get_user_model().objects.get(username=user)
        except get_user_model().DoesNotExist:
            raise CommandError(f"no user {user!r}") from None
        unit = Unit.objects.filter(code=unit_code).first()
        if unit is None:
            raise CommandError(f"no unit with code {unit_code!r}")
        try:
            with open(out, "wb") as stream:
                counts = write_workbook(unit, stream, acting_user=acting_user,
                                        full_reason=reason.strip()[:200] if full else None)
        except (PermissionDenied, Http404) as exc:
            _remove(out)
            raise CommandError(f"{user} may not export {unit_code}: {exc}") from exc
        except OSError as exc:
            raise CommandError(f"cannot write {out}: {exc.strerror}") from exc
        self.stdout.write(self.style.SUCCESS(
            f"{out}: {counts.units} units, {counts.households} households, {counts.residents} residents "
            f"（单位 {counts.units}，户 {counts.households}，居民 {counts.residents}）"))


def _remove(path: str) -> None:
    try:
        os.remove(path)
    except OSError:
        pass
