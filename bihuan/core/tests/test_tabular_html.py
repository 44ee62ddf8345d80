"""core.tabular reads a web page named .xls (a common government export) row for row as Excel opens it."""

import codecs

from bihuan.core.tabular import CSV, HTML, estimate_rows, file_kind, read_sheets

PAGE = """<html xmlns:o="urn:schemas-microsoft-com:office:office">
<head><meta http-equiv="Content-Type" content="text/html; charset=gb2312"></head><body>
<h3>推送名单</h3>
<table border=1>
<tr><td colspan=3>市大数据局 2022-03-05</td></tr>
<tr><th>姓名</th><th>身份证号</th><th>地址</th></tr>
<tr><td rowspan="2">张&nbsp;三</td><td style="mso-number-format:'\\@'">141002198001010011</td>
    <td>锦悦小区<br>3号楼 &amp; 2单元</td></tr>
<tr><td>141002198001010012</td><td></td></tr>
<tr><td>李四<table><tr><td>附注</td></tr></table></td><td>1</td><td>x</td></tr>
</table><p>共 3 人</p></body></html>"""


def rows_of(data: bytes) -> list:
    (name, rows), = read_sheets(data, "名单.xls")
    assert name == "名单.xls"
    return list(rows)


def test_a_gbk_web_page_reads_as_one_sheet_with_merged_cells_aligned():
    data = PAGE.encode("gbk")
    assert file_kind(data, "名单.xls") == HTML and estimate_rows(data) == 6
    assert rows_of(data) == [
        (1, ("推送名单",)),
        (2, ("市大数据局 2022-03-05", None, None)),  # a merged cell keeps its value in its first cell, as in Excel
        (3, ("姓名", "身份证号", "地址")),
        (4, ("张 三", "141002198001010011", "锦悦小区 3号楼 & 2单元")),  # digits kept whole, <br> a space
        (5, (None, "141002198001010012", None)),  # the rowspan's column stays in place
        (6, ("李四 附注", "1", "x")),  # a nested table is text of its cell
        (7, ("共 3 人",)),
    ]


def test_utf8_with_bom_and_a_bare_table_read_too():
    data = codecs.BOM_UTF8 + "<table><tr><td>姓名</td></tr><tr><td>王五</td></tr></table>".encode()
    assert file_kind(data) == HTML and rows_of(data) == [(1, ("姓名",)), (2, ("王五",))]


def test_text_that_only_mentions_a_table_and_excel_xml_are_not_web_pages():
    assert file_kind("姓名,备注\n王五,<table> 标签\n".encode()) == CSV
    spreadsheet_xml = b'<?xml version="1.0"?><?mso-application progid="Excel.Sheet"?><Workbook><Table><Row>'
    assert file_kind(spreadsheet_xml) == CSV
