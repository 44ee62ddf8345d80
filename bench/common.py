"""What every benchmark shares: database choice and setup, building a scale once, timing, the JSON line.

Database: ``DATABASE_URL`` if set, else a SQLite file of the benchmark's own
(``var/bench-<scale>.sqlite3``) so a benchmark never clobbers the demo database. A PostgreSQL database
named in ``DATABASE_URL`` is created if it does not exist yet.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from urllib.parse import unquote, urlsplit

SCALES = ("tiny", "demo", "yaodu")
DEFAULT_SCALE = "yaodu"
SEED = 1


def setup(scale: str) -> None:
    """Choose the database, set Django up and migrate."""
    os.environ.setdefault("BIHUAN_DEMO", "1")
    os.environ.setdefault("BIHUAN_DEBUG", "false")  # as in production: no query log kept in memory
    os.environ.setdefault("DATABASE_URL", f"sqlite:///var/bench-{scale}.sqlite3")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bihuan.settings")
    _create_postgres_database(os.environ["DATABASE_URL"])

    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command

    if settings.DATABASES["default"]["ENGINE"].endswith("sqlite3"):
        from pathlib import Path

        Path(settings.DATABASES["default"]["NAME"]).parent.mkdir(parents=True, exist_ok=True)
    call_command("migrate", interactive=False, verbosity=0)


def _create_postgres_database(url: str) -> None:
    parts = urlsplit(url)
    if parts.scheme not in {"postgres", "postgresql"}:
        return
    import psycopg
    from psycopg import sql

    name = unquote(parts.path.lstrip("/"))
    params = {"dbname": "postgres", "user": unquote(parts.username or "") or None,
              "password": unquote(parts.password or "") or None, "host": parts.hostname or None,
              "port": parts.port or None}
    with psycopg.connect(**{k: v for k, v in params.items() if v is not None}, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
            print(f"created database {name}")


def database() -> str:
    from django.db import connection

    return connection.vendor


def current_scale() -> dict | None:
    """The generator's record of what the database holds, if the register still matches it."""
    from bihuan.core.models import AuditEntry
    from bihuan.register.models import LevelName, Resident

    entry = AuditEntry.objects.filter(action="register.generate").order_by("-id").first()
    if entry is None or not LevelName.objects.exists():
        return None
    info = entry.changes
    units = {str(level): n for level, n in _units_per_level().items()}
    if Resident.objects.count() != info.get("residents") or units != info.get("units"):
        return None
    return info


def _units_per_level() -> dict[int, int]:
    from django.db.models import Count

    from bihuan.register.models import Unit

    return dict(Unit.objects.order_by().values_list("level").annotate(n=Count("id")).values_list("level", "n"))


def build(scale: str, out: Callable[[str], None] = print) -> dict:
    """Reset the register and generate ``scale`` (untimed reset, timed generation in the result)."""
    from bihuan.demo.generate import generate_district, register_is_empty, reset_register

    if not register_is_empty():
        reset_register(out=out)
    return generate_district(scale, seed=SEED, out=out)


def ensure_scale(scale: str, out: Callable[[str], None] = print) -> dict:
    """Build ``scale`` unless the database already holds it (then reuse it)."""
    info = current_scale()
    if info and info.get("preset") == scale and info.get("seed") == SEED:
        out(f"reusing the {scale} district in the {database()} database "
            f"({info['residents']:,} residents, {info['households']:,} households)")
        return info
    out(f"building the {scale} district in the {database()} database …")
    return build(scale, out=out)


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def best_of(fn: Callable[[], object], repeat: int = 5, warmup: int = 1) -> float:
    """The fastest of ``repeat`` runs after ``warmup`` untimed ones (machines here are noisy)."""
    for _ in range(warmup):
        fn()
    return min(timed(fn) for _ in range(repeat))


def report(bench: str, scale: str, n: int, seconds: float, baseline: str, baseline_seconds: float,
           **extra) -> dict:
    """Print the result as the last line: one JSON object in the format of DESIGN.md (``extra`` fields, such as
    ``peak_mb``, follow the usual ones)."""
    result = {
        "bench": bench,
        "scale": scale,
        "n": n,
        "seconds": round(seconds, 6),
        "baseline": baseline,
        "baseline_seconds": round(baseline_seconds, 6),
        "ratio": round(seconds / baseline_seconds, 3) if baseline_seconds else None,
        **extra,
    }
    print(json.dumps(result, ensure_ascii=False), flush=True)
    return result


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nobody listens on right now."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def database_url() -> str:
    """A DATABASE_URL naming the database Django is connected to (for a server or worker subprocess)."""
    from urllib.parse import quote

    from django.db import connection

    s = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{s['NAME']}"  # an absolute NAME gives sqlite:////abs/path
    auth = quote(s.get("USER") or "")
    if s.get("PASSWORD"):
        auth += ":" + quote(s["PASSWORD"])
    host = s.get("HOST") or "127.0.0.1"
    port = f":{s['PORT']}" if s.get("PORT") else ""
    return f"postgres://{auth}{'@' if auth else ''}{host}{port}/{quote(s['NAME'])}"


