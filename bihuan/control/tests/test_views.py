"""Every control-and-care page, for an insider and an outsider at every level, and what the pages do."""

import datetime as dt
from decimal import Decimal
from types import SimpleNamespace

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from bihuan.control import links
from bihuan.control import models as m
from bihuan.control.actions import do_open_case, do_set_team_member
from bihuan.control.checkins import do_record_checkin
from bihuan.control.models import (
    ALERT,
    CaseState,
    CheckIn,
    ControlCase,
    MeasureItem,
    ServiceRequest,
    TeamMember,
)
from bihuan.control.services import do_mark_service_done, do_request_service
from bihuan.core.models import AuditEntry
from bihuan.core.roles import Perm
from bihuan.loops.models import Loop, LoopState
from bihuan.testing import HX, assert_route_access, create_household, create_resident, url_names


def open_case(unit, resident=None, *, type_code="home_isolation", days_ago=3, name="", **kw):
    """A case opened by the system (no acting user) that started ``days_ago`` days ago."""
    kw.setdefault("site_kind", "hotel" if type_code == "centralized_quarantine" else "home")
    kw.setdefault("site_address", "尧都宾馆" if type_code == "centralized_quarantine" else "")
    return do_open_case(type_code=type_code, unit=unit, name=name, resident=resident,
                        start_date=timezone.localdate() - dt.timedelta(days=days_ago), acting_user=None, **kw)


@pytest.fixture
def ctx(district):
    """A home-isolation case in branch A (day 4: a test is due today), its grid worker on the team, a service
    request from the person, and an abnormal check-in of yesterday (an open alert at the community)."""
    d = district
    case = open_case(d.grid_a, d.resident_a)
    do_set_team_member(case, "grid_worker", user=d.users["grid_a"], acting_user=None)
    service = do_request_service(case, "groceries", "大米一袋", acting_user=None)
    yesterday = do_record_checkin(case, date=timezone.localdate() - dt.timedelta(days=1), slot="am",
                                  temperature="37.9", symptoms=["咳嗽"], acting_user=d.users["community_a"])
    alert = Loop.objects.get(kind=ALERT, subject_id=yesterday.pk)
    sample = m.TestSample.objects.get(case=case, date=timezone.localdate())
    return SimpleNamespace(d=d, case=case, service=service, alert=alert, sample=sample, pushed=pushed_person(d))


def pushed_person(d):
    """A person pushed to grid A whose verification asks for home isolation."""
    from bihuan.pushes.models import Outcome, PushBatch, PushedPerson, Verification

    now = timezone.now()
    batch = PushBatch.objects.create(source="省大数据中心", file_name="a.csv", file_sha256="1" * 64, file_data=b"",
                                     unit=d.community_a)
    person = PushedPerson.objects.create(name="钱来凤", first_batch=batch, first_pushed_at=now, last_pushed_at=now,
                                         unit=d.grid_a, path=d.grid_a.path, address_text="锦悦小区3号楼1单元202")
    Verification.objects.create(person=person, outcome=Outcome.NEW_CONTROL, measure="home_isolation")
    return person


