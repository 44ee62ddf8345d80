"""/api/v1/pushes: the access matrix over every route (insider yes, outsider 404, a role without the permission
403), upload and reconciliation, verification results (masked), the daily report as JSON and Excel, and fixed
query counts on lists."""

from __future__ import annotations

import datetime as dt
import io
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from types import SimpleNamespace

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone
from openpyxl import load_workbook

from bihuan.core.models import AuditEntry
from bihuan.core.roles import PERMISSIONS, Perm
from bihuan.pushes import report
from bihuan.pushes.models import PushBatch, PushedPerson, PushRow, RowResult
from bihuan.testing import api_call, api_routes, assert_list_queries_fixed, make_id_number, route_id

from .helpers import DAY, NOW, Builder, build_day, local

BASE = "/api/v1"
P = f"{BASE}/pushes"


ONE = make_id_number(dt.date(1990, 1, 2))


def upload_file(name: str = "推送名单.csv", rows: list[str] | None = None) -> SimpleUploadedFile:
    one = ONE
    rows = rows if rows is not None else [
        f"王小明,{one},13900001111,上海市浦东新区,2022-07-01,锦悦小区3号楼2单元401",
        "李四,123,,北京朝阳,2022-07-01,",  # a broken ID with neither phone nor address: rejected
        f"王小明,{one},13900001111,上海市浦东新区,2022-07-01,锦悦小区3号楼2单元401",
    ]
    text = "姓名,身份证号,手机号,来源地,抵达时间,现住址\n" + "\n".join(rows) + "\n"
    return SimpleUploadedFile(name, text.encode("gbk"), content_type="text/csv")


def batch_for(b: Builder, unit, people: list[PushedPerson]) -> PushBatch:
    """A processed batch of ``unit`` whose rows name ``people`` (one imported row each, one rejected row)."""
    batch = PushBatch.objects.create(source="省大数据中心", file_name=f"{unit.name}.xlsx",
                                     file_sha256=uuid.uuid4().hex * 2, unit=unit, state="done",
                                     rows_total=len(people) + 1, rows_done=len(people) + 1, imported=len(people),
                                     rejected=1)
    for i, p in enumerate(people, start=2):
        PushRow.objects.create(batch=batch, row_number=i, result=RowResult.IMPORTED, person=p,
                               masked={"姓名": p.name, "手机号": p.phone_masked})
    PushRow.objects.create(batch=batch, row_number=len(people) + 2, result=RowResult.REJECTED,
                           reason="身份证号校验位错误", field="id_number", masked={"姓名": "某某"})
    return batch


@pytest.fixture
def world(district):
    """Pushed people in both branches (with verifications), and a batch of grid A and one of grid B."""
    d = district
    b = Builder(d)
    d.person_a = b.person(d.grid_a, method="resident")
    b.verify(d.person_a, "new_control", "home_isolation", recommended_measure="home_isolation",
             recommendation_basis="第九版：7日内到过中风险区 北京市朝阳区 → 居家隔离7天，第1、4、7天核酸")
    d.person_b = b.person(d.grid_b, method="address")
    b.verify(d.person_b, "no_control_needed", "none")
    d.batch_a = batch_for(b, d.grid_a, [d.person_a])
    d.batch_b = batch_for(b, d.grid_b, [d.person_b])
    return d


# ------------------------------------------------------------------------------------------ the matrix


@dataclass(frozen=True)
class Case:
    """How one route is tried: ``url(d)`` names branch-A objects every insider sees (grid A and its batch);
    ``everything`` is the unfiltered list and ``seen`` the branch-A ids a response shows."""

    perm: str | None
    url: Callable
    ok: int = 200
    upload: bool = False
    everything: str | None = None
    seen: Callable | None = None


def batch_ids(j) -> set:
    return {("batch", i["id"]) for i in j["items"]}


def person_ids(j) -> set:
    return {("person", i["id"]) for i in j["items"]}


def branch_a(d) -> set:
    return {("batch", d.batch_a.id), ("person", d.person_a.id)}


