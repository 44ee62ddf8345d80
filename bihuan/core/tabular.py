"""Reading tables that people send: .xlsx, .xls and .csv files, and the cells in them.

Shared by the register workbook (``register.workbook``) and the pushed-list import (``pushes.importing``).

Cells
-----
``BadCell`` is a cell value that cannot be used; its message is the reason shown to the user (Chinese, with
the English in brackets). ``digits_text`` reads a code, ID number or phone and refuses a value that Excel has
turned into a number and so lost digits of (``1.41002E+17``, or a numeric cell with more than 15 significant
digits). ``id_number_cell`` and ``phone_cell`` validate on top of that.

Files
-----
``read_sheets(data, file_name)`` yields ``(sheet name, rows)`` where rows are ``(row number, values)`` with the
row numbers Excel shows (1-based; CSV: the record number, blank lines included). The kind of file is told by
its first bytes (an .xls that is really an .xlsx, a CSV or a web page is read as what it is: many government
systems export an HTML table named .xls, which Excel opens as a sheet). CSV and HTML text is decoded strictly
as UTF-8 (with or without BOM), UTF-16 (with BOM) or GB18030 (a superset of GBK), else as charset-normalizer
guesses; the delimiter is the most frequent of comma, tab and semicolon in the first line.
"""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import io
import re
import unicodedata
from collections.abc import Iterable, Iterator
from html.parser import HTMLParser
from typing import Any

from bihuan.core.excel import FORMULA_STARTS
from bihuan.core.personal import normalize_id_number, normalize_phone

Rows = Iterator[tuple[int, tuple]]


# --- cells ------------------------------------------------------------------------------------------------

class BadCell(ValueError):
    """A cell value that cannot be used; the message is the reason shown to the user."""


MANGLED = ("被 Excel 改成了科学计数法（数值只保留 15 位有效数字，后几位已丢失），请把该列设为“文本”格式后重新填写 "
           "(Excel turned this into a number and lost its last digits; format the column as text and re-enter it)")
SCIENTIFIC = re.compile(r"^[+-]?\d+(\.\d*)?[eE][+-]?\d+$")

ID_REASONS = (
    ("must be 18", "身份证号应为 18 位：17 位数字加一位数字或 X"),
    ("birth date", "身份证号中的出生日期不存在"),
    ("checksum", "身份证号校验位错误"),
)


def is_blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def cell_text(value: Any, max_length: int | None = None) -> str:
    """A cell as text: whole floats without ``.0``, datetimes as ISO dates, booleans as 是 / 否."""
    if value is None:
        return ""
    if isinstance(value, bool):
        text = "是" if value else "否"
    elif isinstance(value, float) and value.is_integer():
        text = str(int(value))
    elif isinstance(value, dt.datetime):
        text = value.date().isoformat() if value.time() == dt.time() else value.isoformat(sep=" ")
    else:
        text = str(value)
    text = text.strip()
    if text[:1] == "'" and text[1:2] in FORMULA_STARTS:
        text = text[1:]  # the apostrophe core.excel put before text that looks like a formula: read back as written
    if max_length is not None and len(text) > max_length:
        raise BadCell(f"不能超过 {max_length} 个字符 (at most {max_length} characters)")
    return text


NAME_MARKS = "·•・‧･"  # the middle dots between the parts of a transliterated name (阿卜杜·热合曼)
BAD_NAME = "姓名只能由文字、“·”和空格组成 (a name is letters, · and spaces)"


def is_person_name(text: str) -> bool:
    """A person's name: letters (any script) with their marks, middle dots and spaces; inside a Latin name also
    ``-``, ``'`` and ``.`` (Jean-Pierre O'Neil Jr.). Never a formula, a digit, a bracket or a control character."""
    if not text or not unicodedata.category(text[0]).startswith("L"):
        return False
    for ch in text:
        kind = unicodedata.category(ch)
        if kind[0] in "LM" or ch in NAME_MARKS or ch == " " or ch in "-'.":
            continue
        return False
    return True


FORMULA_LIKE = "不能以 = + - @ 开头（电子表格会把它当作公式）(must not start like a spreadsheet formula)"