# route name -> (method, url, data, permission, expected status when allowed, kind)
# kind: "scoped" (branch-A object: outsiders 404), "unscoped" (no branch-A object in the URL),
# "community" (an object of the community: insiders below it get 404 as well).
ROUTES = {
    "control:mine": ("get", lambda c: reverse("control:mine"), None, Perm.CARE, 200, "unscoped"),
    "control:today": ("get", lambda c: reverse("control:today") + f"?unit={c.d.grid_a.id}", None, Perm.CARE, 200,
                      "scoped"),
    "control:dashboard": ("get", lambda c: reverse("control:dashboard") + f"?unit={c.d.grid_a.id}", None,
                          Perm.VIEW_REGISTER, 200, "scoped"),
    "control:export": ("get", lambda c: reverse("control:export") + f"?unit={c.d.grid_a.id}", None,
                       Perm.VIEW_REGISTER, 200, "scoped"),
    "control:cases": ("get", lambda c: reverse("control:cases") + f"?unit={c.d.grid_a.id}", None, Perm.CARE, 200,
                      "scoped"),
    "control:new": ("get", lambda c: reverse("control:new") + f"?unit={c.d.grid_a.id}", None, Perm.MANAGE_CONTROL,
                    200, "scoped"),
    "control:case": ("get", lambda c: reverse("control:case", args=[c.case.pk]), None, Perm.CARE, 200, "scoped"),
    "control:checkin": ("post", lambda c: reverse("control:checkin", args=[c.case.pk]),
                        {"slot": "am", "temperature": "36.6"}, Perm.CARE, 200, "scoped"),
    "control:measure": ("post", lambda c: reverse("control:measure", args=[c.case.pk, "card_posted"]), None,
                        Perm.CARE, 302, "scoped"),
    "control:team": ("post", lambda c: reverse("control:team", args=[c.case.pk]),
                     {"slot": "volunteer", "name": "张志愿", "phone": "13900001111"}, Perm.MANAGE_CONTROL, 302,
                     "scoped"),
    "control:period": ("post", lambda c: reverse("control:period", args=[c.case.pk]),
                       {"days_delta": "1", "reason": "同住人员阳性"}, Perm.MANAGE_CONTROL, 302, "scoped"),
    "control:move_up": ("post", lambda c: reverse("control:move_up", args=[c.case.pk]),
                        {"type_code": "centralized_quarantine", "reason": "密接", "site_address": "尧都宾馆",
                         "site_room": "312"}, Perm.MANAGE_CONTROL, 302, "scoped"),
    "control:release": ("post", lambda c: reverse("control:release", args=[c.case.pk]), None, Perm.MANAGE_CONTROL,
                        302, "scoped"),
    "control:notice": ("get", lambda c: reverse("control:notice", args=[c.case.pk]), None, Perm.CARE, 200, "scoped"),
    "control:notice_pdf": ("get", lambda c: reverse("control:notice_pdf", args=[c.case.pk]), None, Perm.CARE, 200,
                           "scoped"),
    "control:service_new": ("post", lambda c: reverse("control:service_new", args=[c.case.pk]),
                            {"kind": "medicine", "text": "降压药"}, Perm.CARE, 200, "scoped"),
    "control:test_result": ("post", lambda c: reverse("control:test_result", args=[c.sample.pk]),
                            {"result": "negative"}, Perm.CARE, 200, "scoped"),
    "control:service_assign": ("post", lambda c: reverse("control:service_assign", args=[c.service.pk]),
                               {"user": "me"}, Perm.CARE, 200, "scoped"),
    "control:service_done": ("post", lambda c: reverse("control:service_done", args=[c.service.pk]), None,
                             Perm.CARE, 200, "scoped"),
    "control:service_confirm": ("post", lambda c: reverse("control:service_confirm", args=[c.service.pk]), None,
                                Perm.CARE, 200, "scoped"),
    "control:care_visit": ("post", lambda c: reverse("control:care_visit"), lambda c: {"case": c.case.pk},
                           Perm.CARE, 200, "scoped"),
    "control:from_verification": ("post", lambda c: reverse("control:from_verification", args=[c.pushed.pk]),
                                  None, Perm.MANAGE_CONTROL, 302, "scoped"),
    "control:resolve_alert": ("post", lambda c: reverse("control:resolve_alert", args=[c.alert.pk]),
                              {"note": "已上门复测 36.8℃"}, Perm.CARE, 200, "community"),
    # The control types: district-wide data, the command office's (EDIT_POLICY); no branch-A object.
    "control:types": ("get", lambda c: reverse("control:types"), None, Perm.EDIT_POLICY, 200, "unscoped"),
    "control:type_new": ("get", lambda c: reverse("control:type_new"), None, Perm.EDIT_POLICY, 200, "unscoped"),
    "control:type_edit": ("get", lambda c: reverse("control:type_edit", args=["home_isolation"]), None,
                          Perm.EDIT_POLICY, 200, "unscoped"),
    "control:type_retire": ("post", lambda c: reverse("control:type_retire", args=["home_monitoring"]), None,
                            Perm.EDIT_POLICY, 302, "unscoped"),
}
PUBLIC = {"person"}  # the person's own link: no login (tested below)


