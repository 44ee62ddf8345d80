"""The logins of newly appointed people as a small workbook (登录名, 初始密码 …), for the person who hands them out."""

from __future__ import annotations

from bihuan.core import excel

HEADERS = ["登录名", "初始密码", "姓名", "单位编码", "单位", "角色"]
KEYS = ["username", "password", "name", "unit_code", "unit", "role"]


def logins_bytes(logins: list[dict]) -> bytes:
    book = excel.workbook()
    ws = book.active
    ws.title = "初始密码"
    ws.append(HEADERS)
    for cell in ws[1]:
        cell.font, cell.fill = excel.HEADER_FONT, excel.HEADER_FILL
    for login in logins:
        ws.append([str(login[k]) for k in KEYS])
    ws.append([])
    ws.append(["初始密码只用一次：首次登录必须修改。请把本文件交给本人后删除。"])
    return excel.to_bytes(book)