def label_cell(value: Any, max_length: int | None = None) -> str:
    """A label that is no person's name (a unit's or staff member's name): any text that does not start like a
    formula."""
    text = cell_text(value, max_length)
    if text[:1] in FORMULA_STARTS:
        raise BadCell(FORMULA_LIKE)
    return text


def name_cell(value: Any, max_length: int | None = None) -> str:
    """A person's name from a cell ('' for a blank cell); anything else that is no name is a BadCell."""
    text = " ".join(cell_text(value, max_length).split())
    if text and not is_person_name(text):
        raise BadCell(BAD_NAME)
    return text


def digits_text(value: Any, max_length: int | None = None) -> str:
    """A code, ID number or phone: text as typed; a numeric cell only while Excel kept every digit."""
    if isinstance(value, bool):
        raise BadCell("应为文本 (must be text)")
    if isinstance(value, int | float):
        if isinstance(value, float) and not value.is_integer():
            raise BadCell(MANGLED if abs(value) >= 1e6 else "应为文本 (must be text)")
        number = int(value)
        if abs(number) >= 10**15:  # more than Excel's 15 significant digits: the tail is gone
            raise BadCell(MANGLED)
        return cell_text(str(number), max_length)
    text = cell_text(value, max_length)
    if SCIENTIFIC.match(unicodedata.normalize("NFKC", text).replace(" ", "")):
        raise BadCell(MANGLED)
    return text


def id_number_cell(value: Any) -> str:
    """A valid 18-character ID number ('' for a blank cell); 15-digit numbers are converted."""
    text = digits_text(value)
    if not text:
        return ""
    try:
        return normalize_id_number(text)
    except ValueError as exc:
        message = str(exc)
        zh = next((z for en, z in ID_REASONS if en in message), "身份证号无效")
        if "checksum" in message:
            message = "GB 11643 checksum does not match"
        raise BadCell(f"{zh} ({message})") from None


def phone_cell(value: Any) -> str:
    """Digits of a mobile or landline number ('' for a blank cell), without +86 / 0086."""
    text = digits_text(value)
    if not text:
        return ""
    try:
        return normalize_phone(text)
    except ValueError as exc:
        raise BadCell(f"不是有效的手机号或带区号的固定电话 ({exc})") from None


def chunks(items: Iterable, size: int = 500) -> Iterator[list]:
    """``items`` in lists of ``size`` (for IN (...) lookups and batched writes)."""
    batch: list = []
    for item in items:
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def header_key(text: Any) -> str:
    """A header as compared: half-width, without spaces, a hint in brackets, ``*`` markers or a trailing colon."""
    value = unicodedata.normalize("NFKC", str(text or ""))
    value = re.sub(r"[(\[【〔].*?[)\]】〕]", "", value)
    return re.sub(r"\s+", "", value).strip("*:")


# --- files ------------------------------------------------------------------------------------------------

class UnreadableFile(ValueError):
    """The file is no spreadsheet or CSV we can read; the message says why (for the user)."""


XLSX, XLS, CSV, HTML = "xlsx", "xls", "csv", "html"
_OLE2 = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_HTML_START = re.compile(rb"\s*(<\?xml[^>]*>\s*)?(<!--.*?-->\s*)*<(!doctype\s+html|html|head|meta|table)", re.I | re.S)


def file_kind(data: bytes, file_name: str = "") -> str:
    """``xlsx``, ``xls``, ``html`` or ``csv``, from the first bytes (the name only breaks no ties)."""
    if data[:4] == b"PK\x03\x04":
        return XLSX
    if data[:8] == _OLE2:
        return XLS
    if _HTML_START.match(data.removeprefix(codecs.BOM_UTF8), 0, 4096) and re.search(rb"<table", data, re.I):
        return HTML
    return CSV


