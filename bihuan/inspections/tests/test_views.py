"""Every page and API route of inspections: what each account sees. Above all, a planned visit (四不两直) is
visible to no one in the target unit or above it except the district command and the visit's own group."""

import io

import pytest
from django.urls import reverse

from bihuan.inspections import actions, bulletin
from bihuan.inspections.models import Bulletin, Finding
from bihuan.notify.models import Message
from bihuan.testing import API_BASE, api_routes, url_names

from .helpers import answers_failing, draw_home_visit, png, visit_and_fail

pytestmark = pytest.mark.django_db

SEES_PLANNED = {"commander", "office", "inspector"}


def page_urls(visit, finding=None, b=None):
    urls = {
        "inspections:overview": ("get", reverse("inspections:overview")),
        "inspections:plans": ("get", reverse("inspections:plans")),
        "inspections:visit": ("get", reverse("inspections:visit", args=[visit.pk])),
        "inspections:visit_start": ("post", reverse("inspections:visit_start", args=[visit.pk])),
        "inspections:visit_submit": ("post", reverse("inspections:visit_submit", args=[visit.pk])),
        "inspections:findings": ("get", reverse("inspections:findings") + "?state=all"),
        "inspections:ranking": ("get", reverse("inspections:ranking")),
        "inspections:bulletins": ("get", reverse("inspections:bulletins")),
    }
    return urls


def test_every_inspection_page_is_in_this_file():
    covered = {"inspections:overview", "inspections:plans", "inspections:visit", "inspections:visit_start",
               "inspections:visit_submit", "inspections:findings", "inspections:ranking", "inspections:bulletins",
               "inspections:photo", "inspections:finding", "inspections:finding_report", "inspections:finding_close",
               "inspections:finding_return", "inspections:drill", "inspections:bulletin", "inspections:bulletin_pdf",
               "inspections:bulletin_xlsx", "inspections:bulletin_publish"}
    assert {n for n in url_names() if n.startswith("inspections:")} == covered


def test_no_one_in_the_target_unit_or_above_but_the_command_sees_a_planned_visit_on_any_page(world, client):
    _plan, visit = draw_home_visit(world)
    secret = visit.label.encode()
    d = world.d
    for name, user in d.users.items():
        if name in SEES_PLANNED:
            continue
        client.force_login(user)
        for route, (method, url) in page_urls(visit).items():
            response = getattr(client, method)(url)
            if route in ("inspections:visit", "inspections:visit_start", "inspections:visit_submit"):
                assert response.status_code == 404, (name, route, response.status_code)
            else:
                assert response.status_code in (200, 403), (name, route, response.status_code)
                assert secret not in response.content, (name, route)
    from bihuan.inspections.models import Visit
    assert Visit.objects.get(pk=visit.pk).state == "planned"  # nobody started it on the way


def test_no_one_but_the_command_and_the_group_sees_a_planned_visit_through_the_api(world, as_user):
    plan, visit = draw_home_visit(world)
    for name in world.d.users:
        listing = as_user(name, "GET", f"{API_BASE}/inspections/visits?limit=100")
        one = as_user(name, "GET", f"{API_BASE}/inspections/visits/{visit.pk}")
        plans = as_user(name, "GET", f"{API_BASE}/inspections/plans?week_start={plan.week_start}")
        if name in SEES_PLANNED:
            assert one.status_code == 200, name
            assert visit.pk in {v["id"] for v in listing.json()["items"]}
        else:
            assert one.status_code == 404, name
            assert listing.status_code in (200, 403) and visit.label not in listing.content.decode(), name
            start = as_user(name, "POST", f"{API_BASE}/inspections/visits/{visit.pk}/start", {})
            assert start.status_code == 404, name
        assert plans.status_code == (200 if name in ("commander", "office") else 403), name


def test_once_started_the_target_unit_and_above_see_the_visit_and_the_other_branch_does_not(world, client):
    _plan, visit = draw_home_visit(world)
    actions.do_start_visit(visit, acting_user=world.inspector)
    d = world.d
    for name in d.insiders:
        client.force_login(d.users[name])
        assert client.get(reverse("inspections:visit", args=[visit.pk])).status_code == 200, name
    for name in d.outsiders + ["inspector_b"]:
        client.force_login(d.users[name])
        assert client.get(reverse("inspections:visit", args=[visit.pk])).status_code == 404, name


def test_the_inspector_answers_on_the_page_and_the_community_rectifies_on_its_page(world, client):
    _plan, visit = draw_home_visit(world)
    client.force_login(world.inspector)
    client.post(reverse("inspections:visit_start", args=[visit.pk]))
    page = client.get(reverse("inspections:visit", args=[visit.pk]))
    assert b'data-testid="prefill-sensor_working"' in page.content
    form = {}
    for a in visit.answers.select_related("item"):
        form[f"result-{a.pk}"] = "fail" if a.item.key == "waste_handled" else "pass"
        if a.prefilled == "fail":
            form[f"reason-{a.pk}"] = "现场门磁已安装"
    waste = visit.answers.get(item__key="waste_handled")
    form[f"photo-{waste.pk}"] = png()
    response = client.post(reverse("inspections:visit_submit", args=[visit.pk]), form)
    assert response.status_code == 302
    finding = Finding.objects.get()
    assert client.get(reverse("inspections:photo", args=[waste.pk])).status_code == 200
    client.force_login(world.d.users["community_a"])
    page = client.get(reverse("inspections:finding", args=[finding.pk]))
    assert b'data-testid="report-form"' in page.content
    client.post(reverse("inspections:finding_report", args=[finding.pk]), {"text": "已消杀", "photo": png()})
    client.force_login(world.d.users["village_b"])
    assert client.get(reverse("inspections:finding", args=[finding.pk])).status_code == 404
    assert client.get(reverse("inspections:photo", args=[waste.pk])).status_code == 404
    client.force_login(world.inspector)
    client.post(reverse("inspections:finding_return", args=[finding.pk]), {"reason": "未见消杀记录"})
    assert Finding.objects.get().returns == 1