def test_every_control_page_is_in_the_access_matrix():
    names = {n for n in url_names() if n.startswith("control:") or n in PUBLIC}
    assert names == set(ROUTES) | PUBLIC, "add new pages to ROUTES"


@pytest.mark.parametrize("route", sorted(ROUTES))
def test_insiders_see_branch_a_and_outsiders_get_404(client, ctx, route):
    d = ctx.d

    def refused(username):  # a community's object: the units below the community get 404 as well
        below_community = d.users[username].staff.unit.level > d.community_a.level
        return 404 if ROUTES[route][5] == "community" and below_community else None

    assert_route_access(client, ctx, route, ROUTES[route], secrets=(d.resident_a.name, d.grid_a.name),
                        refused=refused)


def test_anonymous_users_are_sent_to_login(client, ctx):
    for url in (reverse("control:case", args=[ctx.case.pk]), reverse("control:today"), reverse("control:mine")):
        response = client.get(url)
        assert response.status_code == 302 and "/login/" in response["Location"]


# --- the team member's phone -----------------------------------------------------------------------------

def test_a_team_member_sees_their_cases_with_todays_status(client, ctx):
    client.force_login(ctx.d.users["grid_a"])
    page = client.get(reverse("control:mine")).content.decode()
    assert ctx.case.name in page and "居家隔离" in page and "第 4 / 7 天" in page
    assert "今日待采" in page and "服务待办 1" in page


def test_a_team_member_from_outside_the_subtree_cares_for_the_case_but_sees_nothing_else(client, ctx):
    d = ctx.d
    do_set_team_member(ctx.case, "volunteer", user=d.users["rep_b"], acting_user=None)
    client.force_login(d.users["rep_b"])
    assert ctx.case.name in client.get(reverse("control:mine")).content.decode()
    assert client.get(reverse("control:case", args=[ctx.case.pk])).status_code == 200
    response = client.post(reverse("control:checkin", args=[ctx.case.pk]), {"slot": "am", "temperature": "36.4"}, **HX)
    assert response.status_code == 200 and CheckIn.objects.filter(case=ctx.case, temperature=Decimal("36.4")).exists()
    assert client.get(reverse("control:today") + f"?unit={d.grid_a.id}").status_code == 404
    assert client.post(reverse("control:period", args=[ctx.case.pk]), {"days_delta": 1, "reason": "x"}).status_code == 403


def test_recording_a_check_in_on_the_case_page(client, ctx):
    client.force_login(ctx.d.users["grid_a"])
    url = reverse("control:checkin", args=[ctx.case.pk])
    response = client.post(url, {"slot": "am", "temperature": "36.5"}, **HX)
    assert response.status_code == 200 and 'data-testid="slot-am"' in response.content.decode()
    checkin = CheckIn.objects.get(case=ctx.case, date=timezone.localdate(), slot="am")
    assert checkin.temperature == Decimal("36.5") and not checkin.abnormal and checkin.entered_by == ctx.d.users["grid_a"]
    # A fever with a symptom is abnormal and raises an alert at the community at once.
    response = client.post(url, {"slot": "pm", "temperature": "38.2", "symptoms": ["发热", "咳嗽"]}, **HX)
    assert "38.2" in response.content.decode()
    pm = CheckIn.objects.get(case=ctx.case, date=timezone.localdate(), slot="pm")
    assert pm.abnormal and pm.symptoms == ["发热", "咳嗽"]
    assert Loop.objects.filter(kind=ALERT, subject_id=pm.pk, owner_unit=ctx.d.community_a).exists()
    # A second, different reading for a recorded slot is refused and says why.
    response = client.post(url, {"slot": "pm", "temperature": "36.6"}, **HX)
    assert response.status_code == 200 and 'data-testid="checkin-error"' in response.content.decode()
    # Out of range: the form says so.
    response = client.post(url, {"slot": "am", "temperature": "48"}, **HX)
    assert 'data-testid="checkin-error"' in response.content.decode()


