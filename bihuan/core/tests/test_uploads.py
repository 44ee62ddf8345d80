"""Uploads cannot sink the server: the body is refused by size before it is read, and the one reader
(core.tabular) refuses zip bombs, XML entities, mismatched content, too many rows or columns, over-long and NUL
cells — also while the rows are read — with memory bounded."""

from __future__ import annotations

import io
import subprocess
import sys
import textwrap
import zipfile

import pytest
from django.urls import reverse

from bihuan.core import excel, tabular
from bihuan.core.tabular import UnreadableFile, read_sheets


def read_all(data: bytes, name: str):
    return [(sheet, list(rows)) for sheet, rows in read_sheets(data, name)]


def zip_bomb(unpacked_mb: int = 300) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("[Content_Types].xml", "<Types/>")
        with z.open("xl/worksheets/sheet1.xml", "w") as part:
            block = b"<row><c><v>1</v></c></row>" * 40_000
            for _ in range(unpacked_mb * 1024 * 1024 // len(block)):
                part.write(block)
    return out.getvalue()


def with_part(name: str, text: str) -> bytes:
    book = excel.workbook()
    book.active.append(["姓名"])
    src = zipfile.ZipFile(io.BytesIO(excel.to_bytes(book)))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        for info in src.infolist():
            z.writestr(info, text if info.filename == name else src.read(info))
    return out.getvalue()


def test_a_zip_bomb_is_refused_before_it_is_unpacked():
    data = zip_bomb(60)
    assert len(data) < 2 * 1024 * 1024
    with pytest.raises(UnreadableFile, match="压缩"):
        read_all(data, "bomb.xlsx")


@pytest.mark.parametrize("xml", [
    '<?xml version="1.0"?><!DOCTYPE x [<!ENTITY xxe SYSTEM "file:///etc/passwd">]><worksheet>&xxe;</worksheet>',
    '<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]>'
    '<worksheet>&b;</worksheet>',
])
def test_xml_entities_are_refused(xml):
    with pytest.raises(UnreadableFile, match="XML"):
        read_all(with_part("xl/worksheets/sheet1.xml", xml), "x.xlsx")


def test_content_that_does_not_match_the_extension_is_refused():
    with pytest.raises(UnreadableFile, match="扩展名"):
        read_all(b"PK\x03\x04" + b"\0" * 100, "list.csv")
    with pytest.raises(UnreadableFile, match="扩展名"):
        read_all("姓名\n张三\n".encode(), "list.xlsx")


def test_a_long_field_or_nul_in_a_csv_is_refused_while_reading():
    with pytest.raises(UnreadableFile):
        read_all(("姓名\n" + "长" * 200_000 + "\n").encode(), "long.csv")
    with pytest.raises(UnreadableFile, match="NUL"):
        read_all("姓名\n张\x00三\n".encode(), "nul.csv")


def test_too_many_rows_or_columns_are_refused_with_the_limit(monkeypatch):
    monkeypatch.setattr(tabular, "MAX_ROWS", 10)
    with pytest.raises(UnreadableFile, match="行数超过上限"):
        read_all(("姓名\n" + "张三\n" * 20).encode(), "many.csv")
    with pytest.raises(UnreadableFile, match="列"):
        read_all((",".join(["x"] * 400) + "\n").encode(), "wide.csv")


def test_an_upload_larger_than_its_kind_allows_is_refused_before_it_is_read(district, client, settings):
    client.force_login(district.users["community_a"])
    settings.UPLOAD_LIMITS = {**settings.UPLOAD_LIMITS, "/pushes/upload/": 1024}
    response = client.post(reverse("pushes:upload"), {"file": io.BytesIO(b"x" * 5000), "source": "s"})
    assert response.status_code == 413 and "上限" in response.content.decode()


def test_a_push_upload_of_a_bomb_fails_with_a_reason_and_keeps_no_file(district):
    from bihuan.pushes.importing import create_batch, process_batch

    batch = create_batch(zip_bomb(60), "bomb.xlsx", source="s", unit=district.community_a,
                         acting_user=district.users["community_a"])
    batch = process_batch(batch)  # left to the worker (it counts millions of rows): the worker's run
    batch.refresh_from_db()
    assert batch.state == "failed" and "压缩" in batch.error and bytes(batch.file_data) == b""


MEMORY_SCRIPT = textwrap.dedent("""
    import os, resource, sys
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bihuan.settings")
    import django; django.setup()
    from bihuan.core.tabular import read_sheets, UnreadableFile
    kind = sys.argv[1]
    if kind == "csv":
        line = "张三,141002198001010011,13800000000,北京市朝阳区某某街道某某小区一号楼\\n".encode()
        data = line * (int(sys.argv[2]) * 1024 * 1024 // len(line))
    else:
        from bihuan.core.tests.test_uploads import zip_bomb
        data = zip_bomb(300)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    n = 0
    try:
        for _name, rows in read_sheets(data, "big." + kind):
            for _row in rows:
                n += 1
    except UnreadableFile:
        pass
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(len(data), n, (after - before) // 1024)
""")


@pytest.mark.parametrize(("kind", "size_mb", "bound_mb"), [("csv", 50, 80), ("xlsx", 0, 60)])
def test_reading_a_large_csv_or_a_bomb_keeps_memory_bounded(kind, size_mb, bound_mb):
    """Peak RSS growth while reading (the file's bytes already in memory are not counted): a 50 MB CSV (the
    push upload limit) streams row by row; a 300 MB-unpacked bomb is refused without unpacking."""
    out = subprocess.run([sys.executable, "-c", MEMORY_SCRIPT, kind, str(size_mb)], capture_output=True,
                         text=True, timeout=300, env={**__import__("os").environ, "BIHUAN_DEMO": "1"})
    assert out.returncode == 0, out.stderr[-2000:]
    size, rows, grown_mb = (int(x) for x in out.stdout.split()[-3:])
    assert grown_mb < bound_mb, f"{size} bytes, {rows} rows read: RSS grew by {grown_mb} MB"
