"""Published or weak keys never start production; demo commands never run outside demo mode."""

from __future__ import annotations

import base64
import os
import subprocess
import sys

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from bihuan.env import DEMO_DATA_KEY, DEMO_SECRET_KEY, data_key_problem, secret_key_problem

GOOD_SECRET = base64.b64encode(os.urandom(48)).decode()
GOOD_DATA = base64.b64encode(os.urandom(32)).decode()


def start(**env) -> subprocess.CompletedProcess:
    """``bihuan check`` in a fresh process with exactly these BIHUAN_* variables (demo mode off)."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("BIHUAN_") and k != "DATABASE_URL"}
    clean.update(env)
    return subprocess.run([sys.executable, "-m", "bihuan", "check"], env=clean, capture_output=True, text=True,
                          timeout=120)


def test_real_keys_start():
    result = start(BIHUAN_SECRET_KEY=GOOD_SECRET, BIHUAN_DATA_KEY=GOOD_DATA)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize(("key", "why"), [
    (DEMO_DATA_KEY, "published demo key"),
    ("abc", "not base64"),
    (base64.b64encode(b"x" * 16).decode(), "16 bytes, not 32"),
    (base64.b64encode(b"my-passphrase-is-long-enough-32b").decode(), "not random"),
    (base64.b64encode(bytes(32)).decode(), "not random"),
])
def test_a_published_or_weak_data_key_is_refused_at_start(key, why):
    assert why in data_key_problem(key)
    result = start(BIHUAN_SECRET_KEY=GOOD_SECRET, BIHUAN_DATA_KEY=key)
    assert result.returncode != 0 and "BIHUAN_DATA_KEY" in result.stderr and why in result.stderr


def test_the_demo_secret_key_is_refused_at_start():
    assert secret_key_problem(DEMO_SECRET_KEY) and secret_key_problem("short")
    result = start(BIHUAN_SECRET_KEY=DEMO_SECRET_KEY, BIHUAN_DATA_KEY=GOOD_DATA)
    assert result.returncode != 0 and "BIHUAN_SECRET_KEY is the published demo key" in result.stderr


def test_the_demo_keys_are_accepted_in_demo_mode():
    assert start(BIHUAN_DEMO="1").returncode == 0


@pytest.mark.parametrize("command", [("generate", "--reset"), ("generate",), ("demo", "--no-serve")])
def test_demo_commands_refuse_outside_demo_mode(db, settings, command):
    settings.DEMO = False
    with pytest.raises(CommandError, match="BIHUAN_DEMO=1"):
        call_command(*command)
