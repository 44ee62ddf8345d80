"""`bihuan import_staff FILE.xlsx --user USERNAME [--logins OUT.xlsx]`: appoint and change staff from the 人员 sheet.

Reads only the 人员 sheet of a register workbook (the other sheets are ignored; use import_register for them). Every
row goes through the same rules as the staff pages; on any error nothing is written, the errors are listed (sheet,
row, column, reason) and the command exits with status 1. The first passwords of new accounts are written to an
.xlsx file (``--logins``, by default ``logins-<time>.xlsx`` beside FILE), never to the terminal.
"""

from __future__ import annotations

from django.core.management.base import BaseCommand

from ..workbook_command import acting_user, add_who_and_logins, run_import, write_logins


class Command(BaseCommand):
    help = ("Appoint and change staff from the 人员 sheet of a register workbook (.xlsx); all or nothing. New "
            "accounts' first passwords go to an .xlsx file (--logins), to be changed at the first login.")

    def add_arguments(self, parser):
        parser.add_argument("file", help="the .xlsx workbook with a 人员 sheet")
        add_who_and_logins(parser, who_help="username of the unit admin the import is done as (scope, roles, audit)")

    def handle(self, *args, file, user, system, logins, **options):
        result = run_import(self, file, acting_user=acting_user(user, system), staff_only=True)
        self.stdout.write(self.style.SUCCESS(
            f"{result.file_name}：新建人员 {result.staff_counts['created']}，更新人员 {result.staff_counts['updated']} "
            f"(staff created / updated)"))
        write_logins(self, result, file, logins)
