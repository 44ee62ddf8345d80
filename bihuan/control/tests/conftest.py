"""Fixtures of the control tests: a case with its team (``care``) and a real local SMS gateway."""

import pytest

from .helpers import build_care


@pytest.fixture
def care(district):
    return build_care(district)


@pytest.fixture
def sms_gateway(monkeypatch, endpoints):
    """The notify plugin's local endpoint server as the SMS gateway, with the BIHUAN_SMS_* settings for it."""
    from bihuan.notify.testing import SMS_TOKEN

    monkeypatch.setenv("BIHUAN_SMS_URL", endpoints.url("/sms"))
    monkeypatch.setenv("BIHUAN_SMS_TOKEN", SMS_TOKEN)
    monkeypatch.setenv("BIHUAN_NOTIFY_TIMEOUT", "5")
    return endpoints
