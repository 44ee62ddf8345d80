"""Risk classification from versioned policy data: the right list and protocol version by date, tolerant name
matching, recommendation texts; editing actions with their audit rows; the risk-area Excel import."""

from __future__ import annotations

import datetime as dt
import io
from types import SimpleNamespace

import pytest
from django.core.exceptions import PermissionDenied
from django.utils import timezone
from openpyxl import Workbook

from bihuan.core.models import AuditEntry
from bihuan.policy import rules as policy
from bihuan.policy.actions import do_add_protocol, do_add_risk_area, do_end_risk_area
from bihuan.policy.io import import_risk_areas, template_bytes
from bihuan.policy.models import Measure, RiskArea
from bihuan.policy.rules import RiskIndex, recommend, risk_of
from bihuan.policy.validation import PolicyError, clean_area, validate_rules

from .helpers import load_default_protocols

D = dt.date


@pytest.fixture
def protocols(db):
    return load_default_protocols()


def area(level: str, name: str, start: dt.date, end: dt.date | None = None, code: str = "") -> RiskArea:
    return do_add_risk_area(level=level, name=name, area_code=code, effective_from=start, effective_to=end,
                            acting_user=None)


@pytest.fixture
def areas(db):
    return SimpleNamespace(
        pudong=area("high", "上海市浦东新区", D(2022, 3, 1), D(2022, 7, 20), code="310115"),
        shanghai=area("low", "上海市", D(2022, 3, 1)),
        chaoyang=area("medium", "北京市朝阳区", D(2022, 6, 1)),
        changchun=area("high", "吉林省长春市", D(2022, 3, 1), D(2022, 4, 30)),
        xuhui=area("medium", "徐汇区", D(2022, 3, 1), code="310104"),
    )


def person(origin: str = "", via: str = "", arrival: dt.date | None = None) -> SimpleNamespace:
    return SimpleNamespace(origin=origin, via=via, arrival_date=arrival, first_pushed_at=None)


def verification(**kw) -> SimpleNamespace:
    kw.setdefault("origin", "")
    kw.setdefault("visited", [])
    kw.setdefault("arrival_date", None)
    return SimpleNamespace(**kw)


# ------------------------------------------------------------------------------------------ classification


@pytest.mark.parametrize(("place", "level", "name"), [
    ("上海市浦东新区", "high", "上海市浦东新区"),
    ("上海浦东", "high", "上海市浦东新区"),
    ("浦东新区张江镇", "high", "上海市浦东新区"),
    ("中国上海市浦东新区花木街道", "high", "上海市浦东新区"),
    ("上海市　浦东新区", "high", "上海市浦东新区"),  # a full-width space
    ("310115", "high", "上海市浦东新区"),  # by area code
    ("310115125000", "high", "上海市浦东新区"),  # a township code inside Pudong
    ("上海市黄浦区", "low", "上海市"),  # the rest of the city: the longest match is the city
    ("上海", "low", "上海市"),
    ("上海市徐汇区", "medium", "徐汇区"),  # an area listed by its bare name
    ("北京朝阳", "medium", "北京市朝阳区"),
    ("北京市朝阳区建外街道", "medium", "北京市朝阳区"),
    ("长春市朝阳区", "high", "吉林省长春市"),  # not Beijing's Chaoyang
    ("吉林长春", "high", "吉林省长春市"),
    ("山西省太原市", None, None),
    ("", None, None),
])
def test_places_are_classified_by_name_or_code_and_the_longest_match_wins(areas, place, level, name):
    found_level, found = risk_of(place, D(2022, 4, 1) if "长春" in place else D(2022, 7, 1))
    assert found_level == level
    assert (found.name if found else None) == name


def test_the_list_in_force_on_the_day_is_used(areas):
    assert risk_of("上海浦东", D(2022, 2, 28)) == (None, None)  # before the lists
    assert risk_of("上海浦东", D(2022, 3, 1))[0] == "high"  # effective_from is inclusive
    assert risk_of("上海浦东", D(2022, 7, 19))[0] == "high"
    assert risk_of("上海浦东", D(2022, 7, 20)) == ("low", areas.shanghai)  # effective_to is exclusive
    assert risk_of("北京朝阳", D(2022, 5, 31)) == (None, None)
    assert risk_of("长春", D(2022, 4, 30)) == (None, None)


def test_an_index_classifies_many_places_with_one_query(areas, django_assert_num_queries):
    with django_assert_num_queries(1):
        index = RiskIndex(D(2022, 7, 1))
        levels = [index.classify(p)[0] for p in ("上海浦东", "北京朝阳", "上海黄浦", "太原")]
    assert levels == ["high", "medium", "low", None]


# ------------------------------------------------------------------------------------------ recommendation


