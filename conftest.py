import os

import pytest

os.environ.setdefault("BIHUAN_DEMO", "1")

# Real local SMTP, SMS-gateway and robot servers (fixtures smtp_server, endpoints, notify_env, robots).
pytest_plugins = ["bihuan.notify.testing"]


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def district(db):
    """The base district: branches A and B with a named insider and outsider at every level."""
    from bihuan.testing import build_base_district

    return build_base_district()


def login(client, user):
    client.force_login(user)
    return client


@pytest.fixture
def as_user(district, client):
    """``as_user(name, method, url, body, multipart)``: one API request with a bearer token of the named district
    user."""
    from bihuan.testing import token_requester

    return token_requester(district, client)


def pytest_collection_modifyitems(config, items):
    # Browser, chaos and real-server tests are slow: `pytest -m "not slow"` skips them, `make test` runs them all.
    for item in items:
        if "tests/browser/" in item.nodeid or "tests/system/" in item.nodeid:
            item.add_marker(pytest.mark.slow)


@pytest.fixture
def clock(monkeypatch):
    """The one frozen clock: ``django.utils.timezone.now`` returns ``clock.now`` until moved with
    ``clock.advance(minutes=…)`` or ``clock.set_local(date, hour)``."""
    from bihuan.testing import freeze_clock

    return freeze_clock(monkeypatch)


@pytest.fixture(autouse=True)
def _only_the_loop_engine_writes_loops(request):
    """Every test runs under the engine's contract: application code outside bihuan/loops that writes a loop
    row fails the test (bihuan/loops/contract.py). Tests that use no database skip the wrapper."""
    if "django_db_setup" not in request.fixturenames and not request.node.get_closest_marker("django_db"):
        yield
        return
    from django.db import connection

    from bihuan.loops.contract import guard

    with connection.execute_wrapper(guard):
        yield


@pytest.fixture(autouse=True)
def _the_replica_only_where_asked(request, monkeypatch):
    """With DATABASE_REPLICA_URL set (CI's scale-out step), only tests that ask for the ``replica`` database
    (``django_db(databases=[..., "replica"])``) read from it; the others read the primary as without one."""
    from django.conf import settings

    if "replica" not in settings.DATABASES:
        return
    marker = request.node.get_closest_marker("django_db")
    if marker is None or "replica" not in (marker.kwargs.get("databases") or ()):
        monkeypatch.setattr("bihuan.core.dbroute.configured", lambda: False)
