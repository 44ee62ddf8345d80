"""`bihuan import_register FILE.xlsx --user USERNAME`: load a register workbook (单位 / 户 / 居民 / 人员).

People on the 人员 sheet are appointed after the register's sheets; their first passwords go to an .xlsx file
(``--logins``), never to the terminal.

Every row is checked first; on any error nothing is written, the errors are listed (sheet, row, column,
reason) and the command exits with status 1.
"""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from bihuan.register.models import Unit

from ..workbook_command import acting_user, add_who_and_logins, run_import, write_logins


class Command(BaseCommand):
    help = ("Import units, households, residents and staff (人员) from a register workbook (.xlsx); all or nothing. "
            "New staff's first passwords go to an .xlsx file (--logins).")

    def add_arguments(self, parser):
        parser.add_argument("file", help="the .xlsx workbook")
        add_who_and_logins(parser, who_help="username of the staff member the import is done as (scope, audit)")
        parser.add_argument("--root", metavar="UNIT_CODE", help="refuse rows outside this unit's subtree")

    def handle(self, *args, file, user, system, root, logins=None, **options):
        root_unit = None
        if root:
            root_unit = Unit.objects.filter(code=root).first()
            if root_unit is None:
                raise CommandError(f"no unit with code {root!r}")
        result = run_import(self, file, acting_user=acting_user(user, system), root_unit=root_unit)
        self.stdout.write(self.style.SUCCESS(f"{result.file_name}：导入完成 (imported)"))
        for label, count in result.summary.items():
            self.stdout.write(f"  {label}：{count}")
        write_logins(self, result, file, logins)