def test_the_ninth_edition_high_medium_low(protocols, areas):
    day = D(2022, 7, 1)
    assert recommend(person("上海市浦东新区", arrival=day)) == (
        Measure.CENTRALIZED_QUARANTINE, "第九版：7日内到过高风险区 上海市浦东新区 → 集中隔离7天，第1、2、3、5、7天核酸")
    assert recommend(person("北京朝阳", arrival=day)) == (
        Measure.HOME_ISOLATION, "第九版：7日内到过中风险区 北京市朝阳区 → 居家隔离7天，第1、4、7天核酸")
    assert recommend(person("上海市黄浦区", arrival=day)) == (
        Measure.TESTS_ONLY, "第九版：7日内到过低风险区 上海市 → 核酸检测：3天内2次（第1、3天）")
    assert recommend(person("山西省太原市", arrival=day)) == (Measure.NONE, "第九版：7日内未到过风险区 → 无需管控")


def test_the_earlier_fourteen_plus_seven_rules_apply_before_the_ninth_edition(protocols, areas):
    day = D(2022, 4, 1)
    assert recommend(person("上海浦东", arrival=day)) == (
        Measure.CENTRALIZED_QUARANTINE,
        "第八版：14日内到过高风险区 上海市浦东新区 → 集中隔离14天，第1、4、7、14天核酸；再居家健康监测7天，第2、7天核酸")
    measure, basis = recommend(person("上海市黄浦区", arrival=day))
    assert measure == Measure.NONE and basis.startswith("第八版：14日内到过低风险区 上海市")
    # The same trip judged a day before and on the day the ninth edition took effect.
    assert recommend(person("上海浦东", arrival=D(2022, 6, 27)))[1].startswith("第八版")
    assert recommend(person("上海浦东", arrival=D(2022, 6, 28)))[1].startswith("第九版")


def test_without_a_protocol_in_force_there_is_no_recommendation(protocols, areas):
    measure, basis = recommend(person("上海浦东", arrival=D(2021, 1, 1)))
    assert measure == "" and "没有生效的防控方案" in basis


def test_the_highest_risk_within_the_rules_days_among_origin_route_and_visits_decides(protocols, areas):
    day = D(2022, 7, 1)
    traveller = person("山西省太原市", via="石家庄、北京市朝阳区", arrival=day)
    assert recommend(traveller)[0] == Measure.HOME_ISOLATION  # the route passes a medium-risk area
    recent = verification(visited=[{"place": "上海市浦东新区", "from": "2022-06-20", "to": "2022-06-26"}])
    assert recommend(traveller, recent) == (
        Measure.CENTRALIZED_QUARANTINE, "第九版：7日内到过高风险区 上海市浦东新区 → 集中隔离7天，第1、2、3、5、7天核酸")
    # Left Pudong ten days before arriving: outside the seven days of the high-risk rule.
    older = verification(visited=[{"place": "上海市浦东新区", "from": "2022-06-10", "to": "2022-06-21"}])
    assert recommend(traveller, older)[0] == Measure.HOME_ISOLATION


def test_a_visit_is_judged_by_the_list_in_force_while_the_person_was_there(protocols, areas):
    arrival = D(2022, 5, 5)  # the eighth edition: 14 days
    during = verification(visited=[{"place": "长春市", "from": "2022-04-20", "to": "2022-04-28"}])
    assert recommend(person("太原", arrival=arrival), during)[0] == Measure.CENTRALIZED_QUARANTINE
    after = verification(visited=[{"place": "长春市", "from": "2022-04-30", "to": "2022-05-02"}])
    assert recommend(person("太原", arrival=arrival), after)[0] == Measure.NONE


def test_the_verified_origin_and_arrival_date_take_precedence(protocols, areas):
    pushed = person("山西省太原市", arrival=D(2022, 4, 1))
    verified = verification(origin="北京朝阳", arrival_date=D(2022, 7, 3))
    assert recommend(pushed, verified) == (
        Measure.HOME_ISOLATION, "第九版：7日内到过中风险区 北京市朝阳区 → 居家隔离7天，第1、4、7天核酸")


def test_recommend_works_on_saved_records(protocols, areas, district):
    from bihuan.pushes.tests.helpers import Builder

    b = Builder(district)
    p = b.person(district.grid_a, origin="上海市浦东新区", arrival_date=D(2022, 7, 2))
    v = b.verify(p, outcome="new_control")
    assert recommend(p, v)[0] == Measure.CENTRALIZED_QUARANTINE
    assert recommend(p)[0] == Measure.CENTRALIZED_QUARANTINE


# ------------------------------------------------------------------------------------------ editing