def decode_text(data: bytes) -> tuple[str, str]:
    """The text of a CSV file and the encoding it was read with."""
    if data.startswith(codecs.BOM_UTF16_LE) or data.startswith(codecs.BOM_UTF16_BE):
        try:
            return data.decode("utf-16"), "utf-16"
        except UnicodeDecodeError:
            pass
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            return data.decode(encoding), encoding
        except UnicodeDecodeError:
            continue
    from charset_normalizer import from_bytes

    best = from_bytes(data).best()
    if best is None:
        raise UnreadableFile("无法识别文件的字符编码，请另存为 UTF-8 或 GBK 编码的 CSV (cannot tell the file's encoding)")
    return str(best), best.encoding


def _delimiter(text: str) -> str:
    for line in text.splitlines():
        if line.strip():
            counts = {d: line.count(d) for d in (",", "\t", ";")}
            best = max(counts, key=lambda d: counts[d])
            return best if counts[best] else ","
    return ","


def _csv_rows(data: bytes) -> Rows:
    """Rows decoded as the stream goes (memory: the bytes plus one row, never a copy of the whole text); the
    encoding is told from the first megabyte."""
    _text, encoding = decode_text(_head(data))
    csv.field_size_limit(MAX_CELL_CHARS + 1)
    stream = io.TextIOWrapper(io.BytesIO(data), encoding=encoding, errors="strict", newline="")
    reader = csv.reader(stream, delimiter=_delimiter(_text[:65536]))
    for number, row in enumerate(reader, start=1):
        yield number, tuple(row)


def _head(data: bytes, size: int = 1 << 20) -> bytes:
    """The first ``size`` bytes, cut back to a line end so no character is split."""
    if len(data) <= size:
        return data
    cut = data.rfind(b"\n", 0, size)
    return data[:cut + 1] if cut > 0 else data[:size]


def _xlsx_sheets(data: bytes) -> Iterator[tuple[str, Rows]]:
    """The worksheets of an .xlsx: read by calamine (a compiled reader, 5–10 times faster than openpyxl on a
    50,000-row list) when it is installed and opens the file, else by openpyxl. Both give the same values."""
    try:
        book = _calamine_book(data)
    except Exception:  # noqa: BLE001 - anything calamine cannot open, openpyxl tries (and tells what is wrong)
        book = None
    if book is not None:
        yield from _calamine_sheets(book)
        return
    yield from _openpyxl_sheets(data)


def _calamine_book(data: bytes):
    try:
        from python_calamine import CalamineWorkbook
    except ImportError:
        return None
    return CalamineWorkbook.from_filelike(io.BytesIO(data))


_WHOLE = 10**15  # Excel keeps 15 significant digits: a whole number below this is written without an exponent


def _calamine_cell(value: Any) -> Any:
    """A cell as openpyxl (read-only, values only) gives it: None for an empty cell, int for a whole number
    written without an exponent, datetime for a date cell."""
    cls = value.__class__
    if cls is str:
        return value if value else None
    if cls is float:
        return int(value) if value.is_integer() and -_WHOLE < value < _WHOLE else value
    if cls is dt.date:
        return dt.datetime(value.year, value.month, value.day)
    return value


def _calamine_row(values: list) -> tuple:
    """The row without trailing empty cells (calamine pads every row to the sheet's width), cells as openpyxl's."""
    end = len(values)
    while end and values[end - 1] == "":
        end -= 1
    return tuple(map(_calamine_cell, values[:end])) if end else ()


def _calamine_sheets(book) -> Iterator[tuple[str, Rows]]:
    from python_calamine import SheetTypeEnum

    try:
        for meta in book.sheets_metadata:
            if meta.typ != SheetTypeEnum.WorkSheet:
                continue  # a chart or dialog sheet
            # From A1, empty rows and columns before the data included: the row numbers are those Excel shows.
            values = book.get_sheet_by_name(meta.name).to_python(skip_empty_area=False)
            yield meta.name, _numbered(values)
    finally:
        book.close()


def _numbered(values: list[list]) -> Rows:
    for number, row in enumerate(values, start=1):
        yield number, _calamine_row(row)
        values[number - 1] = None  # read once: let the sheet's rows go as they are read


def _openpyxl_sheets(data: bytes) -> Iterator[tuple[str, Rows]]:
    from openpyxl import load_workbook

    book = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    try:
        for ws in book.worksheets:
            if not hasattr(ws, "iter_rows"):
                continue  # a chart sheet
            ws.reset_dimensions()  # some writers store wrong dimensions; read every row there is
            yield ws.title, enumerate(ws.iter_rows(values_only=True), start=1)
    finally:
        book.close()


