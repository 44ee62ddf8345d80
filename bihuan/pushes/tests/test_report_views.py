"""Pages of the report and the policy desk: every page in an access matrix (insider, outsider, role without the
permission), the dashboard and the daily report render the rollup, the Excel download, and the policy forms
(add / end a risk area, add a protocol version with errors shown per rule, import a list, classify a place)."""

from __future__ import annotations

import datetime as dt
import io
import json
import re
from collections.abc import Callable
from dataclasses import dataclass

import pytest
from django.urls import reverse
from openpyxl import Workbook, load_workbook

from bihuan.core.models import AuditEntry
from bihuan.core.roles import PERMISSIONS, Perm
from bihuan.policy.actions import do_add_risk_area
from bihuan.policy.models import Protocol, RiskArea
from bihuan.policy.tests.helpers import load_default_protocols
from bihuan.pushes import report

from .helpers import DAY, build_day


@dataclass(frozen=True)
class Route:
    """How one page is tried: ``url(d)`` names branch A where the page is about a unit (then outsiders get
    404); ``body`` makes it a POST; ``ok`` is the insider's status."""

    perm: str
    url: Callable
    body: Callable | None = None
    ok: int = 200
    scoped: bool = True


def _area(d) -> RiskArea:
    return do_add_risk_area(level="high", name="上海市浦东新区", effective_from=dt.date(2022, 6, 1), acting_user=None)


ROUTES: dict[str, Route] = {
    "pushes:dashboard": Route(Perm.VIEW_REGISTER, lambda d: f"{reverse('pushes:dashboard')}?unit={d.grid_a.id}"),
    "pushes:report": Route(Perm.VIEW_REGISTER, lambda d: f"{reverse('pushes:report')}?unit={d.grid_a.id}"),
    "pushes:report_xlsx": Route(Perm.VIEW_REGISTER,
                                lambda d: f"{reverse('pushes:report_xlsx')}?unit={d.grid_a.id}"),
    "pushes:policy": Route(Perm.VIEW_REGISTER, lambda d: reverse("pushes:policy"), scoped=False),
    "pushes:policy_classify": Route(Perm.VIEW_REGISTER, lambda d: f"{reverse('pushes:policy_classify')}?place=上海",
                                    scoped=False),
    "pushes:policy_template": Route(Perm.VIEW_REGISTER, lambda d: reverse("pushes:policy_template"), scoped=False),
    "pushes:policy_area_add": Route(Perm.EDIT_POLICY, lambda d: reverse("pushes:policy_area_add"), ok=302,
                                    scoped=False,
                                    body=lambda d: {"level": "medium", "name": "北京市朝阳区",
                                                    "effective_from": "2022-06-01"}),
    "pushes:policy_area_end": Route(Perm.EDIT_POLICY, lambda d: reverse("pushes:policy_area_end", args=[_area(d).pk]),
                                    ok=302, scoped=False, body=lambda d: {"effective_to": "2022-07-01"}),
    "pushes:policy_import": Route(Perm.EDIT_POLICY, lambda d: reverse("pushes:policy_import"), ok=302, scoped=False,
                                  body=lambda d: {"file": _upload([["高", "", "上海市", "2022-06-01", None]])}),
    "pushes:policy_protocol_add": Route(Perm.EDIT_POLICY, lambda d: reverse("pushes:policy_protocol_add"), ok=302,
                                        scoped=False, body=lambda d: _protocol_post(name=f"第十版{id(d)}")),
}


def _upload(rows: list[list]):
    from django.core.files.uploadedfile import SimpleUploadedFile

    wb = Workbook()
    wb.active.append(["风险等级", "地区编码", "地区名称", "生效日期", "失效日期"])
    for row in rows:
        wb.active.append(row)
    out = io.BytesIO()
    wb.save(out)
    return SimpleUploadedFile("风险区.xlsx", out.getvalue())


_day_counter = iter(range(1, 10_000))


