"""`bihuan import_staff FILE.xlsx --user USERNAME [--logins OUT.xlsx]`: appoint and change staff from the 人员 sheet.

Reads only the 人员 sheet of a register workbook (the other sheets are ignored; use import_register for them). Every
row goes through the same rules as the staff pages; on any error nothing is written, the errors are listed (sheet,
row, column, reason) and the command exits with status 1. The first passwords of new accounts are written to an
.xlsx file (``--logins``, by default ``logins-<time>.xlsx`` beside FILE), never to the terminal.
"""

import os

from django.core.exceptions import PermissionDenied
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from bihuan.register.workbook import import_workbook
from bihuan.register.workbook.logins import logins_bytes

from .import_register import MAX_LISTED, _user


class Command(BaseCommand):
    help = ("Appoint and change staff from the 人员 sheet of a register workbook (.xlsx); all or nothing. New "
            "accounts' first passwords go to an .xlsx file (--logins), to be changed at the first login.")

    def add_arguments(self, parser):
        parser.add_argument("file", help="the .xlsx workbook with a 人员 sheet")
        who = parser.add_mutually_exclusive_group(required=True)
        who.add_argument("--user", help="username of the unit admin the import is done as (scope, roles, audit)")
        who.add_argument("--system", action="store_true", help="import as the system, without scope checks")
        parser.add_argument("--logins", metavar="OUT.xlsx",
                            help="where to write the new logins and first passwords (default: logins-<time>.xlsx "
                                 "beside FILE)")

    def handle(self, *args, file, user, system, logins, **options):
        acting_user = None if system else _user(user)
        try:
            with open(file, "rb") as stream:
                result = import_workbook(stream, acting_user=acting_user, staff_only=True)
        except OSError as exc:
            raise CommandError(f"cannot open {file}: {exc.strerror}") from exc
        except PermissionDenied as exc:
            raise CommandError(f"permission denied: {exc}") from exc
        if result.errors:
            self.stderr.write(f"{result.file_name}：发现 {len(result.errors)} 处错误，未导入任何数据 "
                              f"({len(result.errors)} errors, nothing imported)")
            self.stderr.write("工作表\t行\t列\t原因")
            for error in result.errors[:MAX_LISTED]:
                self.stderr.write(f"{error.sheet}\t{error.row}\t{error.field}\t{error.reason}")
            raise CommandError(f"{len(result.errors)} errors in {result.file_name}; nothing was imported",
                               returncode=1)
        self.stdout.write(self.style.SUCCESS(
            f"{result.file_name}：新建人员 {result.staff_counts['created']}，更新人员 {result.staff_counts['updated']} "
            f"(staff created / updated)"))
        write_logins(self, result, file, logins)


def write_logins(command, result, file: str, out: str | None) -> None:
    """Write the first passwords of new accounts to ``out`` (0600), if there are any."""
    if not result.logins:
        return
    out = out or os.path.join(os.path.dirname(os.path.abspath(file)),
                              f"logins-{timezone.localtime():%Y%m%d-%H%M%S}.xlsx")
    fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as stream:
        stream.write(logins_bytes(result.logins))
    command.stdout.write(f"{len(result.logins)} 个初始密码已写入 {out}（首次登录须修改）"
                         f"(first passwords written to {out})")