def _xls_value(cell, datemode: int) -> Any:
    import xlrd

    kind, value = cell.ctype, cell.value
    if kind in (xlrd.XL_CELL_EMPTY, xlrd.XL_CELL_BLANK, xlrd.XL_CELL_ERROR):
        return None
    if kind == xlrd.XL_CELL_DATE:
        try:
            return xlrd.xldate.xldate_as_datetime(value, datemode)
        except (ValueError, OverflowError, xlrd.xldate.XLDateError):
            return value
    if kind == xlrd.XL_CELL_BOOLEAN:
        return bool(value)
    if kind == xlrd.XL_CELL_NUMBER and float(value).is_integer() and abs(value) < 2**53:
        return int(value)
    return value


def _xls_sheets(data: bytes) -> Iterator[tuple[str, Rows]]:
    import xlrd

    book = xlrd.open_workbook(file_contents=data, on_demand=True)
    try:
        for index in range(book.nsheets):
            sheet = book.sheet_by_index(index)
            rows = ((n + 1, tuple(_xls_value(c, book.datemode) for c in sheet.row(n))) for n in range(sheet.nrows))
            yield sheet.name, rows
            book.unload_sheet(index)
    finally:
        book.release_resources()


class _HtmlRows(HTMLParser):
    """The rows of a web page as Excel opens it: each ``<tr>`` a row, and each title or paragraph outside the
    tables a row of one cell. A merged cell (``colspan``, ``rowspan``) holds its value in its first cell and
    leaves the others empty, as in Excel; ``<br>`` and runs of spaces become one space."""

    BLOCKS = {"p", "div", "h1", "h2", "h3", "h4", "h5", "h6", "caption", "title"}

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.rows: list[tuple] = []
        self.tables = 0  # depth: cells of a nested table are text of the outer cell
        self.row: list | None = None
        self.text: list[str] | None = None  # the cell or block being read
        self.spans: dict[int, int] = {}  # column -> rows it is still covered by a rowspan from above
        self.colspan = 1
        self.rowspan = 1

    def handle_starttag(self, tag, attrs):
        if tag == "table":
            self.tables += 1
            if self.text is not None:
                self.text.append(" ")  # a nested table's text is apart from its cell's
        elif self.tables == 1 and tag == "tr":
            self._end_row()
            self.row = []
        elif self.tables == 1 and tag in ("td", "th"):
            if self.row is None:
                self.row = []
            self._end_cell()
            attrs = dict(attrs)
            self.colspan, self.rowspan = _span(attrs.get("colspan")), _span(attrs.get("rowspan"))
            self.text = []
        elif tag == "br" and self.text is not None:
            self.text.append(" ")
        elif tag in self.BLOCKS and self.tables == 0:
            self._end_block()
            self.text = []

    def handle_endtag(self, tag):
        if tag == "table":
            if self.tables == 1:
                self._end_row()
            self.tables = max(0, self.tables - 1)
        elif self.tables == 1 and tag in ("td", "th"):
            self._end_cell()
        elif self.tables == 1 and tag == "tr":
            self._end_row()
        elif tag in self.BLOCKS and self.tables == 0:
            self._end_block()

    def handle_data(self, data):
        if self.text is not None:
            self.text.append(data)

    def close(self):
        super().close()
        self._end_row()
        self._end_block()

    def _take_text(self) -> str | None:
        text = " ".join("".join(self.text or []).split())
        self.text = None
        return text or None

    def _skip_spanned(self) -> None:
        while self.spans.get(len(self.row), 0) > 0:
            self.row.append(None)

    def _end_cell(self) -> None:
        if self.row is None or self.text is None:
            return
        self._skip_spanned()
        first = len(self.row)
        self.row.append(self._take_text())
        self.row.extend([None] * (self.colspan - 1))
        for column in range(first, first + self.colspan):
            if self.rowspan > 1:
                self.spans[column] = self.rowspan  # counted down as rows end, this one included
        self.colspan = self.rowspan = 1

    def _end_row(self) -> None:
        if self.row is None:
            return
        self._end_cell()
        self._skip_spanned()
        self.rows.append(tuple(self.row))
        self.spans = {c: n - 1 for c, n in self.spans.items() if n > 1}
        self.row = None

    def _end_block(self) -> None:
        if self.tables == 0 and self.text is not None:
            text = self._take_text()
            if text:
                self.rows.append((text,))


