"""Property tests (hypothesis) for every parser of outside input: ID numbers, phones, plates, dates as people write
them, header mapping, cell readers and whole CSV/xlsx/HTML files. Each either gives a well-formed value or raises
its documented validation error — never anything else — and what it accepts survives a round trip.

Bounded (``max_examples``) so that the whole file takes well under a minute; ``HYPOTHESIS_PROFILE=long`` runs more.
"""

from __future__ import annotations

import datetime as dt
import io
import os

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from bihuan.checkpoints.validation import CheckpointError, clean_plate
from bihuan.core.http import FIRST_DATE, LAST_DATE, parse_date, whole
from bihuan.core.personal import InvalidIdNumber, id_checksum, normalize_id_number, normalize_phone
from bihuan.core.tabular import (
    BadCell,
    UnreadableFile,
    cell_text,
    header_key,
    id_number_cell,
    label_cell,
    name_cell,
    phone_cell,
    read_sheets,
)
from bihuan.pushes import normalize as push
from bihuan.pushes.headers import FIELDS, detect_mapping, recognise

settings.register_profile("ci", max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("long", max_examples=5000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

# text as it arrives: any Unicode (NUL, surrogates excepted by the codec), full-width and superscript digits, X
messy = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=40)
digitish = st.text(alphabet="0123456789xX０１２３４５６７８９²³¹٣ -+()（）", max_size=24)
cells = st.one_of(st.none(), messy, digitish, st.integers(min_value=-10**20, max_value=10**20),
                  st.floats(allow_nan=True, allow_infinity=True), st.booleans(),
                  st.dates(), st.datetimes())


def _valid_ids():
    def build(region, birth, serial):
        body = f"{region}{birth:%Y%m%d}{serial:03d}"
        return body + id_checksum(body)

    return st.builds(build, st.sampled_from(["141002", "110101", "310115"]),
                     st.dates(min_value=dt.date(1900, 1, 1), max_value=dt.date(2020, 12, 31)),
                     st.integers(0, 999))


@given(digitish | messy)
@example("14100219750309123²")
@example("١٤١٠٠٢١٩٧٥٠٣٠٩١٢٣٤")  # Arabic-Indic digits are digits to \\d and to int(), never to an ID number
@example("²" * 15)
def test_id_numbers_are_ascii_and_checked_or_refused(raw):
    try:
        value = normalize_id_number(raw)
    except InvalidIdNumber:
        return
    assert len(value) == 18 and value.isascii() and value[:17].isdigit()
    assert id_checksum(value[:17]) == value[17]
    assert normalize_id_number(value) == value


@given(_valid_ids())
def test_every_valid_id_number_is_accepted_as_written_and_in_full_width(value):
    assert normalize_id_number(value) == value
    full = value.translate(str.maketrans("0123456789X", "０１２３４５６７８９Ｘ"))
    assert normalize_id_number(full) == value
    assert id_number_cell(value) == value


@given(digitish | messy)
@example("١٣٨١٢٣٤٥٦٧٨")
@example("13812345678²")
def test_phones_are_ascii_digits_or_refused(raw):
    try:
        value = normalize_phone(raw)
    except ValueError:
        return
    assert value.isascii() and value.isdigit() and 10 <= len(value) <= 12
    assert normalize_phone(value) == value


@given(st.text(alphabet="晋京沪ABCDEFGHJKLMNPQRSTUVWXYZIO0123456789DF ·-.", max_size=10) | messy)
def test_plates_are_cleaned_or_refused_with_a_reason(raw):
    try:
        value = clean_plate(raw)
    except CheckpointError as exc:
        assert exc.field == "plate" and exc.message
        return
    assert value == value.upper() and len(value) in (7, 8) and " " not in value
    assert clean_plate(value) == value


@given(cells)
def test_cell_readers_give_text_or_a_bad_cell(value):
    for reader in (cell_text, label_cell, name_cell, id_number_cell, phone_cell):
        try:
            text = reader(value)
        except BadCell:
            continue
        assert isinstance(text, str)


@given(st.one_of(cells, st.text(alphabet="0123456789年月日号-/. ", max_size=16)),
       st.dates(min_value=dt.date(2000, 1, 1), max_value=dt.date(2099, 12, 31)))
@example("2月30日", dt.date(2022, 3, 1))
@example("9999-12-31", dt.date(2022, 3, 1))
@example("0001年1月1日", dt.date(2022, 3, 1))
@example(1e300, dt.date(2022, 3, 1))
def test_dates_as_people_write_them_are_read_or_refused(value, today):
    try:
        day = push.parse_date(value, today=today)
    except push.BadDate:
        return
    assert day is None or isinstance(day, dt.date)


@given(messy | st.text(alphabet="0123456789-T:+Z ", max_size=30))
@example("9999-12-31")
@example("0001-01-01")
def test_dates_from_urls_stay_in_the_window(value):
    day = parse_date(value)
    assert day is None or FIRST_DATE <= day <= LAST_DATE
    if day is not None:
        day + dt.timedelta(days=3660)  # a period added never leaves the calendar
        day - dt.timedelta(days=3660)


@given(messy | st.integers(-10**30, 10**30).map(str))
@example("²")
@example("9223372036854775808")
def test_whole_numbers_from_urls_are_ascii_and_in_range(value):
    number = whole(value)
    assert number is None or 0 <= number < 2**63


@given(st.lists(st.one_of(messy, st.sampled_from(["姓名", "身份证号", "手机", "联系电话", "现住址", "抵达日期",
                                                    "*姓名", "身份证号码（18位）", "", None])), max_size=12))
def test_header_mapping_maps_each_field_once_and_loses_no_header(headers):
    mapping, unmapped = detect_mapping(headers)
    fields = [f for f in mapping.values() if f]
    assert len(fields) == len(set(fields))
    assert set(fields) <= set(FIELDS)
    for header in headers:
        recognise(header)
        header_key(header)


def _csv_bytes(rows, encoding):
    buffer = io.StringIO()
    for row in rows:
        buffer.write(",".join('"' + c.replace('"', '""') + '"' for c in row) + "\r\n")
    return buffer.getvalue().encode(encoding, errors="replace")


safe_cell = st.text(alphabet=st.characters(blacklist_categories=("Cs", "Cc")), max_size=20)


@given(st.lists(st.lists(safe_cell, min_size=1, max_size=5), min_size=1, max_size=8),
       st.sampled_from(["utf-8", "utf-8-sig", "gb18030"]))
def test_csv_files_come_back_cell_for_cell(rows, encoding):
    data = _csv_bytes(rows, encoding)
    try:
        sheets = [(name, list(r)) for name, r in read_sheets(data, "list.csv")]
    except UnreadableFile:
        return
    (_, read), = sheets
    if encoding != "gb18030" and all(c.strip() for row in rows for c in row):
        got = [list(r[1]) for r in read]
        assert got[:len(rows)] == [[c for c in row] for row in rows][:len(got)]


@given(st.binary(max_size=2048), st.sampled_from(["a.csv", "a.xlsx", "a.xls", "a.html", "a"]))
@example(b"PK\x03\x04" + b"\x00" * 100, "a.xlsx")
@example(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 100, "a.xls")
@example(b"<html><table><tr><td colspan=99999999999999999999>x</td></tr></table></html>", "a.html")
@example(b"a,b\x00c\n", "a.csv")
def test_any_bytes_are_read_or_refused_as_unreadable(data, name):
    try:
        for _name, rows in read_sheets(data, name):
            for _number, row in rows:
                assert isinstance(row, tuple)
    except UnreadableFile:
        pass


@given(st.lists(st.lists(st.one_of(safe_cell, st.integers(-10**6, 10**6)), min_size=1, max_size=4),
                min_size=1, max_size=6))
def test_xlsx_files_come_back_cell_for_cell(rows):
    from bihuan.core import excel

    workbook = excel.workbook()
    sheet = workbook.active
    for row in rows:
        sheet.append(row)
    buffer = io.BytesIO()
    workbook.save(buffer)
    (_, read), = [(n, list(r)) for n, r in read_sheets(buffer.getvalue(), "list.xlsx")]
    for (_, got), want in zip(read, rows, strict=False):
        for a, b in zip(got, want, strict=False):
            if isinstance(b, str) and b:
                assert str(a) == b or str(a).lstrip("'") == b.lstrip("'")


