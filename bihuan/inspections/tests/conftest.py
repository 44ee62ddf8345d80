"""Fixtures of the inspection tests (the helpers are in ``helpers.py``)."""

from __future__ import annotations

import pytest

from .helpers import build_world


@pytest.fixture(autouse=True)
def _media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


@pytest.fixture
def world(district):
    return build_world(district)