def test_test_results_and_service_requests_from_the_case_page(client, ctx):
    d = ctx.d
    client.force_login(d.users["grid_a"])
    response = client.post(reverse("control:test_result", args=[ctx.sample.pk]), {"result": "negative"}, **HX)
    assert response.status_code == 200 and "阴性" in response.content.decode()
    ctx.sample.refresh_from_db()
    assert ctx.sample.result == m.TestResult.NEGATIVE and ctx.sample.recorded_by == d.users["grid_a"]

    response = client.post(reverse("control:service_assign", args=[ctx.service.pk]), {"user": "me"}, **HX)
    assert "办理中" in response.content.decode()
    response = client.post(reverse("control:service_done", args=[ctx.service.pk]), **HX)
    assert "已办结，待本人确认" in response.content.decode()
    ctx.service.refresh_from_db()
    assert ctx.service.assigned_to == d.users["grid_a"] and ctx.service.done_at and not ctx.service.confirmed_at
    response = client.post(reverse("control:service_new", args=[ctx.case.pk]), {"kind": "rubbish"}, **HX)
    assert response.status_code == 200 and "垃圾清运" in response.content.decode()
    assert ServiceRequest.objects.filter(case=ctx.case, kind="rubbish", requested_by=d.users["grid_a"]).exists()


def test_measures_team_period_and_move_up(client, ctx, tmp_path, settings):
    d = ctx.d
    settings.MEDIA_ROOT = tmp_path
    client.force_login(d.users["community_a"])
    client.post(reverse("control:measure", args=[ctx.case.pk, "card_posted"]))
    assert MeasureItem.objects.get(case=ctx.case, key="card_posted").done_by == d.users["community_a"]
    # The signed agreement needs a photo.
    response = client.post(reverse("control:measure", args=[ctx.case.pk, "agreement_signed"]), follow=True)
    assert "需要上传照片" in response.content.decode()
    from django.core.files.uploadedfile import SimpleUploadedFile

    png = SimpleUploadedFile("a.png", b"\x89PNG\r\n\x1a\n" + b"0" * 64, content_type="image/png")
    client.post(reverse("control:measure", args=[ctx.case.pk, "agreement_signed"]), {"photo": png})
    item = MeasureItem.objects.get(case=ctx.case, key="agreement_signed")
    assert item.done_at and item.photo.name.endswith(".png")

    client.post(reverse("control:team", args=[ctx.case.pk]), {"slot": "cadre", "user": d.users["community_a"].pk})
    assert TeamMember.objects.get(case=ctx.case, slot="cadre").user == d.users["community_a"]
    end = ctx.case.end_date
    client.post(reverse("control:period", args=[ctx.case.pk]), {"days_delta": "3", "reason": "同住人员阳性"})
    ctx.case.refresh_from_db()
    assert ctx.case.end_date == end + dt.timedelta(days=3)
    response = client.post(reverse("control:move_up", args=[ctx.case.pk]),
                           {"type_code": "centralized_quarantine", "reason": "密接", "site_address": "尧都宾馆",
                            "site_room": "312"})
    new = ControlCase.objects.get(previous=ctx.case)
    assert response["Location"] == reverse("control:case", args=[new.pk])
    assert new.type.code == "centralized_quarantine" and new.site_room == "312"
    page = client.get(reverse("control:case", args=[ctx.case.pk])).content.decode()
    assert "已升级管控" in page and 'data-testid="next-case"' in page