MATRIX: dict[tuple[str, str], Case] = {
    ("POST", "/pushes/batches"): Case(Perm.IMPORT_PUSH, lambda d: f"{P}/batches", ok=201, upload=True),
    ("GET", "/pushes/batches"): Case(Perm.IMPORT_PUSH, lambda d: f"{P}/batches?unit={d.grid_a.id}",
                                     everything=f"{P}/batches?limit=200", seen=batch_ids),
    ("GET", "/pushes/batches/{id}"): Case(Perm.IMPORT_PUSH, lambda d: f"{P}/batches/{d.batch_a.id}"),
    ("GET", "/pushes/batches/{id}/rows"): Case(Perm.IMPORT_PUSH, lambda d: f"{P}/batches/{d.batch_a.id}/rows"),
    ("GET", "/pushes/batches/{id}/report.xlsx"): Case(Perm.IMPORT_PUSH,
                                                      lambda d: f"{P}/batches/{d.batch_a.id}/report.xlsx"),
    ("GET", "/pushes/people"): Case(Perm.VERIFY_PUSH, lambda d: f"{P}/people?unit={d.grid_a.id}",
                                    everything=f"{P}/people?limit=200", seen=person_ids),
    ("GET", "/pushes/report"): Case(Perm.VIEW_REGISTER, lambda d: f"{P}/report?unit={d.grid_a.id}"),
    ("GET", "/pushes/report.xlsx"): Case(Perm.VIEW_REGISTER, lambda d: f"{P}/report.xlsx?unit={d.grid_a.id}"),
}


def test_every_pushes_route_is_in_the_access_matrix():
    assert api_routes("pushes") == set(MATRIX), "a route without an access test (or a test for a gone route)"


def _body(case: Case, d) -> dict | None:
    if case.upload:
        return {"file": upload_file(), "source": "省大数据中心", "unit": d.grid_a.id}
    return None


@pytest.mark.parametrize("route", sorted(MATRIX), ids=route_id)
def test_insiders_reach_branch_a_and_outsiders_get_404(world, as_user, route):
    d, case = world, MATRIX[route]
    outcomes = set()
    for name in d.insiders:
        role = d.users[name].staff.role
        expected = case.ok if case.perm is None or case.perm in PERMISSIONS[role] else 403
        response = as_user(name, route[0], case.url(d), _body(case, d), case.upload)
        assert response.status_code == expected, (name, role, response.content[:300])
        outcomes.add(expected)
        if expected == 200 and case.seen:
            assert case.seen(response.json()) & branch_a(d), name
    for name in d.outsiders:
        response = as_user(name, route[0], case.url(d), _body(case, d), case.upload)
        assert response.status_code == 404, (name, response.content[:300])
        assert response.json() == {"detail": response.json()["detail"]}
    assert case.ok in outcomes
    assert 403 in outcomes or case.perm == Perm.VIEW_REGISTER


@pytest.mark.parametrize("route", sorted(k for k, c in MATRIX.items() if c.everything), ids=route_id)
def test_an_outsiders_list_never_contains_branch_a_records(world, as_user, route):
    case = MATRIX[route]
    for name in ("township_b", "village_b"):
        response = as_user(name, "GET", case.everything)
        assert response.status_code == 200
        seen = case.seen(response.json())
        assert seen, f"{name} sees nothing at all: the test would prove nothing"
        assert not seen & branch_a(world), name
    assert case.seen(as_user("township_a", "GET", case.everything).json()) & branch_a(world)


@pytest.mark.parametrize("route", sorted(MATRIX), ids=route_id)
def test_every_route_refuses_a_request_without_credentials(world, client, route):
    case = MATRIX[route]
    response = api_call(client, {}, route[0], case.url(world), _body(case, world), case.upload)
    assert response.status_code == 401


def test_the_report_of_a_unit_beside_ones_own_is_a_404_even_for_the_default(world, as_user):
    j = as_user("village_b", "GET", f"{P}/report").json()
    assert j["unit"]["id"] == world.village_b.id
    assert as_user("village_b", "GET", f"{P}/report?unit={world.township_a.id}").status_code == 404


# ------------------------------------------------------------------------------------------ upload


