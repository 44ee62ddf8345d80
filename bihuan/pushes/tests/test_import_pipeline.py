"""The import pipeline: idempotent uploads, de-duplication across files, sources and days, access, the worker,
resuming after a crash, routing after each chunk, saved mappings, unreadable files and the command."""

import datetime as dt
import sys
import types

import pytest
from django.core.exceptions import PermissionDenied
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db.models import F
from django.http import Http404
from django.utils import timezone

from bihuan.core import crypto
from bihuan.core.models import AuditEntry
from bihuan.core.worker import run_tick
from bihuan.pushes import importing
from bihuan.pushes.headers import detect_mapping, save_mapping
from bihuan.pushes.importing import create_batch, preview_file, process_batch
from bihuan.pushes.models import BatchState, PushBatch, PushedPerson, PushRow, SourceMapping
from bihuan.pushes.tasks import process_pending
from bihuan.testing import make_id_number

from .corpus import BUILDERS, simple_csv

PROVINCE, CITY = "省大数据中心", "市公安局"


def upload(district, path, source=PROVINCE, user="community_a", unit=None, **kw):
    return create_batch(path.read_bytes(), path.name, source=source, unit=unit or district.community_a,
                        acting_user=district.users[user], **kw)


def people(id_number):
    return PushedPerson.objects.filter(id_hash=crypto.lookup_hash("id", id_number))


def results(batch):
    return {r.row_number: (r.result, r.reason) for r in PushRow.objects.filter(batch=batch)}


def counts():
    return (PushBatch.objects.count(), PushRow.objects.count(), PushedPerson.objects.count(),
            AuditEntry.objects.count())


def test_importing_the_same_file_twice_changes_nothing(district, tmp_path):
    corpus_file = BUILDERS["gbk_csv"](tmp_path, timezone.localdate())
    first = upload(district, corpus_file.path, source=corpus_file.source)
    before = counts()

    again = upload(district, corpus_file.path, source=corpus_file.source)

    assert again.pk == first.pk and again.state == BatchState.DONE
    assert counts() == before
    assert PushedPerson.objects.filter(times_pushed__gt=1).count() == 0


def test_a_person_pushed_again_within_the_window_joins_the_record_across_sources(district, tmp_path):
    zhang, li = make_id_number(dt.date(1980, 1, 2)), make_id_number(dt.date(1992, 5, 6), "F")
    upload(district, simple_csv(tmp_path / "day1.csv", [
        {"姓名": "张三", "身份证号": zhang, "来源地": "上海市"},
        {"姓名": "李四", "手机号": "13912340000", "抵达时间": "2022-03-01"},
    ]))
    three_days_ago = timezone.now() - dt.timedelta(days=3)
    PushedPerson.objects.update(last_pushed_at=three_days_ago)

    batch = upload(district, simple_csv(tmp_path / "day4.csv", [
        {"姓名": "张三", "身份证号": zhang, "手机号": "13800001111", "现住址": "锦悦小区3号楼"},
        {"姓名": "李四", "身份证号": li, "手机号": "139 1234 0000"},
        {"姓名": "王五", "手机号": "13912340000"},  # the same phone, another name: another person
    ], encoding="gbk"), source=CITY)

    day = timezone.localdate(three_days_ago).isoformat()
    assert results(batch) == {
        2: ("merged", f"与 {day} 推送的记录合并（身份证号）"),
        3: ("merged", f"与 {day} 推送的记录合并（手机号）"),
        4: ("imported", ""),
    }
    person = people(zhang).get()
    assert person.times_pushed == 2 and person.sources == f"{PROVINCE}|{CITY}"
    assert person.reveal_phone() == "13800001111" and person.address_text == "锦悦小区3号楼"  # filled in
    assert person.origin == "上海市" and person.first_pushed_at < person.last_pushed_at
    li_person = people(li).get()  # the ID number was filled into the record found by phone
    assert li_person.name == "李四" and li_person.arrival_date == dt.date(2022, 3, 1)
    assert PushedPerson.objects.count() == 3


