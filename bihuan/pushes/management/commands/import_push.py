"""`bihuan import_push FILE --source NAME --user USERNAME [--unit CODE]`: import a pushed list (大数据推送).

The file (.xlsx, .xls or .csv) is imported into the user's own unit (or ``--unit``) and processed to the end,
however large; the command prints the reconciliation (rows = imported + merged + rejected) and every
rejected row with its reason. Importing the same file again changes nothing and prints the same totals.
Exit status 1 when the file cannot be read.
"""

from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.core.management.base import BaseCommand, CommandError
from django.http import Http404

from bihuan.pushes.importing import create_batch, process_batch
from bihuan.pushes.models import BatchState, PushRow, RowResult
from bihuan.register.access import scope_of
from bihuan.register.models import Unit

MAX_LISTED = 1000


class Command(BaseCommand):
    help = "Import a pushed list (.xlsx, .xls or .csv) and print how every row was reconciled."

    def add_arguments(self, parser):
        parser.add_argument("file", help="the pushed list")
        parser.add_argument("--source", required=True, help="where the list comes from (推送来源), e.g. 省大数据中心")
        parser.add_argument("--user", required=True, help="username of the staff member importing it (scope, audit)")
        parser.add_argument("--unit", metavar="UNIT_CODE", help="import into this unit (default: the user's own)")

    def handle(self, *args, file, source, user, unit, **options):
        acting_user = _user(user)
        try:
            target = Unit.objects.get(code=unit) if unit else scope_of(acting_user).unit
        except Unit.DoesNotExist:
            raise CommandError(f"no unit with code {unit!r}") from None
        except PermissionDenied as exc:
            raise CommandError(f"permission denied: {exc}") from exc
        try:
            with open(file, "rb") as stream:
                data = stream.read()
        except OSError as exc:
            raise CommandError(f"cannot open {file}: {exc.strerror}") from exc
        try:
            batch = create_batch(data, file, source=source, unit=target, acting_user=acting_user)
        except PermissionDenied as exc:
            raise CommandError(f"permission denied: {exc}") from exc
        except Http404 as exc:
            raise CommandError(str(exc)) from exc
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        while batch.state in (BatchState.PENDING, BatchState.RUNNING):
            before = batch.rows_done
            batch = process_batch(batch)
            if batch.state in (BatchState.PENDING, BatchState.RUNNING) and batch.rows_done == before:
                raise CommandError(f"batch {batch.pk} is being processed by a worker ({batch.locked_by}); "
                                   "run the command again later to see the totals")
        if batch.state == BatchState.FAILED:
            raise CommandError(f"{batch.file_name}: {batch.error}", returncode=1)
        self.stdout.write(self.style.SUCCESS(f"{batch.file_name}（{batch.source}，批次 {batch.pk}）"))
        self.stdout.write(f"  总行数 {batch.rows_total} = 已导入 {batch.imported} + 已合并 {batch.merged} + "
                          f"已拒绝 {batch.rejected}")
        self.stdout.write(f"  rows {batch.rows_total} = imported {batch.imported} + merged {batch.merged} + "
                          f"rejected {batch.rejected}")
        rejected = (PushRow.objects.filter(batch=batch, result=RowResult.REJECTED).order_by("row_number")
                    .values_list("row_number", "reason")[:MAX_LISTED])
        for number, reason in rejected:
            self.stdout.write(f"  第 {number} 行：{reason}")
        if batch.rejected > MAX_LISTED:
            self.stdout.write(f"  ……另有 {batch.rejected - MAX_LISTED} 行被拒绝 (and more)")
        from bihuan.pushes.selectors import id_to_fix_rows

        for r in id_to_fix_rows(batch, limit=MAX_LISTED):
            self.stdout.write(f"  第 {r['row_number']} 行：{r['name']} {r['phone'] or '无电话'} 身份证号待修正"
                              f"（已导入，按电话核查 / ID to fix）：{r['problem']}")


def _user(username: str):
    try:
        return get_user_model().objects.get(username=username)
    except get_user_model().DoesNotExist:
        raise CommandError(f"no user {username!r}") from None