def test_an_upload_is_imported_at_once_and_reconciles(world, as_user):
    d = world
    response = as_user("office", "POST", f"{P}/batches",
                       {"file": upload_file(), "source": "省大数据中心", "unit": d.office.id}, multipart=True)
    assert response.status_code == 201, response.content
    j = response.json()
    assert j["state"] == "done" and j["unit"]["id"] == d.office.id
    assert (j["rows_total"], j["imported"], j["merged"], j["rejected"]) == (3, 1, 1, 1)
    assert j["reconciled"] and j["percent"] == 100
    assert [r["field"] for r in j["rejections"]] == ["id_number"] and j["rejections"][0]["rows"] == 1

    rows = as_user("office", "GET", f"{P}/batches/{j['id']}/rows").json()
    assert [(r["row_number"], r["result"]) for r in rows["items"]] == [(2, "imported"), (3, "rejected"),
                                                                        (4, "merged")]
    assert "13900001111" not in json.dumps(rows, ensure_ascii=False)
    assert as_user("office", "GET", f"{P}/batches/{j['id']}/rows?result=rejected").json()["total"] == 1

    people = as_user("office", "GET", f"{P}/people?batch={j['id']}").json()
    assert people["total"] == 1
    person = people["items"][0]
    assert person["name"] == "王小明" and person["phone_masked"] == "139****1111" and "*" in person["id_masked"]
    assert person["unit"]["id"] == d.grid_a.id and person["route_method"] == "address"
    assert person["outcome"] == "verifying" and person["verified_at"] is None
    # The same file again changes nothing and answers with the same batch.
    again = as_user("office", "POST", f"{P}/batches",
                    {"file": upload_file(), "source": "省大数据中心", "unit": d.office.id}, multipart=True)
    assert again.status_code == 201 and again.json()["id"] == j["id"]
    assert PushBatch.objects.filter(unit=d.office, file_name="推送名单.csv").count() == 1


def test_an_upload_defaults_to_ones_own_unit(world, as_user):
    response = as_user("community_a", "POST", f"{P}/batches",
                       {"file": upload_file(), "source": "市大数据局"}, multipart=True)
    assert response.status_code == 201 and response.json()["unit"]["id"] == world.community_a.id


@pytest.mark.parametrize(("body", "field"), [
    ({"source": " "}, "source"),
    ({"file": SimpleUploadedFile("empty.csv", b"")}, "file"),
])
def test_a_refused_upload_is_a_400_naming_the_field(world, as_user, body, field):
    body = {"file": upload_file(), "source": "省大数据中心", **body}
    response = as_user("office", "POST", f"{P}/batches", body, multipart=True)
    assert response.status_code == 400, response.content
    assert response.json()["field"] == field


def test_an_upload_without_a_file_is_a_422(world, as_user):
    assert as_user("office", "POST", f"{P}/batches", {"source": "x"}, multipart=True).status_code == 422


def test_the_batch_report_downloads_and_is_audited(world, as_user):
    response = as_user("township_a", "GET", f"{P}/batches/{world.batch_a.id}/report.xlsx")
    assert response.status_code == 200 and "attachment" in response["Content-Disposition"]
    load_workbook(io.BytesIO(response.content))
    assert AuditEntry.objects.filter(action="push.report", target_id=str(world.batch_a.id)).exists()


# ------------------------------------------------------------------------------------------ results


def test_verification_results_are_masked_and_filterable(world, as_user):
    d = world
    j = as_user("township_a", "GET", f"{P}/people").json()
    assert [i["id"] for i in j["items"]] == [d.person_a.id]
    item = j["items"][0]
    assert item["outcome"] == "new_control" and item["measure"] == "home_isolation"
    assert item["recommendation_basis"].startswith("第九版") and item["verified_at"]
    assert item["unit"]["id"] == d.grid_a.id and not item["in_queue"]
    assert d.person_a.reveal_phone() not in json.dumps(j, ensure_ascii=False)

    def ids(query: str) -> list[int]:
        return [i["id"] for i in as_user("commander", "GET", f"{P}/people?{query}").json()["items"]]

    today = timezone.localdate().isoformat()
    assert ids(f"batch={d.batch_b.id}") == [d.person_b.id]
    assert ids(f"unit={d.township_b.id}") == [d.person_b.id]
    assert ids("outcome=new_control") == [d.person_a.id]
    assert ids("measure=none") == [d.person_b.id]
    assert ids(f"verified_on={today}") == [d.person_a.id, d.person_b.id]
    assert ids("verified_on=2020-01-01") == []
    assert ids(f"pushed_on={today}&outcome=no_control_needed") == [d.person_b.id]
    assert as_user("commander", "GET", f"{P}/people?outcome=lost").status_code == 422
    # A batch outside one's part is a 404, like any other object there.
    assert as_user("township_a", "GET", f"{P}/people?batch={d.batch_b.id}").status_code == 404


def test_still_verifying_includes_people_without_a_verification_row(world, as_user):
    d = world
    waiting = Builder(d).person(d.grid_a)
    ids = [i["id"] for i in as_user("commander", "GET", f"{P}/people?outcome=verifying").json()["items"]]
    assert ids == [waiting.id]


