"""Fixtures of the directives tests: the CAP 1.2 schema (shipped with the project)."""

from __future__ import annotations

import os

import pytest

from bihuan.directives import cap


def _missing(what: str):
    if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
        pytest.fail(f"{what} (under CI this is a failure, not a skip)")
    pytest.skip(what)


@pytest.fixture(scope="session")
def schema():
    try:
        from lxml import etree
    except ImportError:  # pragma: no cover - a dev dependency
        _missing("lxml is not installed (requirements-dev.txt)")
    return etree.XMLSchema(etree.parse(str(cap.SCHEMA)))
