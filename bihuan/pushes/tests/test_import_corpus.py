"""Importing the corpus of messy pushed lists: every file reconciles exactly, every row has the right result and
reason, nothing personal is stored or logged in clear, and the report says the same."""

import io
import json
import logging

import pytest
from django.utils import timezone
from openpyxl import load_workbook

from bihuan.core.models import AuditEntry
from bihuan.pushes.importing import batch_report_xlsx, create_batch
from bihuan.pushes.models import BatchState, PushedPerson, PushRow

from .corpus import BUILDERS


@pytest.fixture
def today():
    return timezone.localdate()


def import_file(corpus_file, district, user="community_a"):
    return create_batch(corpus_file.data, corpus_file.path.name, source=corpus_file.source,
                        unit=district.community_a, acting_user=district.users[user])


@pytest.mark.parametrize("kind", list(BUILDERS))
def test_every_corpus_file_reconciles_with_the_right_reason_on_every_row(district, tmp_path, today, kind, caplog):
    caplog.set_level(logging.DEBUG)
    corpus_file = BUILDERS[kind](tmp_path, today)

    batch = import_file(corpus_file, district)

    assert batch.state == BatchState.DONE, batch.error
    assert (batch.rows_total, batch.imported, batch.merged, batch.rejected) == (
        corpus_file.rows, corpus_file.count("imported"), corpus_file.count("merged"), corpus_file.count("rejected"))
    assert batch.rows_total == batch.imported + batch.merged + batch.rejected == batch.rows_done
    rows = {r.row_number: r for r in PushRow.objects.filter(batch=batch)}
    assert sorted(rows) == sorted(corpus_file.expect)  # blank lines, title and header rows get no result
    for number, expect in corpus_file.expect.items():
        row = rows[number]
        assert row.result == expect.result, (number, row.reason)
        if expect.exact:
            assert row.reason == expect.reason, number
        else:
            assert row.reason.startswith(expect.reason), (number, row.reason)
        assert row.field == expect.field, number
        assert (row.person_id is None) == (expect.result == "rejected"), number
    for number, arrival in corpus_file.arrivals.items():
        if corpus_file.expect[number].result == "imported":
            assert PushedPerson.objects.get(pk=rows[number].person_id).arrival_date == arrival, number
    assert PushedPerson.objects.filter(first_batch=batch).count() == batch.imported

    # the file is gone, and no clear ID number or phone is anywhere
    batch.refresh_from_db()
    assert bytes(batch.file_data) == b""
    stored = json.dumps([r.masked for r in rows.values()], ensure_ascii=False)
    audits = json.dumps([a.changes for a in AuditEntry.objects.all()], ensure_ascii=False)
    people = json.dumps(list(PushedPerson.objects.values("id_masked", "phone_masked", "id_tail", "name",
                                                         "address_text", "sources")), ensure_ascii=False)
    for secret in corpus_file.secrets:
        assert secret not in stored, secret
        assert secret not in audits, secret
        assert secret not in caplog.text, secret
        assert secret not in people, secret
    assert AuditEntry.objects.filter(action="push.import", target_id=str(batch.pk)).count() == 1


@pytest.mark.parametrize("kind", ["gbk_csv", "xlsx"])
def test_ids_and_phones_are_sealed_and_found_by_their_hash(district, tmp_path, today, kind):
    from bihuan.core import crypto

    corpus_file = BUILDERS[kind](tmp_path, today)
    import_file(corpus_file, district)

    for label, id_number in corpus_file.people.items():
        person = PushedPerson.objects.filter(id_hash=crypto.lookup_hash("id", id_number)).first()
        if person is None:
            continue  # a rejected row
        assert crypto.unseal(person.id_sealed) == id_number, label
        assert person.id_masked == f"{id_number[:6]}********{id_number[-4:]}"
        assert person.birth_date.strftime("%Y%m%d") == id_number[6:14]
    assert PushedPerson.objects.filter(name="张伟" if kind == "gbk_csv" else "杨帆").get().reveal_phone() == (
        "13900000001" if kind == "gbk_csv" else "13900000201")


def test_fifteen_digit_numbers_become_eighteen(district, tmp_path, today):
    from bihuan.core import crypto

    corpus_file = BUILDERS["gbk_csv"](tmp_path, today)
    import_file(corpus_file, district)

    person = PushedPerson.objects.get(id_hash=crypto.lookup_hash("id", corpus_file.people["chen"]))
    assert person.name == "陈建华"  # spaces between Chinese characters dropped
    assert len(crypto.unseal(person.id_sealed)) == 18
    assert person.reveal_phone() == "13900000002"  # 0086 and spaces dropped


def test_the_report_opens_and_its_totals_match(district, tmp_path, today):
    corpus_file = BUILDERS["gbk_csv"](tmp_path, today)
    batch = import_file(corpus_file, district)

    book = load_workbook(io.BytesIO(batch_report_xlsx(batch)), read_only=True)
    totals = {row[0]: row[1] for row in book["汇总"].iter_rows(values_only=True)}
    assert (totals["总行数"], totals["已导入"], totals["已合并"], totals["已拒绝"]) == (
        batch.rows_total, batch.imported, batch.merged, batch.rejected)
    rows = list(book["逐行结果"].iter_rows(values_only=True))
    head, body = rows[0], rows[1:]
    assert head[:4] == ("行号", "结果", "原因", "相关列")
    assert "姓名" in head and "身份证号" in head
    assert len(body) == batch.rows_total
    by_number = {r[0]: r for r in body}
    for number, expect in corpus_file.expect.items():
        assert by_number[number][1] == {"imported": "已导入", "merged": "已合并", "rejected": "已拒绝"}[expect.result]
        assert (by_number[number][2] or "").startswith(expect.reason)
    text = json.dumps(rows, ensure_ascii=False, default=str)
    for secret in corpus_file.secrets:
        assert secret not in text


def test_the_report_download_is_scoped_and_audited(district, tmp_path, today):
    from django.http import Http404

    batch = import_file(BUILDERS["gb18030_csv"](tmp_path, today), district)

    batch_report_xlsx(batch, acting_user=district.users["township_a"])
    assert AuditEntry.objects.filter(action="push.report", target_id=str(batch.pk)).count() == 1
    with pytest.raises(Http404):
        batch_report_xlsx(batch, acting_user=district.users["township_b"])