def test_release_from_the_today_page_and_the_notice(client, district):
    d = district
    case = open_case(d.grid_a, d.resident_a, days_ago=6)  # day 7 of 7: ends today
    for s in case.tests.all():
        s.result = m.TestResult.NEGATIVE
        s.save()
    client.force_login(d.users["community_a"])
    page = client.get(reverse("control:today") + f"?unit={d.community_a.id}").content.decode()
    assert f'data-testid="release-{case.pk}"' in page
    response = client.post(reverse("control:release", args=[case.pk]),
                           {"next": reverse("control:today") + f"?unit={d.community_a.id}"})
    assert response.status_code == 302 and response["Location"].startswith(reverse("control:today"))
    case.refresh_from_db()
    assert case.state == CaseState.RELEASED
    html = client.get(reverse("control:notice", args=[case.pk])).content.decode()
    assert "解除居家隔离告知书" in html and case.name in html
    pdf = client.get(reverse("control:notice_pdf", args=[case.pk]))
    assert pdf["Content-Type"] == "application/pdf" and pdf.content.startswith(b"%PDF")
    assert AuditEntry.objects.filter(action="control.notice.export", target_id=str(case.pk)).exists()
    # An offsite "next" is ignored.
    other = open_case(d.grid_a, d.resident_a2, days_ago=1)
    response = client.post(reverse("control:release", args=[other.pk]), {"next": "https://example.com/"})
    assert response["Location"] == reverse("control:case", args=[other.pk])


def test_opening_a_case_from_the_register(client, district):
    d = district
    client.force_login(d.users["community_a"])
    page = client.get(reverse("control:new"), {"unit": d.grid_a.id, "q": "李秀英"}).content.decode()
    assert f'data-testid="pick-{d.resident_a2.id}"' in page
    response = client.post(reverse("control:new") + f"?unit={d.grid_a.id}&resident={d.resident_a2.id}", {
        "type_code": "home_monitoring", "start_date": timezone.localdate().isoformat(), "site_kind": "home",
        "reason": "同住人员居家隔离"})
    case = ControlCase.objects.get(resident=d.resident_a2)
    assert response["Location"] == reverse("control:case", args=[case.pk])
    assert case.site_address == d.household_a.address and case.unit == d.grid_a
    # A hotel with a home type is refused and names the field.
    response = client.post(reverse("control:new") + f"?unit={d.grid_a.id}", {
        "type_code": "home_isolation", "name": "外来人员", "phone": "13911112222",
        "start_date": timezone.localdate().isoformat(), "site_kind": "hotel", "site_address": "宾馆"})
    assert response.status_code == 400 and "地点应为居家" in response.content.decode()


def test_the_today_page_lists_the_days_work(client, ctx):
    d = ctx.d
    client.force_login(d.users["community_a"])
    page = client.get(reverse("control:today") + f"?unit={d.community_a.id}").content.decode()
    assert f'data-testid="checkin-{ctx.case.pk}"' in page and ("未报" in page or "待报" in page)
    assert f'data-testid="sample-{ctx.sample.pk}"' in page
    assert f'data-testid="service-{ctx.service.pk}"' in page and "大米一袋" in page
    assert f'data-testid="alert-{ctx.alert.pk}"' in page
    assert f'data-testid="care-grid-{d.grid_a.pk}"' in page  # the community sees each grid's visits
    page = client.get(reverse("control:today") + f"?unit={d.grid_a.id}").content.decode()
    assert f'data-testid="care-r{d.resident_a.pk}"' in page  # the person under home isolation is visited too
    response = client.post(reverse("control:care_visit"), {"case": ctx.case.pk, "needs": ["groceries"]}, **HX)
    assert "今日已走访" in response.content.decode() and "代购生活物资" in response.content.decode()
    response = client.post(reverse("control:resolve_alert", args=[ctx.alert.pk]), {"note": "复测正常"}, **HX)
    assert "已处置" in response.content.decode()
    ctx.alert.refresh_from_db()
    assert ctx.alert.state == LoopState.CLOSED


def test_above_the_community_the_today_page_picks_a_unit(client, ctx):
    client.force_login(ctx.d.users["township_a"])
    page = client.get(reverse("control:today")).content.decode()
    assert f'data-testid="child-{ctx.d.community_a.id}"' in page and 'data-testid="checkin-list"' not in page


def _grow(d, n):
    """``n`` more cases in branch A with what the today page lists: a check-in, a test, a service request."""
    for i in range(n):
        h = create_household(d.grid_a, f"锦悦小区5号楼1单元{100 + i}", building="5", entrance="1", room=str(100 + i))
        r = create_resident(h, f"测试{i}", flags={"elderly_alone": i % 2 == 0})
        case = open_case(d.grid_a, r)
        do_set_team_member(case, "grid_worker", user=d.users["grid_a"], acting_user=None)
        do_record_checkin(case, date=timezone.localdate(), slot="am", temperature="36.5", symptoms=[],
                          acting_user=None)
        service = do_request_service(case, "medicine", "", acting_user=None)
        if i % 3 == 0:
            do_mark_service_done(service, acting_user=d.users["grid_a"])


