"""System tests: real processes against the live test database.

The database is the one pytest-django made for this run (``transactional_db``: rows are committed, so other
processes see them); subprocesses get it as ``DATABASE_URL`` built from ``connection.settings_dict``. Here:

- ``smtp_sink``: an aiosmtpd SMTP server on 127.0.0.1 that keeps every message it receives;
- ``sms_gateway``: an HTTP SMS gateway on 127.0.0.1 (bearer token, ``{"id", "phone", "text"}``, answers 202);
- ``Worker``: ``bihuan worker`` as a subprocess that can be killed with SIGKILL and restarted;
- ``Gunicorn``: ``gunicorn bihuan.wsgi`` as a subprocess.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections import Counter
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import quote

import pytest

ROOT = Path(__file__).resolve().parents[2]
SMS_TOKEN = "system-test-sms-token"
MAIL_DOMAIN = "bihuan.system-test.cn"


def pytest_configure(config):
    config.addinivalue_line("markers", "system: runs real worker / server processes against the test database")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def live_database_url() -> str:
    """DATABASE_URL of the database this test runs on (the test database), for a subprocess."""
    from django.db import connection

    s = connection.settings_dict
    if connection.vendor == "sqlite":
        name = str(s["NAME"])
        if name == ":memory:" or name.startswith("file:"):
            pytest.fail("system tests need a file database (set DATABASES TEST NAME), not an in-memory one")
        return f"sqlite:///{Path(name).resolve()}"
    auth = quote(s.get("USER") or "")
    if s.get("PASSWORD"):
        auth += ":" + quote(s["PASSWORD"])
    host = s.get("HOST") or "127.0.0.1"
    port = f":{s['PORT']}" if s.get("PORT") else ""
    return f"postgres://{auth}{'@' if auth else ''}{host}{port}/{quote(s['NAME'])}"


def subprocess_env(**extra: str) -> dict[str, str]:
    env = {**os.environ, "BIHUAN_DEMO": "1", "BIHUAN_DEBUG": "false", "DATABASE_URL": live_database_url(),
           "BIHUAN_LOG_LEVEL": "WARNING", "PYTHONUNBUFFERED": "1",
           # one test machine is one address: the public pages' limits still count, never refuse
           "BIHUAN_PUBLIC_RATE_PER_ADDRESS": "1000000000", "BIHUAN_PUBLIC_RATE_PER_LINK": "1000000000"}
    for name in ("BIHUAN_SMTP_HOST", "BIHUAN_SMS_URL"):  # channels are on only where a test turns them on
        env.pop(name, None)
    env.update(extra)
    return env


# ---- SMTP ----------------------------------------------------------------------------------------------

class SmtpSink:
    """Keeps (Message-ID, recipients) of every message received, duplicates included."""

    def __init__(self):
        self.received: list[tuple[str, tuple[str, ...]]] = []
        self.lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope):
        from email import message_from_bytes

        message = message_from_bytes(envelope.content)
        with self.lock:
            self.received.append((str(message["Message-ID"]), tuple(envelope.rcpt_tos)))
        return "250 OK"

    def ids(self) -> Counter:
        with self.lock:
            return Counter(mid for mid, _ in self.received)


@pytest.fixture
def smtp_sink():
    from aiosmtpd.controller import Controller

    logging.getLogger("mail.log").setLevel(logging.WARNING)  # aiosmtpd logs every SMTP command at INFO
    sink = SmtpSink()
    controller = Controller(sink, hostname="127.0.0.1", port=free_port())
    controller.start()
    sink.port = controller.port
    yield sink
    controller.stop()


# ---- SMS gateway ---------------------------------------------------------------------------------------

class SmsGateway:
    """Checks the token and the body like the real gateway; keeps every accepted request's ``id``."""

    def __init__(self):
        self.received: list[str] = []
        self.refused: list[str] = []
        self.lock = threading.Lock()
        gateway = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                try:
                    body = json.loads(raw)
                except ValueError:
                    body = None
                ok = (self.path == "/sms" and self.headers.get("Authorization") == f"Bearer {SMS_TOKEN}"
                      and isinstance(body, dict) and set(body) == {"id", "phone", "text"}
                      and all(isinstance(v, str) and v for v in body.values()))
                with gateway.lock:
                    (gateway.received if ok else gateway.refused).append(body.get("id") if ok else repr(raw[:200]))
                data = json.dumps({"accepted": body["id"]} if ok else {"error": "bad request"}).encode()
                self.send_response(202 if ok else 400)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05},
                                       daemon=True)

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}/sms"

    def ids(self) -> Counter:
        with self.lock:
            return Counter(self.received)