class Gunicorn:
    """``python -m gunicorn bihuan.wsgi`` on 127.0.0.1 as a subprocess, for benchmarks through the real stack.

    Use as a context manager; ``base`` is the server's URL. The server uses the database Django is connected
    to, with DEBUG off (as in production). Its log goes to ``log_path``, shown if it fails to start.
    """

    def __init__(self, workers: int = 2, env: dict | None = None, log_path: str | None = None,
                 timeout: float = 60.0, extra_args: list[str] | None = None):
        import sys
        import tempfile

        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.workers = workers
        self.timeout = timeout
        self.env = {**os.environ, "BIHUAN_DEMO": "1", "BIHUAN_DEBUG": "false", "DATABASE_URL": database_url(),
                    "BIHUAN_ALLOWED_HOSTS": "127.0.0.1,localhost", "BIHUAN_LOG_LEVEL": "WARNING",
                    # one load generator is one address: the public pages' limits still count, never refuse
                    "BIHUAN_PUBLIC_RATE_PER_ADDRESS": "1000000000", "BIHUAN_PUBLIC_RATE_PER_LINK": "1000000000",
                    **(env or {})}
        self.log_path = log_path or tempfile.mkstemp(prefix="bihuan-gunicorn-", suffix=".log")[1]
        self.command = [sys.executable, "-m", "gunicorn", "-c", "python:bihuan.gunicorn_conf", "bihuan.wsgi",
                        "-w", str(workers), "--bind",
                        f"127.0.0.1:{self.port}", "--graceful-timeout", "5", "--timeout", "120", *(extra_args or [])]
        self.process = None

    def __enter__(self) -> Gunicorn:
        import subprocess
        import urllib.request
        from pathlib import Path

        root = Path(__file__).resolve().parent.parent
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - closed in __exit__
        self.process = subprocess.Popen(self.command, cwd=root, env=self.env, stdout=self._log,
                                        stderr=subprocess.STDOUT)
        deadline = time.monotonic() + self.timeout
        while True:
            if self.process.poll() is not None:
                self.__exit__(None, None, None)
                raise RuntimeError(f"gunicorn exited with {self.process.returncode}:\n{self.log()}")
            try:
                with urllib.request.urlopen(f"{self.base}/login/", timeout=5) as response:  # noqa: S310
                    if response.status == 200:
                        return self
            except OSError:
                pass
            if time.monotonic() > deadline:
                self.__exit__(None, None, None)
                raise RuntimeError(f"gunicorn did not answer within {self.timeout} s:\n{self.log()}")
            time.sleep(0.2)

    def log(self) -> str:
        from pathlib import Path

        return Path(self.log_path).read_text(errors="replace")[-5000:]

    def __exit__(self, *exc) -> None:
        import signal
        import subprocess

        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)  # gunicorn's graceful stop; it stops its own workers
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        self._log.close()


def http_load(port: int, requests: list[tuple[str, str, bytes, dict]], *, threads: int,
              time_limit: float = 120.0, ok: tuple[int, ...] = (200,)) -> tuple[float, int]:
    """Send every ``(method, path, body, headers)`` of ``requests`` from ``threads`` client threads over
    keep-alive connections to 127.0.0.1:``port``; (wall seconds, requests done). Any status outside ``ok`` is
    an error (raised at the end). Stops early at ``time_limit``."""
    import http.client
    import threading

    lock = threading.Lock()
    queue = iter(requests)
    done = [0]
    errors: list[str] = []
    deadline = time.monotonic() + time_limit

    def client() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        try:
            while time.monotonic() < deadline:
                with lock:
                    item = next(queue, None)
                if item is None:
                    return
                method, path, body, headers = item
                try:
                    conn.request(method, path, body=body or None,
                                 headers={"Content-Length": str(len(body or b"")), **headers})
                    response = conn.getresponse()
                    text = response.read()
                except (OSError, http.client.HTTPException) as exc:
                    conn.close()
                    with lock:
                        errors.append(f"{method} {path}: {exc!r}")
                    continue
                with lock:
                    if response.status in ok:
                        done[0] += 1
                    else:
                        errors.append(f"{method} {path}: HTTP {response.status} {text[:200]!r}")
        finally:
            conn.close()

    workers = [threading.Thread(target=client) for _ in range(threads)]
    start = time.perf_counter()
    for t in workers:
        t.start()
    for t in workers:
        t.join()
    seconds = time.perf_counter() - start
    if errors:
        raise RuntimeError(f"{len(errors)} requests failed, e.g. {errors[:3]}")
    return seconds, done[0]