@pytest.mark.parametrize("route, user, unit", [
    ("control:today", "community_a", "community_a"), ("control:today", "grid_a", "grid_a"),
    ("control:mine", "grid_a", None), ("control:dashboard", "commander", "community_a"),
    ("control:dashboard", "commander", "district"), ("control:cases", "community_a", "community_a")])
def test_pages_run_a_fixed_number_of_queries(client, ctx, route, user, unit):
    d = ctx.d
    client.force_login(d.users[user])
    url = reverse(route) + (f"?unit={getattr(d, unit).id}" if unit else "")
    with CaptureQueriesContext(connection) as few:
        assert client.get(url).status_code == 200
    _grow(d, 19)
    with CaptureQueriesContext(connection) as many:
        response = client.get(url)
    assert response.status_code == 200 and "测试18" in response.content.decode() or route == "control:dashboard"
    assert len(many) == len(few), f"{route}: {len(few)} queries with 1 case, {len(many)} with 20"


def test_the_case_page_runs_a_fixed_number_of_queries(client, ctx):
    d = ctx.d
    client.force_login(d.users["community_a"])
    url = reverse("control:case", args=[ctx.case.pk])
    with CaptureQueriesContext(connection) as few:
        assert client.get(url).status_code == 200
    for kind in ("medicine", "rubbish", "medical"):
        s = do_request_service(ctx.case, kind, "x", acting_user=None)
        client.post(reverse("control:service_assign", args=[s.pk]), {"user": "me"}, **HX)
    do_record_checkin(ctx.case, date=timezone.localdate(), slot="am", temperature="36.5", symptoms=[],
                      acting_user=d.users["grid_a"])
    for key in ("card_posted", "sensor_installed"):
        client.post(reverse("control:measure", args=[ctx.case.pk, key]))
    with CaptureQueriesContext(connection) as many:
        assert client.get(url).status_code == 200
    assert len(many) == len(few)


# --- the person's own page -------------------------------------------------------------------------------

def test_the_person_checks_in_asks_for_help_and_confirms_without_a_login(client, ctx):
    url = links.person_path(ctx.case.pk)
    page = client.get(url).content.decode()
    assert ctx.case.name in page and "第 4 天 / 共 7 天" in page and 'data-testid="checkin-submit"' in page
    response = client.post(url, {"action": "checkin", "slot": "am", "temperature": "36.7"})
    assert response.status_code == 302
    checkin = CheckIn.objects.get(case=ctx.case, date=timezone.localdate(), slot="am")
    assert checkin.entered_by is None and checkin.temperature == Decimal("36.7")
    client.post(url, {"action": "checkin", "slot": "am", "temperature": "36.7"})  # a double tap is harmless
    page = client.post(url, {"action": "checkin", "slot": "pm", "temperature": "36.6"}, follow=True).content.decode()
    assert "今天的体温已全部上报" in page
    client.post(url, {"action": "service", "kind": "medicine", "text": "降压药"})
    request_ = ServiceRequest.objects.get(case=ctx.case, kind="medicine")
    assert request_.requested_by is None and request_.loop is not None
    do_mark_service_done(request_, acting_user=ctx.d.users["grid_a"])
    page = client.get(url).content.decode()
    assert f'data-testid="confirm-{request_.pk}"' in page
    client.post(url, {"action": "confirm", "service": request_.pk})
    request_.refresh_from_db()
    assert request_.confirmed_at is not None
    assert Loop.objects.get(pk=request_.loop_id).state == LoopState.CLOSED


def test_the_person_page_explains_a_bad_temperature(client, ctx):
    response = client.post(links.person_path(ctx.case.pk), {"action": "checkin", "slot": "am", "temperature": "3"})
    assert response.status_code == 400 and 'data-testid="error"' in response.content.decode()
    assert not CheckIn.objects.filter(case=ctx.case, date=timezone.localdate()).exists()


