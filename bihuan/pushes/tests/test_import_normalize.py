"""Normalising cells as people type them: dates, phones, ID numbers, names, masking; and reading encodings."""

import datetime as dt

import pytest

from bihuan.core.personal import id_checksum
from bihuan.core.tabular import MANGLED, BadCell, decode_text, file_kind
from bihuan.pushes.normalize import (
    BAD_PHONE,
    FIRST_PHONE,
    MANGLED_PHONE,
    NO_PHONE,
    clean_name,
    parse_date,
    parse_id_number,
    parse_phone,
    scrub,
)
from bihuan.testing import make_id_number

PUSHED = dt.date(2022, 3, 10)


@pytest.mark.parametrize("value, expected", [
    ("2022年3月4日", dt.date(2022, 3, 4)),
    ("2022 年 3 月 4 日 14时30分", dt.date(2022, 3, 4)),
    ("3月4日", dt.date(2022, 3, 4)),
    ("12月30日", dt.date(2021, 12, 30)),  # more than a month after the push: last year
    ("2022/3/4", dt.date(2022, 3, 4)),
    ("2022/3/4 10:30", dt.date(2022, 3, 4)),
    ("2022-03-04", dt.date(2022, 3, 4)),
    ("2022-03-04T08:00:00", dt.date(2022, 3, 4)),
    ("2022.3.4", dt.date(2022, 3, 4)),
    ("２０２２年３月４日", dt.date(2022, 3, 4)),
    ("20220304", dt.date(2022, 3, 4)),
    (20220304, dt.date(2022, 3, 4)),
    ("44621", dt.date(2022, 3, 1)),
    (44621, dt.date(2022, 3, 1)),
    (44621.75, dt.date(2022, 3, 1)),
    (dt.datetime(2022, 3, 4, 23, 59), dt.date(2022, 3, 4)),
    ("", None),
    (None, None),
])
def test_dates_as_people_write_them(value, expected):
    assert parse_date(value, today=PUSHED) == expected


@pytest.mark.parametrize("value", ["下周", "2022年3月", "2022-02-30", "12", 5, "3月4日下午茶"])
def test_what_is_no_date_is_refused(value):
    with pytest.raises(BadCell):
        parse_date(value, today=PUSHED)


@pytest.mark.parametrize("value, expected", [
    ("+86 138-1234-5678", ("13812345678", "")),
    ("0086 13812345678", ("13812345678", "")),
    ("１３８１２３４５６７８", ("13812345678", "")),
    (13812345678, ("13812345678", "")),
    (13812345678.0, ("13812345678", "")),
    ("0357-1234567", ("03571234567", "")),
    ("13812345678/13912345678", ("13812345678", FIRST_PHONE)),
    ("无、13912345678", ("13912345678", "")),
    ("13812345678；0357-1234567", ("13812345678", FIRST_PHONE)),
    ("", ("", NO_PHONE)),
    ("12345", ("", BAD_PHONE)),
    ("1.38123E+10", ("", MANGLED_PHONE)),
])
def test_phones(value, expected):
    assert parse_phone(value) == expected


def test_id_numbers():
    good = make_id_number(dt.date(1990, 1, 1))
    assert parse_id_number(good) == good
    assert parse_id_number(" ".join([good[:6], good[6:14], good[14:]])) == good
    assert parse_id_number("".join(chr(ord(c) + 0xFEE0) for c in good)) == good
    old = "141002900101123"
    assert parse_id_number(old) == parse_id_number(int(old)) == "14100219900101123" + id_checksum("14100219900101123")
    assert parse_id_number("") == ""
    for mangled in ("1.41002E+17", "1.41002199001011E+17", 141002199001011234, 1.41002199001011e17,
                    good[:15] + "000" if id_checksum(good[:15] + "00") != "0" else "141002199001011000"):
        with pytest.raises(BadCell) as exc:
            parse_id_number(mangled)
        assert str(exc.value) == MANGLED, mangled
    with pytest.raises(BadCell, match="校验位错误"):
        parse_id_number(good[:17] + ("1" if good[17] != "1" else "2"))
    with pytest.raises(BadCell, match="出生日期不存在"):
        body = "14100219901301123"
        parse_id_number(body + id_checksum(body))


