"""What ``import_register`` and ``import_staff`` share: who the import is done as, running it with clear
command errors, listing a refused workbook's errors, and writing new accounts' first passwords to a file."""

from __future__ import annotations

import os

from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.core.management.base import CommandError
from django.http import Http404
from django.utils import timezone

from bihuan.register.workbook import import_workbook
from bihuan.register.workbook.logins import logins_bytes

MAX_LISTED = 1000  # errors printed; the count says how many more


def add_who_and_logins(parser, *, who_help: str) -> None:
    who = parser.add_mutually_exclusive_group(required=True)
    who.add_argument("--user", help=who_help)
    who.add_argument("--system", action="store_true",
                     help="import as the system, without scope checks (loading a new district into an empty register)")
    parser.add_argument("--logins", metavar="OUT.xlsx",
                        help="where to write new staff's logins and first passwords (default: logins-<time>.xlsx "
                             "beside FILE)")


def acting_user(username: str | None, system: bool):
    if system:
        return None
    try:
        return get_user_model().objects.get(username=username)
    except get_user_model().DoesNotExist:
        raise CommandError(f"no user {username!r}") from None


def run_import(command, file: str, **options):
    """Import ``file`` (all or nothing); on refusal list every error by sheet, row, column and reason."""
    try:
        with open(file, "rb") as stream:
            result = import_workbook(stream, **options)
    except OSError as exc:
        raise CommandError(f"cannot open {file}: {exc.strerror}") from exc
    except PermissionDenied as exc:
        raise CommandError(f"permission denied: {exc}") from exc
    except Http404 as exc:
        raise CommandError(f"{exc}") from exc
    if result.errors:
        command.stderr.write(f"{result.file_name}：发现 {len(result.errors)} 处错误，未导入任何数据 "
                             f"({len(result.errors)} errors, nothing imported)")
        command.stderr.write("工作表\t行\t列\t原因")
        for error in result.errors[:MAX_LISTED]:
            command.stderr.write(f"{error.sheet}\t{error.row}\t{error.field}\t{error.reason}")
        if len(result.errors) > MAX_LISTED:
            command.stderr.write(f"……另有 {len(result.errors) - MAX_LISTED} 处错误 (and more)")
        raise CommandError(f"{len(result.errors)} errors in {result.file_name}; nothing was imported", returncode=1)
    return result


def write_logins(command, result, file: str, out: str | None) -> None:
    """Write the first passwords of new accounts to ``out`` (0600), if there are any — never to the terminal."""
    if not result.logins:
        return
    out = out or os.path.join(os.path.dirname(os.path.abspath(file)),
                              f"logins-{timezone.localtime():%Y%m%d-%H%M%S}.xlsx")
    fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as stream:
        stream.write(logins_bytes(result.logins))
    command.stdout.write(f"{len(result.logins)} 个初始密码已写入 {out}（首次登录须修改）"
                         f"(first passwords written to {out})")