def _protocol_post(**over) -> dict:
    data = {"name": "第十版", "effective_from": (dt.date(2023, 1, 1) + dt.timedelta(days=next(_day_counter)))
            .isoformat(), "note": "",
            "high_within_days": "7", "high_measure": "centralized_quarantine", "high_days": "5",
            "high_tests": "1,3,5", "high_then_measure": "home_monitoring", "high_then_days": "3",
            "high_then_tests": "3",
            "medium_within_days": "7", "medium_measure": "home_isolation", "medium_days": "5", "medium_tests": "1、5",
            "low_within_days": "", "low_measure": "", "low_days": "", "low_tests": ""}
    return data | over


def _names() -> set[str]:
    from django.urls import URLPattern

    from bihuan.policy import views as policy_views
    from bihuan.pushes import report_views, urls

    def flat(patterns):
        for p in patterns:
            yield from ([p] if isinstance(p, URLPattern) else flat(p.url_patterns))

    return {f"pushes:{p.name}" for p in flat(urls.urlpatterns) if getattr(p.callback, "__module__", "") in
            (report_views.__name__, policy_views.__name__)}


def test_every_report_and_policy_page_is_in_the_matrix():
    assert _names() == set(ROUTES)


@pytest.mark.parametrize("name", sorted(ROUTES))
def test_insiders_open_the_page_and_outsiders_do_not(district, client, name):
    d, route = district, ROUTES[name]
    seen = set()
    for user in [*d.insiders, *d.outsiders]:
        role = d.users[user].staff.role
        client.force_login(d.users[user])
        body = route.body(d) if route.body else None
        url = route.url(d)
        response = client.post(url, body) if body is not None else client.get(url)
        if route.scoped and user in d.outsiders:
            expected = 404
        else:
            expected = route.ok if route.perm in PERMISSIONS[role] else 403
        assert response.status_code == expected, (user, role, response.status_code, response.content[:300])
        seen.add(expected)
    assert route.ok in seen


def test_pages_need_a_login(district, client):
    for name, route in ROUTES.items():
        response = client.get(route.url(district))
        assert response.status_code in (302, 405), name
        if response.status_code == 302:
            assert "/login/" in response["Location"]


# ------------------------------------------------------------------------------------------ dashboard


def test_the_dashboard_shows_the_rollup_with_charts_and_drill_down(district, client):
    d = district
    build_day(d)
    client.force_login(d.users["commander"])
    response = client.get(reverse("pushes:dashboard"), {"date": DAY.isoformat()})
    assert response.status_code == 200
    html = response.content.decode()
    _, totals = report.daily_report(d.district, DAY)
    top = totals[d.district.id]
    assert re.search(rf'data-testid="kpi-pushed">{top.pushed}<', html)
    assert re.search(rf'data-testid="kpi-overdue">{top.overdue}<', html)
    assert 'data-testid="ping-pong"' in html
    charts = json.loads(re.search(r'<script id="push-charts" type="application/json">(.*?)</script>', html,
                                  re.S).group(1))
    assert sum(o["value"] for o in charts["outcomes"]) == top.verified
    assert sum(charts["measures"]["values"]) == sum(top.measures.values())
    assert len(charts["days"]["labels"]) == 14 and charts["days"]["pushed"][-1] == top.pushed
    assert "echarts-5.6.0.min.js" in html and "js/charts.js" in html
    assert f'data-testid="child-{d.office.id}"' in html  # the district's children: the command office
    # Drill down to a township: its children are listed, with their figures.
    response = client.get(reverse("pushes:dashboard"), {"unit": d.township_a.id, "date": DAY.isoformat()})
    html = response.content.decode()
    assert re.search(rf'data-testid="child-pushed-{d.community_a.id}">{totals[d.community_a.id].pushed}<', html)


def test_a_grid_workers_dashboard_is_their_grid(district, client):
    client.force_login(district.users["grid_a"])
    response = client.get(reverse("pushes:dashboard"))
    assert response.status_code == 200 and district.grid_a.name in response.content.decode()
    assert client.get(reverse("pushes:dashboard"), {"unit": district.township_a.id}).status_code == 404


# ------------------------------------------------------------------------------------------ the daily report


