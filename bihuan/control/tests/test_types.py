"""Control types run without a programmer: the command office publishes a new version of a type's checklist on
a page; open cases keep the version they were opened with (shown on the case page), new cases take the new one;
every version is audited; a retired type is offered no more while its cases run on."""

from __future__ import annotations

import pytest
from django.urls import reverse
from django.utils import timezone

from bihuan.control import dashboard
from bihuan.control.actions import ControlError, control_type, do_open_case
from bihuan.control.models import ControlCase, ControlType, MeasureItem
from bihuan.control.types import ControlTypeError, do_new_type_version, parse_measures
from bihuan.core.models import AuditEntry

from .helpers import make_case

NEW_CHECKLIST = "张贴居家隔离告知卡\n签订居家隔离协议书 | 拍照\n安装门磁或监控\n每日两次上门测温"


@pytest.fixture
def old_case(district):
    case = make_case(district.grid_a, resident=district.resident_a)
    assert case.type.version == 1
    return case


def publish(client, code="home_isolation", **changes):
    base = ControlType.objects.filter(code=code).order_by("-is_current", "-version").first()
    data = {"name_zh": base.name_zh, "name_en": base.name_en, "rank": base.rank,
            "checkins_per_day": base.checkins_per_day, "at_home": "1" if base.at_home else "",
            "measures": NEW_CHECKLIST, "note": "增加每日上门测温", **changes}
    return client.post(reverse("control:type_edit", args=[code]), data)


def test_the_command_office_publishes_a_new_version_and_open_cases_keep_theirs(client, district, old_case):
    client.force_login(district.users["office"])
    page = client.get(reverse("control:type_edit", args=["home_isolation"])).content.decode()
    assert "签订居家隔离协议书 | 拍照" in page and "1 人在管" in page
    response = publish(client)
    assert response.status_code == 302
    v1, v2 = ControlType.objects.filter(code="home_isolation").order_by("version")
    assert (v1.is_current, v2.is_current, v2.version) == (False, True, 2)
    assert [m["label"] for m in v1.measures][-1] == "告知同住人员防护要求"  # the old version is untouched
    assert [m["label"] for m in v2.measures][-1] == "每日两次上门测温"
    assert v2.created_by == district.users["office"] and v2.note == "增加每日上门测温"
    entry = AuditEntry.objects.get(action="control.type_version")
    assert entry.changes["version"] == 2 and entry.changes["previous"] == v1.pk and "measures" in entry.changes

    old_case.refresh_from_db()
    assert old_case.type_id == v1.pk  # an open case keeps its version
    case_page = client.get(reverse("control:case", args=[old_case.pk])).content.decode()
    assert "第 1 版" in case_page and "现行第 2 版" in case_page

    new = do_open_case(type_code="home_isolation", unit=district.grid_a, name="新开案", phone="13900002222",
                       start_date=timezone.localdate(), site_kind="home", site_address="锦悦小区5号楼",
                       acting_user=district.users["community_a"])
    assert new.type_id == v2.pk
    assert list(MeasureItem.objects.filter(case=new).order_by("id").values_list("label", flat=True))[-1] == \
        "每日两次上门测温"
    assert "第 2 版" in client.get(reverse("control:case", args=[new.pk])).content.decode()


def test_a_measure_keeps_its_key_across_versions_and_new_ones_get_new_keys():
    previous = [{"key": "agreement_signed", "label": "签订居家隔离协议书", "photo": True}]
    out = parse_measures("签订居家隔离协议书 | 拍照\n每日两次上门测温", previous)
    assert out == [{"key": "agreement_signed", "label": "签订居家隔离协议书", "photo": True},
                   {"key": "measure_1", "label": "每日两次上门测温", "photo": False}]
    with pytest.raises(ControlTypeError) as exc:
        parse_measures("测温 | 签字")
    assert exc.value.field == "measures"