def test_an_earlier_record_is_found_by_name_and_birth_date_only_when_the_id_numbers_allow(district, tmp_path):
    born = dt.date(1970, 1, 1)
    first = make_id_number(born)
    header = ["姓名", "身份证号", "出生日期"]
    upload(district, simple_csv(tmp_path / "day1.csv", [
        {"姓名": "赵六", "出生日期": "1970-01-01"},  # no ID number, no phone
        {"姓名": "钱七", "身份证号": first},
    ], header=header))
    PushedPerson.objects.update(last_pushed_at=timezone.now() - dt.timedelta(days=2))
    zhao, other_qian = make_id_number(born), make_id_number(born)

    batch = upload(district, simple_csv(tmp_path / "day3.csv", [
        {"姓名": "赵六", "身份证号": zhao},  # born the same day: the record without an ID number gets it
        {"姓名": "钱七", "身份证号": other_qian},  # the same name and day, another ID number: another person
        {"姓名": "钱七", "出生日期": "1970-01-01"},  # no ID number: the latest of the two
    ], header=header), source=CITY)

    day = timezone.localdate(timezone.now() - dt.timedelta(days=2)).isoformat()
    assert results(batch) == {2: ("merged", f"与 {day} 推送的记录合并（姓名和出生日期）"), 3: ("imported", "无电话"),
                              4: ("merged", "与第 3 行同一人（姓名和出生日期）")}
    assert people(zhao).get().name == "赵六" and PushedPerson.objects.filter(name="赵六").count() == 1
    assert PushedPerson.objects.filter(name="钱七").count() == 2


def test_a_person_pushed_again_outside_the_window_is_new_work(district, tmp_path):
    zhang = make_id_number(dt.date(1980, 1, 2))
    upload(district, simple_csv(tmp_path / "day1.csv", [{"姓名": "张三", "身份证号": zhang}]))
    PushedPerson.objects.update(last_pushed_at=F("last_pushed_at") - dt.timedelta(days=15))

    batch = upload(district, simple_csv(tmp_path / "day16.csv", [{"姓名": "张三", "身份证号": zhang, "来源地": "西安市"}]))

    assert results(batch) == {2: ("imported", "无电话")}
    assert people(zhang).count() == 2


def test_the_window_is_an_argument(district, tmp_path, monkeypatch):
    zhang = make_id_number(dt.date(1980, 1, 2))
    upload(district, simple_csv(tmp_path / "a.csv", [{"姓名": "张三", "身份证号": zhang}]))
    PushedPerson.objects.update(last_pushed_at=F("last_pushed_at") - dt.timedelta(days=15))
    monkeypatch.setattr(importing, "INLINE_MAX_ROWS", 0)
    batch = upload(district, simple_csv(tmp_path / "b.csv", [{"姓名": "张三", "身份证号": zhang, "来源地": "西安市"}]))
    assert batch.state == BatchState.PENDING

    batch = process_batch(batch, window_days=30)

    assert results(batch)[2][0] == "merged" and people(zhang).count() == 1


def test_the_same_list_from_two_sources_on_one_day_is_one_person(district, tmp_path):
    zhang = make_id_number(dt.date(1980, 1, 2))
    upload(district, simple_csv(tmp_path / "province.csv", [{"姓名": "张三", "身份证号": zhang}]))
    batch = upload(district, simple_csv(tmp_path / "city.csv", [{"姓名": "张 三", "身份证号": zhang}]), source=CITY)

    assert results(batch) == {2: ("merged", f"与 {timezone.localdate().isoformat()} 推送的记录合并（身份证号）")}
    assert people(zhang).get().sources == f"{PROVINCE}|{CITY}"


def test_an_outsider_cannot_upload_into_another_branch(district, tmp_path):
    path = simple_csv(tmp_path / "x.csv", [{"姓名": "张三", "身份证号": make_id_number(dt.date(1980, 1, 2))}])
    before = counts()
    with pytest.raises(Http404):
        upload(district, path, user="township_b")
    with pytest.raises(PermissionDenied):
        upload(district, path, user="grid_a")  # a grid worker verifies; they do not import
    assert counts() == before
    assert upload(district, path, user="township_a").state == BatchState.DONE  # an insider above may


