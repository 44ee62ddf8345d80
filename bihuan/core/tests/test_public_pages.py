"""Pages without login — a resident's link, a person's control page, a screening link, a self-report receipt, a
helper's sign-up and certificate, a notice — are rate limited per client address and per link, answer a tampered
link with one stable 404, and say nothing about whether any other link exists."""

import re

import pytest
from django.urls import reverse

from bihuan.checkpoints import views as checkpoint_views
from bihuan.control import links as control_links
from bihuan.core import links
from bihuan.core.models import RateCounter
from bihuan.directives import links as directive_links
from bihuan.forces import links as forces_links

NOWHERE = 10**12  # an id no row has: its link is genuinely signed, yet names nothing


def _genuine_links_to_nothing() -> dict[str, str]:
    return {
        "confirm": directive_links.confirm_path(NOWHERE),
        "person": control_links.person_path(NOWHERE),
        "screen": checkpoint_views.screen_path(NOWHERE),
        "receipt": reverse("self_report_receipt", args=[links.token_for(checkpoint_views.REPORT_PURPOSE, NOWHERE)]),
        "join": forces_links.join_path(NOWHERE),
        "helper": forces_links.helper_path(NOWHERE),
        "certificate": forces_links.helper_path(NOWHERE) + "certificate.pdf",
        "notice": forces_links.notice_path(NOWHERE),
    }


def _tampered(path: str, token: str) -> str:
    return re.sub(r"/[0-9]+-[A-Za-z0-9_=-]+/", f"/{token}/", path, count=1)


def _body(response) -> bytes:
    """The page without what differs by design: the form's CSRF token and the requester's own path."""
    body = re.sub(rb'name="csrfmiddlewaretoken" value="[^"]*"', b"", response.content)
    return re.sub(rb'name="next" value="[^"]*"', b"", body)


@pytest.mark.parametrize("name", list(_genuine_links_to_nothing()))
def test_a_tampered_link_gets_one_stable_404_like_a_link_to_nothing(client, db, name):
    genuine = _genuine_links_to_nothing()[name]
    answers = []
    for token in ("1-AAAAAAAAAAAAAAAAAAAA", "999-forgedforgedforgedfo", "²-x", "9223372036854775808-x", "abc"):
        response = client.get(_tampered(genuine, token))
        assert response.status_code == 404, (name, token)
        answers.append(_body(response))
    response = client.get(genuine)
    assert response.status_code == 404, name
    answers.append(_body(response))
    assert len(set(answers)) == 1, f"{name}: the 404 differs with the token"


def test_a_link_is_limited_per_link_and_the_limit_says_how_long_to_wait(client, db, settings):
    settings.PUBLIC_RATE_PER_LINK = 3
    path = directive_links.confirm_path(NOWHERE)
    assert [client.get(path).status_code for _ in range(3)] == [404, 404, 404]
    response = client.get(path)
    assert response.status_code == 429
    assert 0 < int(response["Retry-After"]) <= settings.PUBLIC_RATE_WINDOW_SECONDS
    assert "分钟后再试" in response.content.decode()
    # another link is not held back by this one; and a tampered link is counted the same way as a real one
    assert client.get(directive_links.confirm_path(NOWHERE + 1)).status_code == 404
    forged = "/r/5-forgedforgedforgedfo/"
    assert [client.get(forged).status_code for _ in range(4)] == [404, 404, 404, 429]


def test_an_address_is_limited_across_links_and_another_address_is_not(client, db, settings):
    settings.PUBLIC_RATE_PER_ADDRESS = 5
    answers = [client.get(f"/r/{n}-forgedforgedforgedfo/", REMOTE_ADDR="203.0.113.7").status_code for n in range(6)]
    assert answers == [404] * 5 + [429]
    assert client.get("/report/", REMOTE_ADDR="203.0.113.7").status_code == 429
    assert client.get("/r/77-forgedforgedforgedfo/", REMOTE_ADDR="203.0.113.8").status_code == 404
    assert client.get("/report/", REMOTE_ADDR="203.0.113.8").status_code == 200


def test_the_shared_self_report_page_is_counted_per_address_only(client, db, settings):
    settings.PUBLIC_RATE_PER_LINK = 2
    for n in range(5):
        assert client.get("/report/", REMOTE_ADDR=f"198.51.100.{n}").status_code == 200


def test_counters_keep_no_address_or_token_in_clear(client, db):
    client.get("/r/5-forgedforgedforgedfo/", REMOTE_ADDR="203.0.113.9")
    keys = list(RateCounter.objects.values_list("key", flat=True))
    assert keys and not any("203.0.113.9" in k or "forged" in k for k in keys)


def test_staff_pages_are_not_counted(client, district):
    client.force_login(district.users["grid_a"])
    client.get("/")
    assert not RateCounter.objects.exists()