def test_a_bad_version_is_refused_beside_its_field_and_nothing_is_written(client, district):
    client.force_login(district.users["office"])
    response = publish(client, measures="   ")
    assert response.status_code == 400 and 'data-field="measures"' in response.content.decode()
    response = publish(client, note="")
    assert response.status_code == 400 and 'data-field="note"' in response.content.decode()
    assert ControlType.objects.filter(code="home_isolation").count() == 1
    assert not AuditEntry.objects.filter(action="control.type_version").exists()


def test_a_new_type_is_version_one_and_is_offered_for_new_cases(client, district):
    client.force_login(district.users["office"])
    response = client.post(reverse("control:type_new"), {
        "code": "health_watch", "name_zh": "健康观察", "name_en": "Health watch", "rank": "1",
        "checkins_per_day": "1", "at_home": "1", "measures": "签订健康观察承诺书 | 拍照", "note": "新增"})
    assert response.status_code == 302
    t = control_type("health_watch")
    assert (t.version, t.checkins_per_day, t.measures[0]["photo"]) == (1, 1, True)
    client.force_login(district.users["community_a"])
    assert "健康观察" in client.get(reverse("control:new") + f"?unit={district.grid_a.pk}").content.decode()


def test_a_retired_type_is_offered_no_more_while_its_cases_run_on(client, district, old_case):
    client.force_login(district.users["office"])
    assert client.post(reverse("control:type_retire", args=["home_isolation"])).status_code == 302
    assert not ControlType.objects.current().filter(code="home_isolation").exists()
    assert AuditEntry.objects.filter(action="control.type_retired").count() == 1
    with pytest.raises(ControlError):
        control_type("home_isolation")
    client.force_login(district.users["community_a"])
    assert "居家隔离</option>" not in client.get(reverse("control:new") + f"?unit={district.grid_a.pk}").content.decode()
    page = client.get(reverse("control:case", args=[old_case.pk])).content.decode()
    assert "该类型已停用" in page
    # The dashboard still counts the case under its type.
    _units, totals = dashboard.rollup(district.district)
    assert totals[district.district.pk].under["home_isolation"] == 1
    # A new version brings it back.
    client.force_login(district.users["office"])
    assert publish(client, code="home_isolation").status_code == 302
    assert control_type("home_isolation").version == 2


def test_the_dashboard_counts_cases_of_every_version_under_their_type(client, district, old_case):
    do_new_type_version("home_isolation", name_zh="居家隔离", name_en="Home isolation", rank=2, checkins_per_day=2,
                        at_home=True, measures=NEW_CHECKLIST, note="修订", acting_user=district.users["office"])
    make_case(district.grid_a, resident=district.resident_a2)
    ControlCase.objects.filter(resident=district.resident_a2).update(
        type=ControlType.objects.current().get(code="home_isolation"))
    units, totals = dashboard.rollup(district.district)
    assert totals[district.district.pk].under["home_isolation"] == 2
    assert [t.code for t in dashboard.control_types()].count("home_isolation") == 1


def test_a_community_cannot_publish_a_version(client, district):
    client.force_login(district.users["community_a"])
    assert publish(client).status_code == 403
    assert ControlType.objects.filter(code="home_isolation").count() == 1


def test_the_types_page_speaks_english_from_the_apps_catalogue(client, district):
    from django.utils import translation

    client.force_login(district.users["office"])
    with translation.override("en"):
        page = client.get(reverse("control:types"), HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "Control types and measures checklists" in page and "Revise (publish a new version)" in page


def test_the_types_page_reads_the_same_few_queries_however_many_versions(client, district, old_case):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    client.force_login(district.users["office"])

    def queries() -> int:
        with CaptureQueriesContext(connection) as ctx:
            assert client.get(reverse("control:types")).status_code == 200
        return len(ctx.captured_queries)

    before = queries()
    for n in range(4):
        do_new_type_version("home_isolation", name_zh="居家隔离", name_en="Home isolation", rank=2,
                            checkins_per_day=2, at_home=True, measures=f"{NEW_CHECKLIST}\n第{n}项", note=f"第{n}次",
                            acting_user=district.users["office"])
    assert queries() == before