def test_the_report_page_has_the_excel_rows_and_totals(district, client):
    d = district
    build_day(d)
    client.force_login(d.users["township_a"])
    response = client.get(reverse("pushes:report"), {"start": DAY.isoformat(), "end": DAY.isoformat(),
                                                     "to_level": "6"})
    html = response.content.decode()
    assert "解放路街道大数据推送人员核查日报（2022年3月4日）" in html
    for unit in (d.community_a, d.compound_a, d.grid_a):
        assert f'data-testid="row-{unit.id}"' in html
    _, totals = report.daily_report(d.township_a, DAY)
    foot = re.search(r'data-testid="totals">(.*?)</tr>', html, re.S).group(1)
    assert [int(v) for v in re.findall(r"<td>(\d+)</td>", foot)] == report.values_of(totals[d.township_a.id])


def test_the_report_downloads_as_excel_and_is_audited(district, client):
    d = district
    build_day(d)
    client.force_login(d.users["commander"])
    response = client.get(reverse("pushes:report_xlsx"), {"date": DAY.isoformat()})
    assert response.status_code == 200 and "attachment" in response["Content-Disposition"]
    ws = load_workbook(io.BytesIO(response.content)).active
    assert ws["A1"].value == "尧都区大数据推送人员核查日报（2022年3月4日）"
    assert AuditEntry.objects.filter(action="push.daily_report.export", actor=d.users["commander"]).exists()


def test_a_reversed_range_is_read_the_right_way_round(district, client):
    client.force_login(district.users["commander"])
    response = client.get(reverse("pushes:report"), {"start": "2022-03-04", "end": "2022-03-01"})
    assert "（2022年3月1日—3月4日）" in response.content.decode()


# ------------------------------------------------------------------------------------------ the policy desk


def test_the_policy_page_lists_versions_and_areas_in_force(district, client):
    load_default_protocols()
    do_add_risk_area(level="high", name="上海市浦东新区", effective_from=dt.date(2022, 3, 1),
                     effective_to=dt.date(2022, 7, 20), acting_user=None)
    client.force_login(district.users["grid_a"])
    html = client.get(reverse("pushes:policy"), {"date": "2022-07-01"}).content.decode()
    ninth = Protocol.objects.get(name="第九版")
    assert re.search(rf'data-testid="protocol-{ninth.id}">.*?data-testid="in-force"', html, re.S)
    assert "7日内到过高风险区 → 集中隔离7天，第1、2、3、5、7天核酸" in html
    assert "上海市浦东新区" in html
    assert 'data-testid="policy-edit"' not in html  # a grid worker reads, never edits
    later = client.get(reverse("pushes:policy"), {"date": "2022-07-20"}).content.decode()
    assert not re.search(r'data-testid="area-\d', later) and "没有风险区" in later


def test_the_office_adds_and_ends_a_risk_area(district, client):
    office = district.users["office"]
    client.force_login(office)
    response = client.post(reverse("pushes:policy_area_add"), {"level": "high", "name": "上海市 浦东新区",
                                                               "area_code": "310115", "effective_from": "2022-06-01"})
    assert response.status_code == 302
    area = RiskArea.objects.get(name="上海市浦东新区")
    assert AuditEntry.objects.filter(action="policy.risk_area.add", actor=office, target_id=str(area.pk)).exists()
    response = client.post(reverse("pushes:policy_area_end", args=[area.pk]), {"effective_to": "2022-07-01"})
    area.refresh_from_db()
    assert response.status_code == 302 and area.effective_to == dt.date(2022, 7, 1)

    bad = client.post(reverse("pushes:policy_area_add"), {"level": "high", "name": "", "effective_from": "2022-06-01"})
    assert bad.status_code == 400 and 'data-testid="area-error"' in bad.content.decode()


def test_the_office_adds_a_protocol_version_from_the_small_form(district, client):
    client.force_login(district.users["office"])
    response = client.post(reverse("pushes:policy_protocol_add"), _protocol_post(effective_from="2022-12-07"))
    assert response.status_code == 302
    tenth = Protocol.objects.get(effective_from=dt.date(2022, 12, 7))
    assert [r["risk"] for r in tenth.rules] == ["high", "medium"]
    assert tenth.rules[0]["then"] == [{"measure": "home_monitoring", "days": 3, "tests": [3]}]
    assert tenth.rules[1]["tests"] == [1, 5]
    assert AuditEntry.objects.filter(action="policy.protocol.add", target_id=str(tenth.pk)).exists()