def _span(value: str | None) -> int:
    number = value.strip() if value else ""
    return min(int(number), 1000) if number.isascii() and number.isdigit() and int(number) > 0 else 1


def _html_rows(data: bytes) -> Rows:
    text, _encoding = decode_text(data)
    parser = _HtmlRows()
    parser.feed(text)
    parser.close()
    yield from enumerate(parser.rows, start=1)


# Limits on what a file may make the server do (core.tabular is the one reader of uploads).
MAX_ROWS = 1_000_000  # rows per sheet
MAX_COLUMNS = 300
MAX_CELL_CHARS = 32_767  # Excel's own limit of a cell
XLSX_MAX_UNPACKED = 512 * 1024 * 1024  # bytes of all members of a workbook, unpacked
XLSX_MAX_RATIO = 200  # unpacked / packed, per member (real sheets compress 5-20 times)
XLSX_MAX_MEMBERS = 2_000
_XML_DECLS = re.compile(rb"<!DOCTYPE|<!ENTITY", re.I)


def check_xlsx(data: bytes) -> None:
    """Refuse a zip bomb or an XML bomb before openpyxl reads a byte of it: too many members, a member that unpacks
    to more than ``XLSX_MAX_RATIO`` times its packed size, more than ``XLSX_MAX_UNPACKED`` in all, or a DOCTYPE /
    ENTITY declaration in any XML part (a workbook never has one; defusedxml refuses them again when parsing)."""
    import zipfile

    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile:
        raise UnreadableFile("无法读取文件：不是有效的 .xlsx 文件 (not a valid .xlsx file)") from None
    with archive:
        members = archive.infolist()
        if len(members) > XLSX_MAX_MEMBERS:
            raise UnreadableFile(f"文件包含的部件过多 (more than {XLSX_MAX_MEMBERS} parts)")
        total = 0
        for info in members:
            total += info.file_size
            if info.file_size > 1024 * 1024 and info.file_size > XLSX_MAX_RATIO * max(info.compress_size, 1):
                raise UnreadableFile("文件压缩比异常，疑似压缩炸弹，已拒绝 (refused: decompression ratio too high)")
            if total > XLSX_MAX_UNPACKED:
                raise UnreadableFile("文件解压后过大，已拒绝 (refused: too large when unpacked)")
        for info in members:
            if info.filename.endswith((".xml", ".rels", ".vml")):
                with archive.open(info) as part:
                    head = part.read(64 * 1024)
                if _XML_DECLS.search(head):
                    raise UnreadableFile("文件含有 XML 实体声明，已拒绝 (refused: XML entity declarations)")


EXTENSION_KINDS = {".xlsx": {XLSX}, ".xlsm": {XLSX}, ".xls": {XLS, XLSX, HTML}, ".csv": {CSV}, ".txt": {CSV},
                   ".htm": {HTML}, ".html": {HTML}}


def check_extension(data: bytes, file_name: str) -> str:
    """The file's kind, refused when its content is not what its name says (a zip named .csv, a program named
    .xlsx). An .xls may hold a real .xls, an .xlsx or a web page: government systems export all three so named."""
    kind = file_kind(data, file_name)
    ext = "." + file_name.rsplit(".", 1)[-1].lower() if "." in file_name else ""
    allowed = EXTENSION_KINDS.get(ext)
    if allowed is not None and kind not in allowed:
        raise UnreadableFile(f"文件内容与扩展名 {ext} 不符 (the content is not a {ext} file)")
    return kind


