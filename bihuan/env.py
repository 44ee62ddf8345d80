"""Strict parsing of the environment. Every setting the deployment controls is read here."""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import unquote, urlsplit

BASE_DIR = Path(__file__).resolve().parent.parent


class ConfigError(RuntimeError):
    """A setting in the environment is missing or malformed."""


def env_str(name: str, default: str | None = None) -> str:
    value = os.environ.get(name)
    if value is None or value == "":
        if default is None:
            raise ConfigError(f"{name} must be set")
        return default
    return value


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    lowered = value.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off"}:
        return False
    raise ConfigError(f"{name} must be a boolean (true/false), got {value!r}")


def env_int(name: str, default: int, minimum: int = 0) -> int:
    value = os.environ.get(name)
    if value is None or value.strip() == "":
        return default
    try:
        number = int(value)
    except ValueError:
        raise ConfigError(f"{name} must be a whole number, got {value!r}") from None
    if number < minimum:
        raise ConfigError(f"{name} must be at least {minimum}, got {number}")
    return number


def env_list(name: str, default: list[str]) -> list[str]:
    value = os.environ.get(name)
    if value is None or value.strip() == "":
        return default
    return [part.strip() for part in value.split(",") if part.strip()]


def parse_database_url(url: str) -> dict:
    """Turn ``sqlite:///path`` or ``postgres://user:pass@host:port/name`` into Django's DATABASES entry."""
    parts = urlsplit(url)
    if parts.scheme == "sqlite":
        # sqlite:///relative/path or sqlite:////absolute/path
        raw = unquote(parts.path)
        if not raw or raw == "/":
            raise ConfigError("DATABASE_URL: sqlite URL needs a file path, e.g. sqlite:///var/bihuan.sqlite3")
        path = Path(raw[1:]) if not raw.startswith("//") else Path(raw[1:])
        if not path.is_absolute():
            path = BASE_DIR / path
        return {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": str(path),
            "OPTIONS": {
                # WAL lets the web process read while a worker writes; IMMEDIATE avoids
                # "database is locked" upgrades from read to write inside a transaction.
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA busy_timeout=30000;",
                "transaction_mode": "IMMEDIATE",
                "timeout": 30,
            },
            "TEST": {"NAME": str(path.with_name(path.stem + "-test.sqlite3"))},
            # Reuse a web process's connection between requests (opening one costs more than a tap).
            "CONN_MAX_AGE": 60,
        }
    if parts.scheme in {"postgres", "postgresql"}:
        name = unquote(parts.path.lstrip("/"))
        if not name:
            raise ConfigError("DATABASE_URL: postgres URL needs a database name")
        return {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": name,
            "USER": unquote(parts.username or ""),
            "PASSWORD": unquote(parts.password or ""),
            "HOST": parts.hostname or "",
            "PORT": str(parts.port or ""),
            "CONN_MAX_AGE": 60,
            "CONN_HEALTH_CHECKS": True,
        }
    raise ConfigError(f"DATABASE_URL: unsupported scheme {parts.scheme!r} (use sqlite:/// or postgres://)")


# --- keys -------------------------------------------------------------------------------------------------

# Keys that are public (in this repository): never accepted outside demo mode.
DEMO_SECRET_KEY = "bihuan-demo-secret-key-not-for-production"
DEMO_DATA_KEY = "ZGVtby1kYXRhLWtleS0zMi1ieXRlcy1sb25nLS0tLS0="  # base64 of 32 bytes, demo only
PUBLISHED_KEYS = frozenset({DEMO_SECRET_KEY, DEMO_DATA_KEY})


def data_key_problem(value: str) -> str | None:
    """Why ``value`` is no data key (base64 of 32 random bytes), or None. A published key, text that is not
    base64, a length other than 32 bytes, or bytes that are plainly not random (a passphrase of printable
    characters, or fewer than 16 distinct byte values: 32 random bytes have about 30) are refused."""
    import base64
    import binascii

    if value in PUBLISHED_KEYS:
        return "is the published demo key"
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return "is not base64"
    if len(raw) != 32:
        return f"decodes to {len(raw)} bytes, not 32"
    if all(32 <= b < 127 for b in raw) or len(set(raw)) < 16:
        return "is not random (make one with: python -c \"import base64,os;print(base64.b64encode(os.urandom(32)).decode())\")"
    return None


def secret_key_problem(value: str) -> str | None:
    """Why ``value`` is no secret key for production (Django's own rule: 50+ characters, 5+ distinct), or None."""
    if value in PUBLISHED_KEYS:
        return "is the published demo key"
    if len(value) < 50 or len(set(value)) < 5 or value.startswith("django-insecure-"):
        return "must be a random string of at least 50 characters"
    return None


def require_production_keys(secret_key: str, data_key: str, old_data_keys: list[str]) -> None:
    """Refuse to start outside demo mode with a published, malformed or weak key (names the variable)."""
    problems = []
    if (why := secret_key_problem(secret_key)) is not None:
        problems.append(f"BIHUAN_SECRET_KEY {why}")
    if (why := data_key_problem(data_key)) is not None:
        problems.append(f"BIHUAN_DATA_KEY {why}")
    for n, key in enumerate(old_data_keys, start=1):
        if (why := data_key_problem(key)) is not None and key != DEMO_DATA_KEY:
            problems.append(f"BIHUAN_DATA_KEYS_OLD key {n} {why}")
    if problems:
        raise ConfigError("; ".join(problems) + " (set real keys, or BIHUAN_DEMO=1 for the demo)")
