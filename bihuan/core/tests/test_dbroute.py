"""core.dbroute without a replica: the pin cookie, the choice, the router (the real standby:
bihuan/register/tests/test_replica.py)."""

import time

from django.http import HttpResponse
from django.test import RequestFactory

from bihuan.core import dbroute


def test_a_write_pins_the_user_to_the_primary_for_a_while(settings):
    settings.REPLICA_PIN_SECONDS = 10
    middleware = dbroute.PinAfterWrite(lambda request: HttpResponse("ok"))
    assert dbroute.PIN_COOKIE not in middleware(RequestFactory().get("/")).cookies
    cookie = middleware(RequestFactory().post("/")).cookies[dbroute.PIN_COOKIE]
    assert cookie["max-age"] == 10 and cookie["httponly"]
    request = RequestFactory().get("/")
    request.COOKIES[dbroute.PIN_COOKIE] = cookie.value
    assert dbroute.pinned(request)
    request.COOKIES[dbroute.PIN_COOKIE] = f"{time.time() - 1:.0f}"
    assert not dbroute.pinned(request)
    request.COOKIES[dbroute.PIN_COOKIE] = "not a time"
    assert not dbroute.pinned(request)


def test_without_a_replica_everything_reads_the_primary(monkeypatch):
    monkeypatch.setattr(dbroute, "configured", lambda: False)
    calls = []

    @dbroute.replica_reads
    def view(request):
        calls.append(dbroute.read_alias())
        return HttpResponse("ok")

    assert view(RequestFactory().get("/")).status_code == 200
    assert calls == ["default"] and dbroute.read_alias() == "default"
    assert dbroute.Router().db_for_read(None) is None  # Django's default
    assert dbroute.Router().db_for_write(None) == "default"
    assert dbroute.Router().allow_migrate("replica", "register") is False
