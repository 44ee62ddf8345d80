"""`bihuan register_template OUT.xlsx`: the empty register workbook (单位 / 户 / 居民 / 人员 and 说明)."""

from django.core.management.base import BaseCommand, CommandError

from bihuan.register.workbook import template_bytes


class Command(BaseCommand):
    help = "Write the empty register workbook (.xlsx): sheets 单位, 户, 居民 and 人员 with Chinese headers, and the allowed values."

    def add_arguments(self, parser):
        parser.add_argument("out", help="the .xlsx file to write")

    def handle(self, *args, out, **options):
        try:
            with open(out, "wb") as stream:
                stream.write(template_bytes())
        except OSError as exc:
            raise CommandError(f"cannot write {out}: {exc.strerror}") from exc
        self.stdout.write(self.style.SUCCESS(f"{out}: template written (模板已生成)"))
