"""A helper's full phone and ID number go through the residents' reveal (core.reveal): a reason from the short list or
free text, throttled per user together with every other reveal, audited with the reason — on the page and the API."""

import datetime as dt

from django.urls import reverse

from bihuan.core.models import AuditEntry
from bihuan.testing import HX, make_id_number

from .helpers import active_helper

API = "/api/v1/forces/helpers"
ID_NUMBER = make_id_number(dt.date(1985, 4, 12))


def _helper(d):
    return active_helper(d.community_a, "周卫国", phone="13912345670", id_number=ID_NUMBER)


def test_a_reveal_with_a_listed_reason_shows_the_values_and_is_audited(client, district):
    d = district
    helper = _helper(d)
    client.force_login(d.users["community_a"])
    page = client.get(reverse("forces:helpers") + f"?unit={d.community_a.pk}").content.decode()
    assert "13912345670" not in page and f'data-testid="reveal-{helper.pk}"' in page
    response = client.post(reverse("forces:helper_reveal", args=[helper.pk]), {"reason": "call"}, **HX)
    body = response.content.decode()
    assert response.status_code == 200 and "13912345670" in body and ID_NUMBER in body
    row = AuditEntry.objects.get(action="forces.helper.reveal")
    assert row.actor == d.users["community_a"] and row.target_id == str(helper.pk)
    assert row.changes["reason"].startswith("call: ") and row.changes["fields"] == ["phone", "id_number"]


def test_free_text_is_a_reason_and_blank_is_refused(client, district):
    d = district
    helper = _helper(d)
    client.force_login(d.users["township_a"])
    url = reverse("forces:helper_reveal", args=[helper.pk])
    refused = client.post(url, {"reason": "", "reason_text": "  "}, **HX).content.decode()
    assert "13912345670" not in refused and 'data-testid="reveal-refused"' in refused
    assert not AuditEntry.objects.filter(action="forces.helper.reveal").exists()
    client.post(url, {"reason_text": "安排核酸采样点值守，电话确认"}, **HX)
    assert AuditEntry.objects.get(action="forces.helper.reveal").changes["reason"] == "安排核酸采样点值守，电话确认"


def test_helper_reveals_count_with_residents_towards_one_limit(client, district, settings):
    settings.REVEAL_LIMIT = 2
    d = district
    helper = _helper(d)
    client.force_login(d.users["community_a"])
    assert client.post(reverse("register:reveal", args=[d.resident_a.pk]), {"reason": "verify"}).status_code == 200
    assert "13912345670" in client.post(reverse("forces:helper_reveal", args=[helper.pk]),
                                        {"reason": "call"}, **HX).content.decode()
    third = client.post(reverse("forces:helper_reveal", args=[helper.pk]), {"reason": "call"}, **HX).content.decode()
    assert "13912345670" not in third and "分钟内最多查看" in third
    assert AuditEntry.objects.filter(action="forces.helper.reveal").count() == 1


def test_the_page_offers_no_reveal_to_a_role_without_the_permission(client, district):
    d = district
    helper = _helper(d)
    client.force_login(d.users["department"])
    page = client.get(reverse("forces:helpers") + f"?unit={d.community_a.pk}").content.decode()
    assert f'data-testid="reveal-{helper.pk}"' not in page
    assert client.post(reverse("forces:helper_reveal", args=[helper.pk]), {"reason": "call"}).status_code == 403


def test_the_api_reveal_needs_a_reason_is_throttled_and_scoped(as_user, district, settings):
    settings.REVEAL_LIMIT = 1
    d = district
    helper = _helper(d)
    url = f"{API}/{helper.pk}/reveal"
    blank = as_user("community_a", "POST", url, {"reason": "  "})
    assert blank.status_code == 422  # the schema says a reason is not blank
    ok = as_user("community_a", "POST", url, {"reason": "verify"})
    assert ok.status_code == 200 and ok.json() == {"id": helper.pk, "phone": "13912345670", "id_number": ID_NUMBER}
    assert as_user("community_a", "POST", url, {"reason": "verify"}).status_code == 429
    assert as_user("village_b", "POST", url, {"reason": "verify"}).status_code == 404
    assert as_user("department", "POST", url, {"reason": "verify"}).status_code == 403
