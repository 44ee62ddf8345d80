"""`bihuan import_register FILE.xlsx --user USERNAME`: load a register workbook (单位 / 户 / 居民 / 人员).

People on the 人员 sheet are appointed after the register's sheets; their first passwords go to an .xlsx file
(``--logins``), never to the terminal.

Every row is checked first; on any error nothing is written, the errors are listed (sheet, row, column,
reason) and the command exits with status 1.
"""

from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.core.management.base import BaseCommand, CommandError
from django.http import Http404

from bihuan.register.models import Unit
from bihuan.register.workbook import import_workbook

MAX_LISTED = 1000


class Command(BaseCommand):
    help = ("Import units, households, residents and staff (人员) from a register workbook (.xlsx); all or nothing. "
            "New staff's first passwords go to an .xlsx file (--logins).")

    def add_arguments(self, parser):
        parser.add_argument("file", help="the .xlsx workbook")
        who = parser.add_mutually_exclusive_group(required=True)
        who.add_argument("--user", help="username of the staff member the import is done as (scope, audit)")
        who.add_argument("--system", action="store_true",
                         help="import as the system, without scope checks (loading a new district into an empty "
                              "register)")
        parser.add_argument("--root", metavar="UNIT_CODE", help="refuse rows outside this unit's subtree")
        parser.add_argument("--logins", metavar="OUT.xlsx",
                            help="where to write new staff's logins and first passwords (default: "
                                 "logins-<time>.xlsx beside FILE)")

    def handle(self, *args, file, user, system, root, logins=None, **options):
        acting_user = None if system else _user(user)
        root_unit = None
        if root:
            root_unit = Unit.objects.filter(code=root).first()
            if root_unit is None:
                raise CommandError(f"no unit with code {root!r}")
        try:
            with open(file, "rb") as stream:
                result = import_workbook(stream, acting_user=acting_user, root_unit=root_unit)
        except OSError as exc:
            raise CommandError(f"cannot open {file}: {exc.strerror}") from exc
        except PermissionDenied as exc:
            raise CommandError(f"permission denied: {exc}") from exc
        except Http404 as exc:
            raise CommandError(f"{exc}") from exc
        if result.errors:
            self.stderr.write(f"{result.file_name}：发现 {len(result.errors)} 处错误，未导入任何数据 "
                              f"({len(result.errors)} errors, nothing imported)")
            self.stderr.write("工作表\t行\t列\t原因")
            for error in result.errors[:MAX_LISTED]:
                self.stderr.write(f"{error.sheet}\t{error.row}\t{error.field}\t{error.reason}")
            if len(result.errors) > MAX_LISTED:
                self.stderr.write(f"……另有 {len(result.errors) - MAX_LISTED} 处错误 (and more)")
            raise CommandError(f"{len(result.errors)} errors in {result.file_name}; nothing was imported",
                               returncode=1)
        self.stdout.write(self.style.SUCCESS(f"{result.file_name}：导入完成 (imported)"))
        for label, count in result.summary.items():
            self.stdout.write(f"  {label}：{count}")
        from .import_staff import write_logins

        write_logins(self, result, file, logins)


def _user(username: str):
    try:
        return get_user_model().objects.get(username=username)
    except get_user_model().DoesNotExist:
        raise CommandError(f"no user {username!r}") from None