def test_a_registered_resident_is_recognised(district, tmp_path):
    id_number = district.resident_a.reveal_id_number()
    batch = upload(district, simple_csv(tmp_path / "r.csv", [{"姓名": "王建国", "身份证号": id_number}]))

    person = PushRow.objects.get(batch=batch).person
    assert person.resident_id == district.resident_a.pk


def test_a_large_file_is_left_to_the_worker(district, tmp_path, monkeypatch):
    monkeypatch.setattr(importing, "INLINE_MAX_ROWS", 3)
    rows = [{"姓名": "人" + "甲乙丙丁戊己"[i], "身份证号": make_id_number(dt.date(1970, 1, 1) + dt.timedelta(days=i))}
            for i in range(6)]
    batch = upload(district, simple_csv(tmp_path / "big.csv", rows))
    assert batch.state == BatchState.PENDING and batch.rows_done == 0 and len(bytes(batch.file_data)) > 0

    done = run_tick("test-worker")

    assert done["pushes.process"] == 1
    batch.refresh_from_db()
    assert batch.state == BatchState.DONE and batch.rows_total == batch.imported == 6
    assert bytes(batch.file_data) == b"" and batch.locked_by == ""
    assert process_pending("test-worker") == 0  # nothing left


def test_a_crashed_run_resumes_where_it_stopped(district, tmp_path, monkeypatch):
    monkeypatch.setattr(importing, "INLINE_MAX_ROWS", 0)
    monkeypatch.setattr(importing, "CHUNK", 2)
    ids = [make_id_number(dt.date(1980, 1, 1) + dt.timedelta(days=i)) for i in range(3)]
    path = simple_csv(tmp_path / "crash.csv", [
        {"姓名": "甲", "身份证号": ids[0]}, {"姓名": "乙", "身份证号": ids[1]},
        {"姓名": "丙", "身份证号": ids[2]}, {"姓名": "甲", "身份证号": ids[0]},
        {"姓名": "", "身份证号": ids[1]},
    ])
    batch = upload(district, path)
    real_chunk, calls = importing._Run.chunk, []

    def crash_after_first(self, table, rows):
        if calls:
            raise RuntimeError("worker killed")
        calls.append(1)
        return real_chunk(self, table, rows)

    monkeypatch.setattr(importing._Run, "chunk", crash_after_first)
    with pytest.raises(RuntimeError):
        process_batch(batch)
    batch.refresh_from_db()
    assert batch.state == BatchState.RUNNING and batch.rows_done == 2 and PushRow.objects.count() == 2
    assert process_pending("other-worker") == 0  # the lease has not run out yet

    monkeypatch.setattr(importing._Run, "chunk", real_chunk)
    PushBatch.objects.update(locked_until=timezone.now() - dt.timedelta(seconds=1))
    assert process_pending("other-worker") == 1

    batch.refresh_from_db()
    assert batch.state == BatchState.DONE
    assert (batch.rows_total, batch.imported, batch.merged, batch.rejected) == (5, 3, 1, 1)
    assert results(batch)[5] == ("merged", "与第 2 行同一人（身份证号）")  # found across chunks and runs
    assert PushedPerson.objects.count() == 3 and people(ids[0]).get().times_pushed == 1
    assert AuditEntry.objects.filter(action="push.import").count() == 1