# ------------------------------------------------------------------------------------------ the report


def test_the_report_as_json_is_the_rollup(district, as_user):
    d = district
    build_day(d)
    j = as_user("commander", "GET", f"{P}/report?day={DAY.isoformat()}").json()
    units, own, totals = report.collect(d.district, DAY, DAY)
    assert j["title"] == "尧都区大数据推送人员核查日报（2022年3月4日）"
    assert j["totals"] == totals[d.district.id].as_dict() and j["to_level"] == 4
    assert [i["id"] for i in j["items"]] == [u.id for u, _c, _o in report.report_rows(units, own, totals,
                                                                                        d.district.id, 4)]
    for item in j["items"]:
        assert item["counts"] == totals[item["id"]].as_dict()
    part = as_user("township_a", "GET", f"{P}/report?day={DAY.isoformat()}&to_level=6").json()
    assert part["unit"]["id"] == d.township_a.id and part["totals"] == totals[d.township_a.id].as_dict()
    assert [i["id"] for i in part["items"]] == [d.community_a.id, d.compound_a.id, d.grid_a.id]
    ranged = as_user("commander", "GET", f"{P}/report?start=2022-03-03&end=2022-03-04").json()
    assert ranged["totals"]["pushed"] == 14 and ranged["title"].endswith("（2022年3月3日—3月4日）")


@pytest.mark.parametrize(("query", "field"), [("start=2022-03-04&end=2022-03-01", "end"),
                                              ("start=2021-01-01&end=2022-03-01", "end"), ("to_level=2", "to_level")])
def test_a_bad_report_period_is_a_400(world, as_user, query, field):
    response = as_user("township_a", "GET", f"{P}/report?{query}")
    assert response.status_code == 400 and response.json()["field"] == field
    assert as_user("township_a", "GET", f"{P}/report.xlsx?{query}").status_code == 400


def test_the_report_workbook_downloads_and_is_audited(district, as_user):
    build_day(district)
    response = as_user("township_a", "GET", f"{P}/report.xlsx?day={DAY.isoformat()}")
    assert response.status_code == 200 and response["Content-Type"].startswith(
        "application/vnd.openxmlformats-officedocument.spreadsheetml")
    ws = load_workbook(io.BytesIO(response.content)).active
    assert ws["A1"].value == "解放路街道大数据推送人员核查日报（2022年3月4日）"
    assert AuditEntry.objects.filter(action="push.daily_report.export").exists()


def test_openapi_describes_the_excel_responses_and_the_upload(client):
    doc = client.get(f"{BASE}/openapi.json").json()
    for path in (f"{P}/report.xlsx", f"{P}/batches/{{id}}/report.xlsx"):
        assert any("spreadsheetml" in c for c in doc["paths"][path]["get"]["responses"]["200"]["content"])
    upload = doc["paths"][f"{P}/batches"]["post"]["requestBody"]["content"]
    assert "multipart/form-data" in upload
    for path, ops in doc["paths"].items():
        if path.startswith(P):
            for method, op in ops.items():
                assert op["security"] and "401" in op["responses"], (method, path)


# ------------------------------------------------------------------------------------------ query counts


@pytest.fixture
def crowded(world):
    d = world
    b = Builder(d, now=NOW)
    people = []
    for i in range(25):
        p = b.person(d.grid_a if i % 2 else d.compound_a, at=local(DAY, 9))
        b.verify(p, "left", at=local(DAY, 10))
        people.append(p)
    for i in range(4):
        batch_for(b, d.grid_a if i % 2 else d.community_a, people[i * 5:(i + 1) * 5])
    d.big_batch = batch_for(b, d.compound_a, people)
    return SimpleNamespace(d=d)


@pytest.mark.parametrize("url", [
    lambda d: f"{P}/batches?",
    lambda d: f"{P}/batches/{d.big_batch.id}/rows?",
    lambda d: f"{P}/people?",
    lambda d: f"{P}/people?batch={d.big_batch.id}&",
    lambda d: f"{P}/report?day={DAY.isoformat()}&to_level=6&",
], ids=["batches", "rows", "people", "people-of-batch", "report"])
def test_lists_run_a_fixed_number_of_queries_whatever_the_page_size(crowded, client, url):
    d = crowded.d
    assert_list_queries_fixed(client, d.users["township_a"], lambda limit: f"{url(d)}limit={limit}", most=12)
