import os

import pytest

os.environ.setdefault("BIHUAN_DEMO", "1")


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
