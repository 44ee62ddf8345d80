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
    from bihuan.register.generate import generate_district, register_is_empty, reset_register

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


def report(bench: str, scale: str, n: int, seconds: float, baseline: str, baseline_seconds: float) -> dict:
    """Print the result as the last line: one JSON object in the format of DESIGN.md."""
    result = {
        "bench": bench,
        "scale": scale,
        "n": n,
        "seconds": round(seconds, 6),
        "baseline": baseline,
        "baseline_seconds": round(baseline_seconds, 6),
        "ratio": round(seconds / baseline_seconds, 3) if baseline_seconds else None,
    }
    print(json.dumps(result, ensure_ascii=False), flush=True)
    return result