def test_a_bad_rule_is_shown_on_its_own_row(district, client):
    client.force_login(district.users["office"])
    response = client.post(reverse("pushes:policy_protocol_add"),
                           _protocol_post(medium_tests="1,9", effective_from="2022-12-08"))
    html = response.content.decode()
    assert response.status_code == 400
    error = re.search(r'data-testid="rule-error-medium">(.*?)</div>', html).group(1)
    assert error.startswith("tests:") and 'data-testid="rule-error-high"' not in html
    assert 'value="1,9"' in html  # what was typed is kept
    assert not Protocol.objects.filter(effective_from=dt.date(2022, 12, 8)).exists()


def test_a_risk_area_list_with_errors_is_shown_row_by_row(district, client):
    client.force_login(district.users["office"])
    response = client.post(reverse("pushes:policy_import"),
                           {"file": _upload([["高", "", "上海市", "2022-06-01", None], ["极高", "", "北京市", "x", None]])})
    html = response.content.decode()
    assert response.status_code == 400 and 'data-testid="import-errors"' in html
    assert "第 3 行" in html and "[风险等级]" in html and "[生效日期]" in html
    assert not RiskArea.objects.exists()
    response = client.post(reverse("pushes:policy_import"),
                           {"file": _upload([["高", "", "上海市", "2022-06-01", None]]), "list_name": "6月1日名单"})
    assert response.status_code == 302 and RiskArea.objects.get().list_name == "6月1日名单"


def test_the_classifier_names_the_area_and_the_recommendation(district, client):
    load_default_protocols()
    do_add_risk_area(level="high", name="上海市浦东新区", effective_from=dt.date(2022, 6, 1), acting_user=None)
    client.force_login(district.users["community_a"])
    html = client.get(reverse("pushes:policy_classify"), {"place": "上海浦东", "date": "2022-07-01"}).content.decode()
    assert "高风险" in html and "上海市浦东新区" in html
    assert "第九版：7日内到过高风险区 上海市浦东新区 → 集中隔离7天" in html
    html = client.get(reverse("pushes:policy_classify"), {"place": "太原", "date": "2022-07-01"}).content.decode()
    assert "不在风险区名单中" in html


def test_the_office_sees_each_policy_change_with_who_made_it_and_others_do_not(district, client):
    office = district.users["office"]
    client.force_login(office)
    client.post(reverse("pushes:policy_area_add"), {"level": "medium", "name": "北京市朝阳区",
                                                    "effective_from": "2022-06-01"})
    client.post(reverse("pushes:policy_protocol_add"), _protocol_post(effective_from="2022-12-07"))
    html = client.get(reverse("pushes:policy")).content.decode()
    changes = html.split('data-testid="policy-changes"', 1)[1].split("</ul>", 1)[0]
    assert "policy.protocol.add" in changes and "policy.risk_area.add" in changes and "北京市朝阳区" in changes
    assert office.username in changes or office.get_full_name() in changes
    client.force_login(district.users["grid_a"])
    assert 'data-testid="policy-changes"' not in client.get(reverse("pushes:policy")).content.decode()


def test_an_edition_in_force_is_never_edited_a_change_is_a_new_edition(district, client):
    load_default_protocols()
    ninth = Protocol.objects.get(name="第九版")
    client.force_login(district.users["office"])
    again = client.post(reverse("pushes:policy_protocol_add"),
                        _protocol_post(effective_from=f"{ninth.effective_from:%Y-%m-%d}"))
    assert again.status_code == 400  # a second edition on the same day is refused, the ninth stays as it was
    assert Protocol.objects.get(pk=ninth.pk).rules == ninth.rules


def test_the_daily_report_names_the_protocol_edition_in_force(district, client):
    load_default_protocols()
    client.force_login(district.users["commander"])
    html = client.get(reverse("pushes:report"), {"date": "2022-07-01"}).content.decode()
    assert 'data-testid="report-protocol"' in html and "第九版" in html and "2022-06-28" in html