def test_rules_are_validated_with_the_field_named():
    good = {"risk": "high", "within_days": 7, "measure": "centralized_quarantine", "days": 7, "tests": "1,2,3,5,7"}
    assert validate_rules([good])[0]["tests"] == [1, 2, 3, 5, 7]
    cases = [
        ([], "rules"),
        ([{**good, "risk": "severe"}], "rules[0].risk"),
        ([good, good], "rules[1].risk"),
        ([{**good, "measure": "lockdown"}], "rules[0].measure"),
        ([{**good, "within_days": 0}], "rules[0].within_days"),
        ([{**good, "days": "seven"}], "rules[0].days"),
        ([{**good, "tests": [1, 9]}], "rules[0].tests"),
        ([{**good, "tests": [3, 1]}], "rules[0].tests"),
        ([{**good, "colour": "red"}], "rules[0].colour"),
        ([{**good, "then": [{"measure": "none"}]}], "rules[0].then[0].measure"),
        ([{**good, "then": [{"measure": "home_monitoring", "days": 7, "tests": [8]}]}], "rules[0].then[0].tests"),
        ([{"risk": "low", "within_days": 7, "measure": "tests_only", "days": 3}], "rules[0].tests"),
    ]
    for rules, field in cases:
        with pytest.raises(PolicyError) as info:
            validate_rules(rules)
        assert str(info.value).startswith(field + ":"), (field, str(info.value))


def test_the_command_office_adds_a_protocol_version_with_an_audit_row(protocols, areas, district):
    rules = [{"risk": "high", "within_days": 7, "measure": "centralized_quarantine", "days": 5, "tests": [1, 3, 5],
              "then": [{"measure": "home_monitoring", "days": 3, "tests": [3]}]}]
    tenth = do_add_protocol(name="第十版（试行）", effective_from=D(2022, 11, 11), rules=rules,
                            acting_user=district.users["office"])
    entry = AuditEntry.objects.get(action="policy.protocol.add")
    assert entry.actor == district.users["office"] and entry.target_id == str(tenth.pk)
    area("high", "广州市海珠区", D(2022, 11, 1))
    assert recommend(person("广州海珠", arrival=D(2022, 11, 12))) == (
        Measure.CENTRALIZED_QUARANTINE,
        "第十版（试行）：7日内到过高风险区 广州市海珠区 → 集中隔离5天，第1、3、5天核酸；再居家健康监测3天，第3天核酸")
    # No rule for low-risk areas in this version: no control.
    assert recommend(person("上海", arrival=D(2022, 11, 12)))[0] == Measure.NONE
    with pytest.raises(PolicyError, match="^effective_from:"):
        do_add_protocol(name="重复", effective_from=D(2022, 11, 11), rules=rules, acting_user=district.users["office"])


def test_only_the_policy_desk_may_edit_policies(areas, district):
    for name in ("community_a", "township_a", "department", "grid_a"):
        with pytest.raises(PermissionDenied):
            do_add_risk_area(level="high", name="天津市津南区", effective_from=D(2022, 1, 9),
                             acting_user=district.users[name])
    assert not RiskArea.objects.filter(name="天津市津南区").exists()
    do_add_risk_area(level="high", name="天津市津南区", effective_from=D(2022, 1, 9),
                     acting_user=district.users["commander"])


def test_ending_a_risk_area_lifts_it_from_that_day(areas, district):
    office = district.users["office"]
    do_end_risk_area(area_id=areas.chaoyang.pk, effective_to=D(2022, 7, 5), acting_user=office)
    assert risk_of("北京朝阳", D(2022, 7, 4))[0] == "medium"
    assert risk_of("北京朝阳", D(2022, 7, 5)) == (None, None)
    entry = AuditEntry.objects.get(action="policy.risk_area.end")
    assert entry.changes["effective_to"] == [None, "2022-07-05"]
    with pytest.raises(PolicyError, match="^effective_to:"):
        do_end_risk_area(area_id=areas.chaoyang.pk, effective_to=D(2022, 7, 9), acting_user=office)
    with pytest.raises(PolicyError, match="^effective_to:"):
        do_end_risk_area(area_id=areas.pudong.pk, effective_to=D(2022, 2, 1), acting_user=office)


@pytest.mark.parametrize(("values", "field"), [
    ({"level": "severe"}, "level"),
    ({"name": " "}, "name"),
    ({"area_code": "31011"}, "area_code"),
    ({"effective_from": ""}, "effective_from"),
    ({"effective_to": "2022-05-01"}, "effective_to"),
])
def test_a_bad_risk_area_is_refused_naming_the_field(db, values, field):
    good = {"level": "high", "name": "上海市浦东新区", "area_code": "", "effective_from": "2022-06-01",
            "effective_to": None}
    with pytest.raises(PolicyError) as info:
        clean_area(**{**good, **values})
    assert str(info.value).startswith(field + ":")


# ------------------------------------------------------------------------------------------ Excel import