def test_the_person_cannot_confirm_anothers_request(client, ctx):
    other = open_case(ctx.d.grid_b, ctx.d.resident_b)
    theirs = do_request_service(other, "groceries", "", acting_user=None)
    response = client.post(links.person_path(ctx.case.pk), {"action": "confirm", "service": theirs.pk})
    assert response.status_code == 404
    theirs.refresh_from_db()
    assert theirs.confirmed_at is None


@pytest.mark.parametrize("token", ["1-forgedforgedforgedfo", "abc", "99999999-x"])
def test_a_forged_person_link_is_a_404(client, ctx, token):
    assert client.get(reverse("person", args=[token])).status_code == 404


def test_a_released_case_link_takes_nothing(client, ctx):
    ControlCase.objects.filter(pk=ctx.case.pk).update(state=CaseState.RELEASED)
    url = links.person_path(ctx.case.pk)
    page = client.get(url).content.decode()
    assert 'data-testid="closed"' in page and 'data-testid="checkin-submit"' not in page
    client.post(url, {"action": "checkin", "slot": "am", "temperature": "36.5"})
    assert not CheckIn.objects.filter(case=ctx.case, date=timezone.localdate()).exists()


def test_the_communitys_care_summary_counts_what_each_grids_list_shows(client, ctx):
    """The community's per-grid summary follows ``care.care_visit_list`` of each grid."""
    from bihuan.control import care
    from bihuan.control.actions import do_record_care_visit
    from bihuan.register.models import Unit, UnitKind
    from bihuan.testing import create_unit

    d = ctx.d
    grid_a2 = create_unit(d.compound_a, "锦悦小区第2网格", UnitKind.GRID)
    people = []
    for i, unit in enumerate([d.grid_a, d.grid_a, grid_a2, grid_a2, grid_a2]):
        h = create_household(unit, f"{unit.name}{i}号")
        people.append(create_resident(h, f"关爱{i}", dt.date(1940, 1, 1), flags={"elderly_alone": i != 2}))
    open_case(grid_a2, people[2])  # home isolation, not flagged
    open_case(grid_a2, people[3], type_code="home_monitoring")  # flagged and under control: one row
    open_case(d.community_a, name="社区直管", phone="13900002222", site_address="鼓楼社区某院")
    today = timezone.localdate()
    do_record_care_visit(day=today, resident=people[0], acting_user=None)
    do_record_care_visit(day=today, case=ControlCase.objects.get(resident=people[2]), acting_user=None)
    client.force_login(d.users["community_a"])
    page = client.get(reverse("control:today") + f"?unit={d.community_a.id}").content.decode()
    for grid in Unit.objects.filter(d.community_a.subtree(), level=6):
        rows = care.care_visit_list(grid, today)
        visited = sum(r.visited for r in rows)
        assert (f'data-testid="care-grid-{grid.pk}"><a href="?unit={grid.pk}#care">{grid.name}</a> '
                f'<span title="已走访 / 应走访">{visited} / {len(rows)}</span>') in page, grid.name
    whole = care.care_visit_list(d.community_a, today)
    assert f"{sum(r.visited for r in whole)} / {len(whole)}</small>" in page


def test_a_verification_asking_for_control_opens_its_case_from_the_persons_page(client, ctx):
    client.force_login(ctx.d.users["community_a"])
    page = client.get(reverse("pushes:person", args=[ctx.pushed.pk])).content.decode()
    assert 'data-testid="open-control"' in page
    response = client.post(reverse("control:from_verification", args=[ctx.pushed.pk]))
    case = ControlCase.objects.get(pushed_person=ctx.pushed)
    assert response.status_code == 302 and response["Location"] == reverse("control:case", args=[case.pk])
    assert case.type.code == "home_isolation" and case.unit == ctx.d.grid_a and case.name == "钱来凤"
    page = client.get(reverse("pushes:person", args=[ctx.pushed.pk])).content.decode()
    assert 'data-testid="control-case"' in page and 'data-testid="open-control"' not in page