def guarded_rows(rows: Rows, kind: str) -> Rows:
    """The rows of a sheet, within the limits, and every error while reading them an UnreadableFile."""
    try:
        for number, values in rows:
            if number > MAX_ROWS:
                raise UnreadableFile(f"行数超过上限 {MAX_ROWS:,} 行，请拆分后上传 (more than {MAX_ROWS:,} rows)")
            if len(values) > MAX_COLUMNS:
                values = tuple(values)
                if any(not is_blank(v) for v in values[MAX_COLUMNS:]):
                    raise UnreadableFile(f"第 {number} 行超过 {MAX_COLUMNS} 列 (row {number} has more than "
                                         f"{MAX_COLUMNS} columns)")
                values = values[:MAX_COLUMNS]
            for v in values:
                if isinstance(v, str) and (len(v) > MAX_CELL_CHARS or "\x00" in v):
                    raise UnreadableFile(f"第 {number} 行有超长或含空字符（NUL）的单元格 (row {number}: a cell is "
                                         f"longer than {MAX_CELL_CHARS} characters or holds NUL)")
            yield number, values
    except UnreadableFile:
        raise
    except Exception as exc:  # noqa: BLE001 - a file that breaks while read is the user's error, told as such
        raise UnreadableFile(f"无法读取文件，请上传 .xlsx、.xls 或 .csv 文件 (not a readable {kind} file: "
                             f"{type(exc).__name__})") from exc


def read_sheets(data: bytes, file_name: str = "") -> Iterator[tuple[str, Rows]]:
    """Every sheet of the file (a CSV file is one sheet named after the file). Raises UnreadableFile, also while
    its rows are read: a file whose name and content disagree, a zip or XML bomb, too many rows or columns, an
    over-long or NUL cell, or any breakage."""
    kind = check_extension(data, file_name)
    if kind == XLSX:
        check_xlsx(data)
    try:
        if kind == XLSX:
            sheets = _xlsx_sheets(data)
        elif kind == XLS:
            sheets = _xls_sheets(data)
        elif kind == HTML:
            sheets = iter([(file_name or "html", _html_rows(data))])
        else:
            sheets = iter([(file_name or "csv", _csv_rows(data))])
        for name, rows in sheets:
            yield name, guarded_rows(rows, kind)
    except UnreadableFile:
        raise
    except Exception as exc:  # noqa: BLE001 - any broken file is the user's error, told as such
        raise UnreadableFile(f"无法读取文件，请上传 .xlsx、.xls 或 .csv 文件 (not a readable {kind} file: "
                             f"{type(exc).__name__})") from exc


def _count_xlsx_rows(data: bytes, limit: int) -> int:
    """Count ``<row`` tags in the first worksheet's XML, streaming, stopping past ``limit`` (openpyxl would parse
    the whole sheet just to learn its size when the file stores no dimension)."""
    import zipfile

    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        names = sorted(n for n in archive.namelist() if n.startswith("xl/worksheets/") and n.endswith(".xml"))
        if not names:
            return 0
        first = "xl/worksheets/sheet1.xml" if "xl/worksheets/sheet1.xml" in names else names[0]
        count, tail = 0, b""
        with archive.open(first) as stream:
            while count <= limit:
                block = stream.read(1 << 20)
                if not block:
                    break
                text = tail + block
                count += text.count(b"<row ") + text.count(b"<row>") + text.count(b":row ")
                tail = text[-5:]
                count -= tail.count(b"<row ") + tail.count(b"<row>") + tail.count(b":row ")
        return count


def estimate_rows(data: bytes, file_name: str = "", limit: int = 10**9) -> int:
    """How many rows the file has, cheaply, counted up to a little past ``limit`` (to choose between processing
    an upload at once and leaving it to the worker)."""
    kind = file_kind(data, file_name)
    try:
        if kind == XLSX:
            return _count_xlsx_rows(data, limit)
        if kind == XLS:
            import xlrd

            book = xlrd.open_workbook(file_contents=data, on_demand=True)
            try:
                return book.sheet_by_index(0).nrows
            finally:
                book.release_resources()
        if kind == HTML:
            return len(re.findall(rb"<tr[\s>]", data, re.I))
    except Exception:  # noqa: BLE001 - an unreadable file is reported when it is read
        return 0
    return data.count(b"\n") + 1
