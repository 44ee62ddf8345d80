"""`bihuan demo`: migrate, generate the demo district if the register is empty, print a login for each
level, and serve it with gunicorn at 127.0.0.1:8000 with a worker beside it."""

import subprocess
import sys

from django.core.management import call_command
from django.core.management.base import BaseCommand

from bihuan.demo.guard import require_demo_mode
from bihuan.register.models import Staff, Unit

DEMO_PASSWORD = "bihuan2022"  # the password the generator gives every generated account


class Command(BaseCommand):
    help = ("Run the demo: migrate, generate the 'demo' district once, print logins, serve on 127.0.0.1:8000 "
            "and run a background worker beside the server (Ctrl-C stops both). Demo mode (BIHUAN_DEMO=1) only.")

    def add_arguments(self, parser):
        parser.add_argument("--bind", default="127.0.0.1:8000", help="address for gunicorn (default 127.0.0.1:8000)")
        parser.add_argument("--no-serve", action="store_true", help="prepare the database and print logins only")

    def handle(self, *args, bind, no_serve, **options):
        require_demo_mode("demo")
        call_command("migrate", interactive=False, verbosity=0)
        if not Unit.objects.exists():
            self.stdout.write("Generating the demo district …")
            call_command("generate", preset="demo", seed=1)
        self.stdout.write(self.style.SUCCESS(f"\nBihuan demo at http://{bind}/  —  password for every login: "
                                              f"{DEMO_PASSWORD}"))
        for level, username, unit, role in demo_logins():
            self.stdout.write(f"  level {level}: {username:<16} {unit} ({role})")
        if no_serve:
            return
        sys.stdout.flush()
        worker = subprocess.Popen([sys.executable, "-m", "bihuan", "worker"])
        server = subprocess.Popen([sys.executable, "-m", "gunicorn", "bihuan.wsgi", "--bind", bind,
                                   "--workers", "2", "--access-logfile", "-"])
        try:
            server.wait()
        except KeyboardInterrupt:
            pass
        finally:
            for proc in (server, worker):
                proc.terminate()
            for proc in (server, worker):
                proc.wait(timeout=20)


def demo_logins():
    """The first staff account of each level 1–6 (by tree order)."""
    rows = []
    for level in range(1, 7):
        staff = (Staff.objects.filter(unit__level=level).select_related("user", "unit")
                 .order_by("unit__path", "id").first())
        if staff:
            rows.append((level, staff.user.username, staff.unit.name, staff.get_role_display()))
    return rows
