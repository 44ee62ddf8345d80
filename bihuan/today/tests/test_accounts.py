"""Search from the header, the household page, my profile: language remembered, signing out everywhere."""

from __future__ import annotations

from django.test import Client
from django.urls import reverse

from bihuan.control.models import ControlCase
from bihuan.register.models import Resident, Staff


def test_search_finds_a_resident_by_full_id_number_full_phone_tail_and_initials(client, demo_day):
    user = demo_day["community1"]
    client.force_login(user)
    resident = Resident.objects.filter(user.staff.unit.subtree()).exclude(phone_masked="").order_by("id").first()
    for q in (resident.reveal_id_number(), resident.reveal_phone(), resident.id_tail, resident.name):
        page = client.post(reverse("search"), {"q": q}).content.decode()
        assert 'data-testid="results-residents"' in page and resident.name in page, q
        assert resident.reveal_id_number() not in page  # masked in the results


def test_search_stays_within_the_users_part_of_the_district(client, demo_day):
    user = demo_day["community1"]
    outside = Resident.objects.exclude(path__startswith=user.staff.unit.path).order_by("id").first()
    client.force_login(user)
    page = client.post(reverse("search"), {"q": outside.reveal_id_number()}).content.decode()
    assert 'data-testid="search-empty"' in page


def test_the_household_page_gathers_control_cases_and_directive_marks(client, demo_day):
    case = ControlCase.objects.filter(resident__isnull=False).select_related("resident").order_by("id").first()
    client.force_login(demo_day["commander"])
    page = client.get(reverse("household_all", args=[case.resident.household_id])).content.decode()
    assert case.name in page and 'data-testid="hh-marks"' in page
    assert "没有指令通知记录" not in page


def test_the_language_is_remembered_for_the_person(client, demo_day):
    user = demo_day["grid1"]
    client.force_login(user)
    client.post(reverse("my_language"), {"language": "en", "next": "/"})
    assert Staff.objects.get(user=user).language == "en"
    other_browser = Client()
    other_browser.force_login(user)
    assert 'lang="en"' in other_browser.get(reverse("profile")).content.decode()


def test_logout_everywhere_ends_the_sessions_on_other_devices(demo_day):
    user = demo_day["community1"]
    phone, desk = Client(), Client()
    for c in (phone, desk):
        c.post(reverse("login"), {"username": user.username, "password": "bihuan2022"})
        assert c.get(reverse("profile")).status_code == 200
    desk.post(reverse("logout_everywhere"))
    assert phone.get(reverse("profile")).status_code == 302


def test_flow_records_name_events_in_words_and_people_by_name(client, demo_day):
    from bihuan.pushes.models import Transfer

    transfer = Transfer.objects.filter(ping_pong=True).select_related("person").first()
    client.force_login(demo_day["commander"])
    page = client.get(reverse("pushes:person", args=[transfer.person_id])).content.decode()
    events = page[page.index('data-testid="events"'):]
    assert "下达" in events and "转办" in events
    assert "issued" not in events and "transferred" not in events
    assert "s14100" not in events  # no login names where a name is known