def test_ranking_drill_down_and_the_findings_list_render(world, client):
    visit_and_fail(world, "waste_handled")
    client.force_login(world.d.users["commander"])
    page = client.get(reverse("inspections:ranking") + "?level=4")
    assert page.status_code == 200 and b'data-testid="formula"' in page.content
    assert f'data-testid="rank-{world.d.community_a.pk}"'.encode() in page.content
    drill = client.get(reverse("inspections:drill", args=[world.d.community_a.pk]) + "?key=inspection_passed")
    assert drill.status_code == 200 and "生活垃圾".encode() in drill.content
    client.force_login(world.d.users["village_b"])
    assert client.get(reverse("inspections:drill", args=[world.d.community_a.pk]) +
                      "?key=inspection_passed").status_code == 404


def test_a_bulletin_in_html_pdf_and_excel_and_publishing_tells_the_units_named(world, client):
    from openpyxl import load_workbook

    from bihuan.inspections.planning import monday

    _visit, findings = visit_and_fail(world, "waste_handled")
    client.force_login(world.d.users["commander"])
    from django.utils import timezone
    response = client.post(reverse("inspections:bulletins"), {"unit": world.d.district.pk,
                                                              "week": monday(timezone.localdate()).isoformat()})
    b = Bulletin.objects.get()
    assert response.status_code == 302 and b.number == 1
    assert "生活垃圾".encode() in client.get(reverse("inspections:bulletin", args=[b.pk])).content
    pdf = client.get(reverse("inspections:bulletin_pdf", args=[b.pk]))
    assert pdf.content.startswith(b"%PDF") and b"FontFile2" in pdf.content  # the CJK font is embedded
    xlsx = client.get(reverse("inspections:bulletin_xlsx", args=[b.pk]))
    ws = load_workbook(io.BytesIO(xlsx.content)).active
    assert ws["A1"].value.startswith("尧都区疫情防控督导通报")
    client.force_login(world.d.users["community_a"])
    assert client.get(reverse("inspections:bulletin", args=[b.pk])).status_code == 404  # not yet published
    client.force_login(world.d.users["commander"])
    client.post(reverse("inspections:bulletin_publish", args=[b.pk]))
    assert world.d.community_a.pk in bulletin.named_units(Bulletin.objects.get().content)
    assert Message.objects.filter(user=world.d.users["community_a"], subject__contains="督导通报").exists()


def test_every_api_route_of_inspections_is_exercised_here():
    assert api_routes("inspections") == {
        ("GET", "/inspections/plans"), ("POST", "/inspections/plans"), ("GET", "/inspections/visits"),
        ("GET", "/inspections/visits/{visit_id}"), ("POST", "/inspections/visits/{visit_id}/start"),
        ("GET", "/inspections/findings"), ("GET", "/inspections/findings/{finding_id}"),
        ("POST", "/inspections/findings/{finding_id}/report"), ("POST", "/inspections/findings/{finding_id}/close"),
        ("POST", "/inspections/findings/{finding_id}/return"), ("GET", "/inspections/scores")}


def test_the_api_rectification_loop_and_scores_are_scoped(world, as_user):
    from django.utils import timezone

    week = timezone.localdate().isoformat()
    made = as_user("commander", "POST", f"{API_BASE}/inspections/plans",
                   {"group": world.group.pk, "week_start": week, "seed": 5})
    assert made.status_code == 201 and made.json()["seed"] == 5
    assert as_user("township_a", "POST", f"{API_BASE}/inspections/plans",
                   {"group": world.group_b.pk, "week_start": week, "seed": 5}).status_code == 403
    visit = next(v for v in made.json()["visits"] if v["target_kind"] == "home")
    from bihuan.inspections.models import Visit

    v = Visit.objects.get(pk=visit["id"])
    actions.do_start_visit(v, acting_user=world.inspector)
    [f] = actions.do_submit_visit(v, answers_failing(v, "waste_handled"), acting_user=world.inspector)
    assert as_user("village_b", "GET", f"{API_BASE}/inspections/findings/{f.pk}").status_code == 404
    report = as_user("community_a", "POST", f"{API_BASE}/inspections/findings/{f.pk}/report",
                     {"text": "已整改", "photo": png()}, multipart=True)
    assert report.status_code == 200 and report.json()["state"] == "reported"
    assert as_user("community_a", "POST", f"{API_BASE}/inspections/findings/{f.pk}/close", {}).status_code == 403
    bad = as_user("inspector", "POST", f"{API_BASE}/inspections/findings/{f.pk}/return", {"reason": " "})
    assert bad.status_code == 400 and bad.json()["field"] == "reason"
    closed = as_user("inspector", "POST", f"{API_BASE}/inspections/findings/{f.pk}/close", {})
    assert closed.json()["state"] == "closed"
    listing = as_user("community_a", "GET", f"{API_BASE}/inspections/findings")
    assert [x["id"] for x in listing.json()["items"]] == [f.pk]
    assert as_user("village_b", "GET", f"{API_BASE}/inspections/findings").json()["items"] == []
    s = as_user("township_a", "GET", f"{API_BASE}/inspections/scores?level=4").json()
    assert {x["unit"] for x in s["items"]} == {world.d.community_a.pk}
    assert as_user("rep_b", "GET", f"{API_BASE}/inspections/scores").status_code == 200
