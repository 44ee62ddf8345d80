"""`bihuan demo`: migrate, generate the demo district if the register is empty, print a login for each
level, and serve it with gunicorn at 127.0.0.1:8000 with a worker beside it."""

import os
import signal
import subprocess
import sys

from django.core.management import call_command
from django.core.management.base import BaseCommand

from bihuan.demo.guard import require_demo_mode
from bihuan.register.models import Staff, Unit

DEMO_PASSWORD = "bihuan2022"  # the password the generator gives every generated account


class Command(BaseCommand):
    help = ("Run the demo: migrate, generate the 'demo' district once, print logins, serve on 127.0.0.1:8000 "
            "and run a background worker beside the server (Ctrl-C or SIGTERM stops both). Demo mode (BIHUAN_DEMO=1) only.")

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
            if username in FIRST_TRY:
                self.stdout.write(f"      try first: {FIRST_TRY[username]}")
        if no_serve:
            return
        sys.stdout.flush()
        # The demo shows what a user sees: friendly error pages, not Django's debug pages (BIHUAN_DEBUG=1 for those).
        env = {**os.environ, "BIHUAN_DEBUG": os.environ.get("BIHUAN_DEBUG", "0"),
               "BIHUAN_PUBLIC_URL": os.environ.get("BIHUAN_PUBLIC_URL", f"http://{bind}")}
        worker = subprocess.Popen([sys.executable, "-m", "bihuan", "worker"], env=env)
        server = subprocess.Popen([sys.executable, "-m", "gunicorn", "bihuan.wsgi", "--bind", bind,
                                   "--config", "python:bihuan.gunicorn_conf",  # access log without query strings
                                   "--workers", "2", "--access-logfile", "-"], env=env)

        def stop(signum, frame):  # SIGTERM (a service manager, a container stop) ends both children too
            raise KeyboardInterrupt

        previous = signal.signal(signal.SIGTERM, stop)
        try:
            server.wait()
        except KeyboardInterrupt:
            pass
        finally:
            signal.signal(signal.SIGTERM, previous)
            for proc in (server, worker):
                if proc.poll() is None:
                    proc.terminate()
            for proc in (server, worker):
                try:
                    proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()


FIRST_TRY = {
    "commander": "the situation board: what is behind and where; 大屏 for the wall display",
    "office": "a directive half reached: remind the overdue units; upload today's pushed list",
    "township1": "sign the new directive for your unit; see which community is behind",
    "community1": "verify a pushed person (one form, one save); the transfer bounced between two communities",
    "grid1": "on a phone: tap 已通知 beside a household; the people to verify and the check-ins due",
}


def demo_logins():
    """The first staff account of each level 1–6 (by tree order)."""
    rows = []
    for level in range(1, 7):
        staff = (Staff.objects.filter(unit__level=level).select_related("user", "unit")
                 .order_by("unit__path", "id").first())
        if staff:
            rows.append((level, staff.user.username, staff.unit.name, staff.get_role_display()))
    return rows