def test_names_and_masks():
    assert clean_name(" 张　三 ") == "张三"
    assert clean_name("John  Smith") == "John Smith"
    assert scrub("同行人 13812345678，证件 141002199001011234") == "同行人 138****5678，证件 141002********1234"
    assert scrub("3号楼2单元401") == "3号楼2单元401"
    assert scrub("电话１３８１２３４５６７８") == "电话１３８****５６７８"


def test_plain_id_numbers_and_phones_read_as_the_full_reading_does():
    good = make_id_number(dt.date(1990, 1, 1))
    body = good[:17]
    with_x = next(b + "X" for b in (f"{body[:14]}{n:03d}" for n in range(1000)) if id_checksum(b) == "X")
    assert parse_id_number(good) == good
    assert parse_id_number(with_x.lower()) == parse_id_number(with_x) == with_x
    for bad in (body + ("1" if good[17] != "1" else "2"), "14100219901301123" + id_checksum("14100219901301123"),
                "14100218700101123" + id_checksum("14100218700101123"),
                "14100230000101123" + id_checksum("14100230000101123")):
        with pytest.raises(BadCell):
            parse_id_number(bad)
    assert parse_phone("13812345678") == ("13812345678", "")
    assert parse_phone("12812345678") == ("", BAD_PHONE)


def test_the_masked_row_is_the_json_of_each_cell_masked():
    import json

    from bihuan.pushes.importing import Table
    from bihuan.pushes.normalize import masked_cell, normalize_row, remembering

    headers = ["序号", "姓名", "身份证号", "手机号", "抵达时间", "备注", ""]
    fields = [None, "name", "id_number", "phone", "arrival_date", None, None]
    table = Table("s", 1, headers, fields, {}, [], [])
    good = make_id_number(dt.date(1990, 1, 1))
    rows = [(1, "张三", good, "+86 138-1234-5678", dt.datetime(2022, 3, 4), "电话13912345678", "x"),
            (2, "李四", "1.41002E+17", "13812345678/13912345678", "3月4日", "'=1+1", None, "多出来的一列"),
            (1234567, "王五", None, "", 44621.5, " 同 ", True),
            (3, "赵六", good.lower(), 13812345678, "  ", 'a"b\\c', 2.5)]
    rows += [(n, "钱七", good, "13812345678", None, f"备注{n}") for n in range(4, 2100)]  # a column that never repeats
    with remembering():
        for values in rows:
            row = normalize_row(values[0], table.cells(values), today=PUSHED)
            expected = {}
            for i, value in enumerate(values):
                if value is None or (isinstance(value, str) and not value.strip()):
                    continue
                key = (headers[i] or f"第{i + 1}列") if i < len(headers) else f"第{i + 1}列"
                expected[key] = masked_cell(fields[i] if i < len(fields) else None, value, row)
            assert table.masked(values, row) == json.dumps(expected, ensure_ascii=False)


def test_encodings_are_told_apart():
    text = "姓名,身份证号\n张三,1\n"
    assert decode_text(text.encode("gbk")) == (text, "gb18030")
    assert decode_text(text.encode("utf-8-sig")) == (text, "utf-8-sig")
    assert decode_text(text.encode("utf-8")) == (text, "utf-8-sig")
    assert decode_text("姓名,王𠮷\n".encode("gb18030"))[0] == "姓名,王𠮷\n"
    assert decode_text(text.encode("utf-16"))[0] == text
    assert file_kind(b"PK\x03\x04...", "a.xls") == "xlsx"
    assert file_kind(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "a.xlsx") == "xls"
    assert file_kind("姓名".encode("gbk"), "a.xls") == "csv"
