"""Normalising one row of a pushed list: text, names, ID numbers, phones and dates as people type them.

- Text: full-width → half-width (NFKC), runs of spaces → one space, trimmed; names lose spaces between Chinese
  characters.
- ID numbers: full-width digits and ``x`` accepted, 15-digit numbers converted to 18. A number Excel mangled —
  ``1.41002E+17``, a numeric cell with more than 15 significant digits, or 18 digits ending in ``000`` whose
  check digit is wrong (what is left of a number after Excel kept 15 digits) — rejects the row with that reason:
  it is never stored wrong. Any other invalid number (length, birth date, checksum) is not stored either.
  **No one is dropped for a bad ID**: a row whose ID number is broken but which has a usable phone (or a name
  and an address) enters the pipeline marked "ID to fix" (``Row.id_problem``, noted ``身份证号待修正``): it is
  de-duplicated by phone, verified by phone, and the verifier records the right number
  (``actions.do_fix_id_number``). Without a phone or an address a broken ID still rejects the row.
- Phones: ``+86`` / ``0086``, dashes and spaces dropped; of several numbers in one cell the first valid one is
  kept (noted). A missing phone is allowed (noted ``无电话``); an invalid one is dropped (noted).
- Dates: date cells, Excel serial numbers (``44621``), ``2022年3月4日``, ``3月4日`` (the year of the push; a date
  more than a month after the push is taken as last year's), ``2022/3/4``, ``2022-03-04``, ``2022.3.4``,
  ``20220304``, each with or without a time. An unreadable arrival date is noted, never a rejection.
- A row is rejected without a name (``缺少姓名``) and when it has no valid ID number, no phone and no name with
  birth date (``无法识别身份``).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import re
import threading
import unicodedata
from dataclasses import dataclass, field
from typing import Any

from openpyxl.utils.datetime import from_excel

from bihuan.core import crypto
from bihuan.core.personal import (
    birth_date_from_id,
    id_checksum,
    mask_id_number,
    mask_phone,
    sex_from_id,
)
from bihuan.core.tabular import (
    BAD_NAME,
    MANGLED,
    BadCell,
    cell_text,
    digits_text,
    id_number_cell,
    is_blank,
    is_person_name,
    phone_cell,
)

# Reasons (PushRow.reason). Rejections name a field (PushRow.field).
NO_NAME = "缺少姓名"
NAME_TOO_LONG = "姓名超过 50 个字符"
UNIDENTIFIABLE = "无法识别身份：没有有效的身份证号、电话，也没有姓名和出生日期"
NO_PHONE = "无电话"
BAD_PHONE = "电话号码无效，未导入电话"
MANGLED_PHONE = "电话号码被 Excel 改成了科学计数法，未导入电话"
FIRST_PHONE = "一格中有多个电话，只导入第一个"
BAD_ARRIVAL = "抵达时间无法识别"
BAD_BIRTH = "出生日期无法识别"
ID_TO_FIX = "身份证号待修正"

MAX_LENGTHS = {"name": 50, "origin": 200, "via": 300, "address": 300, "township": 100, "community": 100,
               "source": 100}
TEXT_FIELDS = ("origin", "via", "address", "township", "community", "source")
_TEXT_LIMITS = tuple((key, MAX_LENGTHS[key]) for key in TEXT_FIELDS)

_SPACES = re.compile(r"\s+")
_CJK_GAP = re.compile(r"(?<=[\u3400-\u9fff])\s+(?=[\u3400-\u9fff])")


# --- text ---------------------------------------------------------------------------------------------------

_local = threading.local()  # .texts: what clean_text remembers inside ``remembering()``
_REMEMBER_MAX = 200_000


@contextlib.contextmanager
def remembering():
    """Inside, ``clean_text`` remembers the texts it cleaned: the columns of a list repeat their values (origins,
    townships, addresses, dates), and one import cleans hundreds of thousands of cells. Forgotten on leaving (the
    texts are personal data: they are not kept in the process)."""
    outer = getattr(_local, "texts", None)
    _local.texts = outer if outer is not None else {}
    try:
        yield
    finally:
        if outer is None:
            _local.texts = None


def _clean(value: Any) -> str:
    return _SPACES.sub(" ", unicodedata.normalize("NFKC", cell_text(value))).strip()


def clean_text(value: Any, max_length: int | None = None) -> str:
    """Half-width, single spaces, trimmed; cut to ``max_length``."""
    if value is None:  # a column the list does not have
        return ""
    texts = getattr(_local, "texts", None)
    if texts is not None and value.__class__ is str:
        text = texts.get(value)
        if text is None:
            text = _clean(value)
            if len(texts) < _REMEMBER_MAX:
                texts[value] = text
    else:
        text = _clean(value)
    return text[:max_length] if max_length else text


def clean_name(value: Any) -> str:
    text = clean_text(value)
    return _CJK_GAP.sub("", text)


_NAME_KEY = object()  # marks _name_of's entries among the remembered texts


def _name_of(value: Any) -> tuple[str, str]:
    """(the name cleaned, why the row is rejected for it or ''), once per distinct cell inside ``remembering()``
    (lists repeat common names)."""
    texts = getattr(_local, "texts", None)
    if texts is None or value.__class__ is not str:
        return _read_name(value)
    key = (_NAME_KEY, value)
    known = texts.get(key)
    if known is None:
        known = _read_name(value)
        if len(texts) < _REMEMBER_MAX:
            texts[key] = known
    return known


def _read_name(value: Any) -> tuple[str, str]:
    name = clean_name(value)
    if not name:
        return name, NO_NAME
    if len(name) > MAX_LENGTHS["name"]:
        return name, NAME_TOO_LONG
    if not is_person_name(name):
        return name, BAD_NAME
    return name, ""


# --- dates --------------------------------------------------------------------------------------------------

_FULL_DATE = re.compile(r"(\d{4})\s*[-/.年]\s*(\d{1,2})\s*[-/.月]\s*(\d{1,2})\s*[日号]?")
_SHORT_DATE = re.compile(r"(\d{1,2})\s*[-/.月]\s*(\d{1,2})\s*[日号]?")
_COMPACT_DATE = re.compile(r"(\d{4})(\d{2})(\d{2})")
_TIME_REST = re.compile(r"[\sT]*(?:上午|下午|晚上|凌晨|中午|早上)?\s*"
                        r"(?:\d{1,2}\s*[:时点]\s*(?:\d{1,2}\s*(?:[:分]\s*(?:\d{1,2}(?:\.\d+)?\s*秒?)?)?)?)?\s*")
_SERIAL = re.compile(r"\d{5}(?:\.\d+)?")
_SERIAL_RANGE = (25569, 73051)  # 1970-01-01 .. 2100-01-01: a number in a date column outside it is no date


class BadDate(BadCell):
    pass


def _serial(number: float) -> dt.date:
    if not _SERIAL_RANGE[0] <= number < _SERIAL_RANGE[1]:
        raise BadDate("not a plausible Excel serial date")
    return from_excel(number).date()


def parse_date(value: Any, *, today: dt.date) -> dt.date | None:
    """A date from a cell as people write it (None for a blank cell); raises BadDate. ``today`` is the day of
    the push: it gives the year to dates written without one. Inside ``remembering()`` each distinct text is
    read once (a list spells its few arrival days a handful of ways)."""
    if value.__class__ is str:
        texts = getattr(_local, "texts", None)
        if texts is not None:
            key = (_DATE_KEY, value, today)
            known = texts.get(key, _DATE_KEY)
            if known is _DATE_KEY:
                try:
                    known = _parse_date(value, today)
                except BadDate as exc:
                    known = str(exc)
                if len(texts) < _REMEMBER_MAX:
                    texts[key] = known
            if known.__class__ is str:
                raise BadDate(known)
            return known
    return _parse_date(value, today)


_DATE_KEY = object()  # marks parse_date's entries among the remembered texts


def _parse_date(value: Any, today: dt.date) -> dt.date | None:
    if is_blank(value):
        return None
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if isinstance(value, bool):
        raise BadDate("not a date")
    if isinstance(value, int | float):
        if float(value).is_integer() and 19000101 <= value <= 21001231:
            value = str(int(value))
        else:
            return _serial(float(value))
    text = unicodedata.normalize("NFKC", str(value)).strip()
    if _SERIAL.fullmatch(text):
        return _serial(float(text))
    for pattern, has_year in ((_FULL_DATE, True), (_COMPACT_DATE, True), (_SHORT_DATE, False)):
        match = pattern.match(text)
        if match is None or not _TIME_REST.fullmatch(text[match.end():]):
            continue
        numbers = [int(g) for g in match.groups()]
        try:
            if has_year:
                return dt.date(*numbers)
            day = dt.date(today.year, *numbers)
        except ValueError:
            raise BadDate("no such date") from None
        if day > today + dt.timedelta(days=31):  # 12月30日 in a list pushed on 2 January
            day = day.replace(year=today.year - 1)
        return day
    raise BadDate("cannot read this date")


# --- identifiers --------------------------------------------------------------------------------------------

_PLAIN_ID = re.compile(r"\d{17}[\dXx]", re.ASCII)
_PLAIN_PHONE = re.compile(r"1[3-9]\d{9}", re.ASCII)


def _plain_id_number(text: str) -> str:
    """``text`` (18 ASCII characters: 17 digits and a digit or x) as ``parse_id_number`` returns it when it is a
    valid number as typed, else '' (the full reading then says what is wrong): most cells of a list are."""
    number = text.upper() if text[17] == "x" else text
    if id_checksum(number[:17]) != number[17]:
        return ""
    try:
        birth = dt.date(int(number[6:10]), int(number[10:12]), int(number[12:14]))
    except ValueError:
        return ""
    if birth.year < 1880 or birth > dt.date.today():
        return ""
    return number


def parse_id_number(value: Any) -> str:
    """A valid 18-character ID number ('' for a blank cell); raises BadCell with the reason (MANGLED for a
    number Excel cut to 15 significant digits)."""
    if value.__class__ is str and len(value) == 18 and _PLAIN_ID.fullmatch(value):
        number = _plain_id_number(value)
        if number:
            return number
    text = digits_text(value)
    digits = unicodedata.normalize("NFKC", text).replace(" ", "")
    if (len(digits) == 18 and digits.isdigit() and digits.endswith("000")
            and id_checksum(digits[:17]) != digits[17]):
        raise BadCell(MANGLED)
    return id_number_cell(text)


_PHONE_SEPARATORS = re.compile(r"[/,，;；、|]+")


def parse_phone(value: Any) -> tuple[str, str]:
    """(phone or '', note or ''): a missing, invalid or mangled phone is never a rejection."""
    if value.__class__ is str and len(value) == 11 and _PLAIN_PHONE.fullmatch(value):
        return value, ""  # a mobile number as typed: what the full reading below returns for it
    if is_blank(value):
        return "", NO_PHONE
    try:
        return phone_cell(value), ""
    except BadCell as exc:
        if str(exc) == MANGLED:
            return "", MANGLED_PHONE
    parts = [p for p in _PHONE_SEPARATORS.split(clean_text(value)) if p.strip()]
    if len(parts) > 1:
        for part in parts:
            try:
                return phone_cell(part), FIRST_PHONE
            except BadCell:
                continue
    return "", BAD_PHONE


def parse_sex(value: Any) -> str:
    text = clean_text(value).lower()
    if text in {"男", "男性", "m", "male"}:
        return "M"
    if text in {"女", "女性", "f", "female"}:
        return "F"
    return ""


def seal_id_number(person, id_number: str) -> None:
    """Seal an ID number into ``person`` (sealed value, lookup hash, masked form, last four)."""
    person.set_id_number(id_number)


# --- one row ------------------------------------------------------------------------------------------------

class _computed_once:
    """``functools.cached_property`` without its lock (Python 3.11 takes one on every read: an import reads the
    hashes of 50,000 rows several times). The value is kept in the instance's ``__dict__``, which later reads
    find first; assigning the attribute sets it, as with ``cached_property``."""

    def __init__(self, fn) -> None:
        self.fn = fn
        self.name = fn.__name__
        self.__doc__ = fn.__doc__

    def __get__(self, obj, cls=None):
        if obj is None:
            return self
        value = obj.__dict__[self.name] = self.fn(obj)
        return value


@dataclass
class Row:
    """One data row after normalisation. ``rejected`` is (field, reason) for a row that cannot be imported."""

    number: int
    name: str = ""
    id_number: str = ""
    phone: str = ""
    birth_date: dt.date | None = None
    sex: str = ""
    origin: str = ""
    via: str = ""
    arrival_date: dt.date | None = None
    address: str = ""
    township: str = ""
    community: str = ""
    source: str = ""
    notes: list[str] = field(default_factory=list)
    rejected: tuple[str, str] | None = None
    id_problem: str = ""  # why the ID number given could not be used (the row goes on as "ID to fix")

    @_computed_once
    def id_hash(self) -> str:
        return crypto.lookup_hash("id", self.id_number)

    @_computed_once
    def phone_hash(self) -> str:
        return crypto.lookup_hash("phone", self.phone)

    @property
    def masked_id(self) -> str:
        return mask_id_number(self.id_number)

    @property
    def masked_phone(self) -> str:
        return mask_phone(self.phone)

    def reject(self, field_name: str, reason: str) -> Row:
        if self.rejected is None:
            self.rejected = (field_name, reason)
        return self


def normalize_row(number: int, cells: dict[str, Any], *, today: dt.date) -> Row:
    """Normalise the mapped cells (field -> raw value) of data row ``number``."""
    row = Row(number)
    row.name, problem = _name_of(cells.get("name"))
    if problem:
        return row.reject("name", problem)
    bad_id = ""
    try:
        row.id_number = parse_id_number(cells.get("id_number"))
    except BadCell as exc:
        bad_id = str(exc)
    row.phone, note = parse_phone(cells.get("phone"))
    if bad_id:
        if not row.phone and not clean_text(cells.get("address")):
            return row.reject("id_number", bad_id)
        row.id_problem = bad_id[:200]
        row.notes.append(f"{ID_TO_FIX}：{bad_id}")
    if note:
        row.notes.append(note)
    if row.id_number:
        row.birth_date, row.sex = birth_date_from_id(row.id_number), sex_from_id(row.id_number)
    else:
        row.sex = parse_sex(cells.get("sex"))
        try:
            row.birth_date = parse_date(cells.get("birth_date"), today=today)
        except BadCell:
            row.notes.append(BAD_BIRTH)
        if row.birth_date is not None and not dt.date(1880, 1, 1) <= row.birth_date <= today:
            row.birth_date = None
            row.notes.append(BAD_BIRTH)
        if not row.phone and row.birth_date is None and not row.id_problem:
            return row.reject("id_number", UNIDENTIFIABLE)
    try:
        row.arrival_date = parse_date(cells.get("arrival_date"), today=today)
    except BadCell:
        row.notes.append(BAD_ARRIVAL)
    get = cells.get
    for key, limit in _TEXT_LIMITS:
        setattr(row, key, clean_text(get(key), limit))
    return row


# --- masking the row as read --------------------------------------------------------------------------------

_DIGIT_RUN = re.compile(r"\d{7,}[xXｘＸ]?")  # \d also matches full-width digits


def _mask_run(match: re.Match) -> str:
    run = match.group(0)
    if len(run) >= 15:
        return f"{run[:6]}{'*' * (len(run) - 10)}{run[-4:]}"
    return f"{run[:3]}{'*' * (len(run) - 7)}{run[-4:]}"


def scrub(text: str) -> str:
    """Mask every run of seven or more digits (ID numbers, phones in columns nobody mapped)."""
    return _DIGIT_RUN.sub(_mask_run, text)


def masked_cell(field_name: str | None, value: Any, row: Row) -> str:
    """A cell as stored in PushRow.masked: ID numbers and phones masked, never clear."""
    if is_blank(value):
        return ""
    if field_name in ("arrival_date", "birth_date"):
        return cell_text(value) if not isinstance(value, float) else repr(value)
    if field_name == "id_number" and row.id_number:
        return row.masked_id
    if field_name == "phone" and row.phone and not _PHONE_SEPARATORS.search(cell_text(value)):
        return row.masked_phone
    text = cell_text(value) if not isinstance(value, float) or value.is_integer() else repr(value)
    return scrub(text)
