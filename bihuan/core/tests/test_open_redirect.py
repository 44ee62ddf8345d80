"""``next=`` never sends anyone off the site: every form that goes back somewhere asks core.http.safe_next, which
keeps a path or URL of this very host and replaces anything else with the page's own default."""

import pytest
from django.test import RequestFactory

from bihuan.core.http import safe_next
from bihuan.directives.actions import do_issue_directive
from bihuan.directives.models import RECEIPT
from bihuan.loops.models import Loop

HOSTILE = [
    "https://evil.example/",
    "//evil.example/",
    "///evil.example/",
    "/\\evil.example/",
    "\\\\evil.example",
    "http:evil.example",
    "javascript:alert(1)",
    "https://testserver@evil.example/",
    " //evil.example",
    "\t//evil.example",
    "https:///evil.example",
    "data:text/html,<script>alert(1)</script>",
    "²",  # no path at all: redirect() would take it for a URL name
    "directives:list",
]


@pytest.mark.parametrize("target", HOSTILE)
def test_a_next_off_the_site_falls_back_to_the_default(target):
    for request in (RequestFactory().post("/x/", {"next": target}), RequestFactory().get("/x/", {"next": target})):
        assert safe_next(request, "/home/") == "/home/"


def test_a_next_on_the_site_is_kept_and_a_url_name_default_resolves():
    assert safe_next(RequestFactory().post("/x/", {"next": "/directives/?unit=3"}), "/") == "/directives/?unit=3"
    assert safe_next(RequestFactory().post("/x/", {"next": "http://testserver/inbox/"}), "/") == \
        "http://testserver/inbox/"
    assert safe_next(RequestFactory().post("/x/"), "directives:list") == "/directives/"


def _receipt(d):
    directive = do_issue_directive(acting_user=d.users["commander"], title="全员核酸检测通知", body="今日完成。")
    return Loop.objects.get(kind=RECEIPT, subject_id=directive.pk, owner_unit=d.township_a)


@pytest.mark.parametrize("target", ["https://evil.example/", "//evil.example/", "/\\evil.example/"])
def test_signing_and_relaying_a_receipt_never_redirect_off_the_site(client, district, target):
    loop = _receipt(district)
    client.force_login(district.users["township_a"])
    for action in ("sign", "relay"):
        response = client.post(f"/directives/receipts/{loop.pk}/{action}/", {"next": target})
        assert response.status_code == 302, action
        assert "evil" not in response["Location"], (action, response["Location"])
        assert response["Location"].startswith("/")


@pytest.mark.parametrize("url", ["/me/language/", "/password/", "/logout/", "/login/"])
def test_other_forms_with_next_never_redirect_off_the_site(client, district, url):
    client.force_login(district.users["grid_a"])
    response = client.post(url, {"next": "https://evil.example/", "language": "en"})
    assert "evil" not in response.get("Location", ""), url
    response = client.get(url, {"next": "//evil.example/"})
    assert "evil" not in response.get("Location", ""), url