@pytest.mark.parametrize("route_chunk", [2, 1000])
def test_new_people_are_routed_in_groups_once_every_row_is_in(district, tmp_path, monkeypatch, route_chunk):
    calls = []
    fake = types.ModuleType("bihuan.pushes.routing")
    fake.route_people = lambda person_ids, *, acting_user: calls.append((sorted(person_ids), acting_user))
    monkeypatch.setitem(sys.modules, "bihuan.pushes.routing", fake)
    monkeypatch.setattr(importing, "CHUNK", 2)
    monkeypatch.setattr(importing, "ROUTE_CHUNK", route_chunk)
    ids = [make_id_number(dt.date(1980, 1, 1) + dt.timedelta(days=i)) for i in range(3)]
    path = simple_csv(tmp_path / "route.csv", [
        {"姓名": "甲", "身份证号": ids[0]}, {"姓名": "乙", "身份证号": ids[1]},
        {"姓名": "甲", "身份证号": ids[0]}, {"姓名": "丙", "身份证号": ids[2]},
    ])

    upload(district, path)

    user = district.users["community_a"]
    made = [people(i).get().pk for i in ids]
    if route_chunk == 2:
        assert calls == [(sorted(made[:2]), user), ([made[2]], user)]
    else:  # one group: each unit hears of its new people once for the whole list
        assert calls == [(sorted(made), user)]


def test_a_failing_router_does_not_lose_the_import(district, tmp_path, monkeypatch, caplog):
    fake = types.ModuleType("bihuan.pushes.routing")

    def route_people(person_ids, *, acting_user):
        raise RuntimeError("router broken")

    fake.route_people = route_people
    monkeypatch.setitem(sys.modules, "bihuan.pushes.routing", fake)
    batch = upload(district, simple_csv(tmp_path / "r.csv", [{"姓名": "甲", "手机号": "13900000000"}]))
    assert batch.state == BatchState.DONE and batch.imported == 1
    assert "routing 1 pushed people failed" in caplog.text


def test_people_are_written_unrouted_when_routing_them_fails_and_the_import_still_completes(
        district, tmp_path, monkeypatch, caplog):
    from bihuan.loops.models import Loop
    from bihuan.pushes import routing

    def broken(people, **_kwargs):
        for person in people:
            person.unit_id = -1  # a half-made decision must not reach the database
        raise RuntimeError("routing broken")

    monkeypatch.setattr(routing, "decide_routes", broken)
    batch = upload(district, simple_csv(tmp_path / "r.csv", [{"姓名": "甲", "手机号": "13900000000"},
                                                                {"姓名": "乙", "手机号": "13900000001"}]))
    assert batch.state == BatchState.DONE and batch.imported == 2
    assert list(PushedPerson.objects.values_list("routed_at", "unit_id")) == [(None, None), (None, None)]
    assert not Loop.objects.exists()
    assert "routing 2 pushed people failed" in caplog.text


def test_headers_are_recognised_and_the_rest_listed(district):
    mapping, unmapped = detect_mapping(["序号", " 姓 名 ", "公民身份号码", "联系电话：", "出发地", "途经城市", "返回日期",
                                        "居住地址", "数据来源", "所属乡镇(街道)", "所属社区（村）", "备注"])
    assert mapping == {" 姓 名 ".strip(): "name", "公民身份号码": "id_number", "联系电话：": "phone",
                       "出发地": "origin", "途经城市": "via", "返回日期": "arrival_date", "居住地址": "address",
                       "数据来源": "source", "所属乡镇(街道)": "township", "所属社区（村）": "community"}
    assert unmapped == ["序号", "备注"]


def test_a_saved_mapping_reads_the_next_file_from_that_source(district, tmp_path):
    id_number = make_id_number(dt.date(1980, 1, 2))
    path = simple_csv(tmp_path / "odd.csv", [{"人员": "张三", "号码A": id_number, "号码B": "13900000000"}],
                      header=["人员", "号码A", "号码B"])
    with pytest.raises(importing.UnreadableFile):
        preview_file(path.read_bytes(), path.name, unit=district.community_a, source="某系统")

    save_mapping(district.community_a, "某系统", {"人员": "name", "号码A": "id_number", "号码B": "phone"},
                 acting_user=district.users["community_a"])
    preview = preview_file(path.read_bytes(), path.name, unit=district.community_a, source="某系统")
    assert preview.mapping == {"人员": "name", "号码A": "id_number", "号码B": "phone"} and preview.rows == 1
    batch = upload(district, path, source="某系统")

    assert batch.imported == 1 and people(id_number).get().reveal_phone() == "13900000000"
    assert AuditEntry.objects.filter(action="push.mapping.save").count() == 1
    with pytest.raises(Http404):
        save_mapping(district.community_a, "某系统", {}, acting_user=district.users["township_b"])
    with pytest.raises(ValueError):
        save_mapping(district.community_a, "某系统", {"人员": "shoe_size"}, acting_user=district.users["community_a"])
    assert SourceMapping.objects.count() == 1