def workbook(rows: list[list], title: list | None = None) -> bytes:
    wb = Workbook()
    ws = wb.active
    if title:
        ws.append(title)
    ws.append(["风险等级", "地区编码", "地区名称", "生效日期", "失效日期（解除日期）"])
    for row in rows:
        ws.append(row)
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


def test_a_risk_area_list_imports_with_dates_in_any_common_form(db, district):
    data = workbook([
        ["高", "310115", "上海市浦东新区", dt.datetime(2022, 6, 1), None],
        ["中风险", 310104, "上海市徐汇区", "2022/6/1", "2022年7月1日"],
        ["低风险区", None, "上海市", "20220601", ""],
        ["high", "", "北京市朝阳区", 44713, None],  # an Excel serial date: 2022-06-01
    ], title=["2022年6月1日风险区名单"])
    result = import_risk_areas(data, "名单.xlsx", acting_user=district.users["office"])
    assert result.ok, [str(e) for e in result.errors]
    assert (result.created, result.unchanged) == (4, 0)
    xuhui = RiskArea.objects.get(name="上海市徐汇区")
    assert (xuhui.level, xuhui.area_code, xuhui.effective_to, xuhui.list_name) == (
        "medium", "310104", D(2022, 7, 1), "名单.xlsx")
    assert RiskArea.objects.get(name="北京市朝阳区").effective_from == D(2022, 6, 1)
    entry = AuditEntry.objects.get(action="policy.risk_area.import")
    assert entry.changes["created"] == 4 and entry.actor == district.users["office"]
    # The same file again changes nothing.
    again = import_risk_areas(data, "名单.xlsx", acting_user=district.users["office"])
    assert (again.created, again.unchanged) == (0, 4) and RiskArea.objects.count() == 4


def test_a_risk_area_list_with_errors_imports_nothing_and_names_every_bad_row(db, district):
    data = workbook([
        ["高", "310115", "上海市浦东新区", "2022-06-01", None],
        ["严重", "", "上海市黄浦区", "2022-06-01", None],
        ["中", 3.10104e17, "上海市徐汇区", "2022-06-01", None],
        ["低", "", "", "2022-06-01", None],
        ["低", "", "上海市", "6月1日", None],
        ["中", "", "北京市朝阳区", "2022-06-01", "2022-05-01"],
        ["高", "310115", "上海市浦东新区", "2022-06-01", None],
    ])
    result = import_risk_areas(data, "bad.xlsx", acting_user=district.users["office"])
    assert not result.ok
    found = {(e.row, e.field) for e in result.errors}
    assert found == {(3, "风险等级"), (4, "地区编码"), (5, "地区名称"), (6, "生效日期"), (7, "失效日期"), (8, "地区名称")}
    assert "科学计数法" in next(e.reason for e in result.errors if e.row == 4)
    assert "第 2 行" in next(e.reason for e in result.errors if e.row == 8)
    assert not RiskArea.objects.exists()
    assert not AuditEntry.objects.filter(action="policy.risk_area.import").exists()


def test_a_risk_area_list_without_the_required_columns_is_refused(db, district):
    wb = Workbook()
    wb.active.append(["地区名称", "备注"])
    wb.active.append(["上海市", ""])
    out = io.BytesIO()
    wb.save(out)
    result = import_risk_areas(out.getvalue(), "x.xlsx", acting_user=district.users["office"])
    assert {e.field for e in result.errors} == {"风险等级", "生效日期"}
    garbage = import_risk_areas(b"\x00\x01not a table", "x.xlsx", acting_user=district.users["office"])
    assert not garbage.ok


def test_a_csv_risk_area_list_in_gbk_imports(db, district):
    text = "风险等级,地区编码,地区名称,生效日期,失效日期\n高,310115,上海市浦东新区,2022-06-01,\n"
    result = import_risk_areas(text.encode("gbk"), "list.csv", acting_user=district.users["office"])
    assert result.ok and result.created == 1


def test_importing_needs_the_edit_policy_permission(db, district):
    with pytest.raises(PermissionDenied):
        import_risk_areas(workbook([["高", "", "上海市", "2022-06-01", None]]), "x.xlsx",
                          acting_user=district.users["township_a"])


def test_the_template_imports_as_it_is(db, district):
    result = import_risk_areas(template_bytes(), "template.xlsx", acting_user=district.users["office"])
    assert result.ok and result.created == 1


def test_default_protocols_are_shipped_as_data(protocols):
    assert {"第八版", "第九版"} <= set(protocols)
    assert protocols["第九版"].effective_from == D(2022, 6, 28)
    assert policy.protocol_in_force(timezone.localdate()).name in {"第九版", *protocols}
    validate_rules(protocols["第八版"].rules)
    validate_rules(protocols["第九版"].rules)