@pytest.fixture
def sms_gateway():
    gateway = SmsGateway()
    gateway.thread.start()
    yield gateway
    gateway.server.shutdown()
    gateway.server.server_close()


def notify_env(smtp: SmtpSink, sms: SmsGateway) -> dict[str, str]:
    return {"BIHUAN_SMTP_HOST": "127.0.0.1", "BIHUAN_SMTP_PORT": str(smtp.port), "BIHUAN_SMTP_USE_TLS": "false",
            "BIHUAN_MAIL_FROM": f"闭环 <bihuan@{MAIL_DOMAIN}>", "BIHUAN_SMS_URL": sms.url,
            "BIHUAN_SMS_TOKEN": SMS_TOKEN, "BIHUAN_NOTIFY_TIMEOUT": "5",
            # A failed send is retried after 1 s, not 30 s: the test waits for every message.
            "BIHUAN_NOTIFY_RETRY_BASE": "1", "BIHUAN_NOTIFY_RETRY_CAP": "2"}


# ---- processes -----------------------------------------------------------------------------------------

class Worker:
    """One ``bihuan worker`` process. ``owner`` is the id its leases carry (host:pid, as core.worker makes it)."""

    def __init__(self, env: dict[str, str], interval: float = 0.05):
        self.log = tempfile.TemporaryFile()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "bihuan.cli", "worker", "--interval", str(interval)],
            cwd=ROOT, env=env, stdout=self.log, stderr=subprocess.STDOUT)
        self.owner = f"{socket.gethostname()}:{self.process.pid}"

    def alive(self) -> bool:
        return self.process.poll() is None

    def kill(self) -> None:
        """SIGKILL: no cleanup, no rollback handler, mid-statement if it is in one."""
        if self.alive():
            self.process.send_signal(signal.SIGKILL)
        self.process.wait(30)

    def output(self) -> str:
        self.log.seek(0)
        return self.log.read().decode(errors="replace")[-4000:]


def run_out_leases(owner: str) -> int:
    """What waiting out a dead worker's leases would do, without the wait: move them into the past."""
    from django.utils import timezone

    from bihuan.directives.models import Directive
    from bihuan.loops.models import Loop
    from bihuan.notify.models import Message, Robot

    past = timezone.now() - timedelta(seconds=1)
    return sum(model.objects.filter(locked_by=owner, locked_until__gt=past).update(locked_until=past)
               for model in (Directive, Loop, Message, Robot))


class Gunicorn:
    """``gunicorn bihuan.wsgi`` on 127.0.0.1 against the test database, DEBUG off."""

    def __init__(self, workers: int = 4, **env: str):
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log = tempfile.TemporaryFile()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "bihuan.wsgi", "-w", str(workers), "--bind",
             f"127.0.0.1:{self.port}", "--graceful-timeout", "5", "--timeout", "60"],
            cwd=ROOT, env=subprocess_env(BIHUAN_ALLOWED_HOSTS="127.0.0.1", **env), stdout=self.log,
            stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"gunicorn exited with {self.process.returncode}:\n{self.output()}")
            try:
                with urllib.request.urlopen(f"{self.base}/login/", timeout=5) as response:  # noqa: S310
                    if response.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"gunicorn did not answer within 60 s:\n{self.output()}")
            time.sleep(0.1)

    def output(self) -> str:
        self.log.seek(0)
        return self.log.read().decode(errors="replace")[-4000:]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)


@pytest.fixture
def gunicorn():
    servers: list[Gunicorn] = []

    def start(workers: int = 4, **env: str) -> Gunicorn:
        server = Gunicorn(workers, **env)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()