def test_a_given_mapping_overrides_recognition(district, tmp_path):
    id_number = make_id_number(dt.date(1980, 1, 2))
    path = simple_csv(tmp_path / "m.csv", [{"姓名": "张三", "身份证号": id_number, "手机号": "13900000000",
                                            "紧急联系人电话": "13800000000"}],
                      header=["姓名", "身份证号", "紧急联系人电话", "手机号"])
    batch = upload(district, path, mapping={"紧急联系人电话": "", "手机号": "phone"})
    assert people(id_number).get().reveal_phone() == "13900000000"
    assert batch.column_mapping["紧急联系人电话"] == ""


def test_an_unreadable_file_fails_with_a_reason_and_can_be_sent_again(district, tmp_path):
    path = tmp_path / "broken.xlsx"
    path.write_bytes(b"PK\x03\x04 this is no workbook")
    batch = upload(district, path)
    assert batch.state == BatchState.FAILED and "无法读取文件" in batch.error and bytes(batch.file_data) == b""
    assert batch.rows_total == 0

    no_header = simple_csv(tmp_path / "nohead.csv", [{"a": "1", "b": "2"}], header=["a", "b"])
    failed = upload(district, no_header)
    assert failed.state == BatchState.FAILED and failed.error == importing.NO_HEADER

    again = upload(district, no_header, mapping={"a": "name", "b": "phone"})
    assert again.pk == failed.pk and again.state == BatchState.DONE and again.rows_total == 1


def test_the_command_prints_the_reconciliation(district, tmp_path, capsys):
    corpus_file = BUILDERS["utf8_bom_csv"](tmp_path, timezone.localdate())
    call_command("import_push", str(corpus_file.path), source=corpus_file.source, user="community_a")
    out = capsys.readouterr().out
    assert "总行数 6 = 已导入 4 + 已合并 1 + 已拒绝 1" in out and "rows 6 = imported 4 + merged 1 + rejected 1" in out
    assert "身份证号待修正（已导入，按电话核查 / ID to fix）：身份证号应为 18 位" in out  # listed by name and masked phone
    for secret in corpus_file.secrets:
        assert secret not in out

    call_command("import_push", str(corpus_file.path), source=corpus_file.source, user="community_a")
    assert "总行数 6 = 已导入 4 + 已合并 1 + 已拒绝 1" in capsys.readouterr().out
    assert PushBatch.objects.count() == 1
    with pytest.raises(CommandError):
        call_command("import_push", str(corpus_file.path), source="x", user="grid_a")


def test_statistics_of_the_pushed_people_are_taken_when_they_have_none(district, tmp_path):
    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.skip("PostgreSQL's planner statistics")
    upload(district, simple_csv(tmp_path / "s.csv", [{"姓名": "甲" + chr(0x4E00 + i), "手机号": f"139000000{i:02d}"}
                                                     for i in range(20)]))

    def analysed() -> set[str]:
        with connection.cursor() as cur:
            cur.execute("SELECT attname FROM pg_stats WHERE tablename = %s", [PushedPerson._meta.db_table])
            return {name for (name,) in cur.fetchall()}

    assert "phone_hash" not in analysed()
    assert importing._analyze_if_grown(importing.ANALYZE_AFTER - 1) is False  # too few new people yet
    assert importing._analyze_if_grown(importing.ANALYZE_AFTER) is True  # none: taken however large it was
    assert {"id_hash", "phone_hash", "name", "birth_date", "last_pushed_at"} <= analysed()
