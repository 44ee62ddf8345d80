"""Upload pages of pushed lists: every page in an access matrix, a messy corpus file uploaded end to end through
the two steps (the totals shown reconcile), the same file twice changes nothing, a saved mapping is used for
the next file of the source, the progress fragment polls while the batch runs, and the report downloads."""

from __future__ import annotations

import io
from types import SimpleNamespace

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils import timezone
from openpyxl import load_workbook

from bihuan.core.models import AuditEntry
from bihuan.core.roles import Perm
from bihuan.pushes import upload_views
from bihuan.pushes.importing import create_batch
from bihuan.pushes.models import BatchState, PushBatch, PushedPerson, PushRow, SourceMapping
from bihuan.testing import HX, assert_route_access

from .corpus import BUILDERS, simple_csv


@pytest.fixture
def today():
    return timezone.localdate()


@pytest.fixture
def ctx(district, tmp_path):
    """A batch of branch A (community A), imported."""
    d = district
    path = simple_csv(tmp_path / "branch-a.csv", [{"姓名": "王建国", "手机号": "13812345678", "现住址": "锦悦小区"}])
    batch = create_batch(path.read_bytes(), path.name, source="省大数据中心", unit=d.community_a,
                         acting_user=d.users["community_a"])
    return SimpleNamespace(d=d, batch=batch)


# route name -> (method, url, data, permission, expected status when allowed, kind) — see testing.assert_route_access
ROUTES = {
    "pushes:batches": ("get", lambda c: reverse("pushes:batches"), None, Perm.IMPORT_PUSH, 200, "unscoped"),
    "pushes:upload": ("get", lambda c: reverse("pushes:upload") + f"?unit={c.d.community_a.id}", None,
                      Perm.IMPORT_PUSH, 200, "scoped"),
    "pushes:batch": ("get", lambda c: reverse("pushes:batch", args=[c.batch.id]), None, Perm.IMPORT_PUSH, 200,
                     "scoped"),
    "pushes:batch_progress": ("get", lambda c: reverse("pushes:batch_progress", args=[c.batch.id]), None,
                              Perm.IMPORT_PUSH, 200, "scoped"),
    "pushes:batch_report": ("get", lambda c: reverse("pushes:batch_report", args=[c.batch.id]), None,
                            Perm.IMPORT_PUSH, 200, "scoped"),
}


def test_every_upload_page_is_in_the_matrix():
    from bihuan.pushes import urls

    names = {f"pushes:{p.name}" for p in urls.urlpatterns
             if getattr(p.callback, "__module__", "") == upload_views.__name__}
    assert names == set(ROUTES)


@pytest.mark.parametrize("route", sorted(ROUTES))
def test_insiders_see_branch_a_and_outsiders_get_404(client, ctx, route):
    assert_route_access(client, ctx, route, ROUTES[route], secrets=("branch-a.csv", "省大数据中心"))


def test_pages_need_a_login(client, ctx):
    for route, (_m, url_of, *_rest) in ROUTES.items():
        response = client.get(url_of(ctx))
        assert response.status_code == 302 and "/login/" in response["Location"], route


def test_the_list_shows_only_batches_of_ones_part_of_the_district(client, ctx, tmp_path):
    d = ctx.d
    path = simple_csv(tmp_path / "branch-b.csv", [{"姓名": "赵桂兰", "手机号": "13912345678"}])
    other = create_batch(path.read_bytes(), path.name, source="市平台", unit=d.village_b,
                         acting_user=d.users["village_b"])
    client.force_login(d.users["community_a"])
    page = client.get(reverse("pushes:batches")).content.decode()
    assert f'data-testid="batch-{ctx.batch.id}"' in page and f'data-testid="batch-{other.id}"' not in page
    assert "1 = 1 + 0 + 0" in page
    client.force_login(d.users["office"])
    page = client.get(reverse("pushes:batches")).content.decode()
    assert f'data-testid="batch-{ctx.batch.id}"' in page and f'data-testid="batch-{other.id}"' in page


# --- the upload, end to end ---------------------------------------------------------------------------------

def _file(corpus_file) -> SimpleUploadedFile:
    return SimpleUploadedFile(corpus_file.path.name, corpus_file.data)


def _step1(client, corpus_file, source=None):
    return client.post(reverse("pushes:upload"), {"source": source or corpus_file.source, "file": _file(corpus_file)})


def _confirm(client, step1, corpus_file, *, source=None, change=None, save=False):
    """Post the step-2 form as the page built it (the chosen fields, with ``change`` {header: field}), with the
    file again."""
    preview = step1.context
    data = {"confirm": "1", "sha256": preview["sha256"], "source": source or corpus_file.source,
            "columns": len(preview["columns"]), "unit": preview["unit"].id, "file": _file(corpus_file)}
    for c in preview["columns"]:
        data[f"col-{c['index']}"] = c["header"]
        data[f"field-{c['index']}"] = (change or {}).get(c["header"], c["field"])
    if save:
        data["save_mapping"] = "1"
    return client.post(reverse("pushes:upload"), data)


@pytest.mark.parametrize("kind", ["gbk_csv", "xlsx"])
def test_a_corpus_file_uploads_through_the_two_steps_and_the_totals_reconcile(client, district, tmp_path, today,
                                                                              kind):
    d = district
    corpus_file = BUILDERS[kind](tmp_path, today)
    client.force_login(d.users["community_a"])
    page = client.get(reverse("pushes:upload")).content.decode()
    assert 'data-testid="upload-form"' in page
    step1 = _step1(client, corpus_file)
    assert step1.status_code == 200
    assert not PushBatch.objects.exists()  # the preview writes nothing
    page = step1.content.decode()
    assert 'data-testid="mapping"' in page and "保存为该来源的列映射" in page
    fields = {c["header"]: c["field"] for c in step1.context["columns"]}
    assert "name" in fields.values() and "id_number" in fields.values()

    response = _confirm(client, step1, corpus_file)
    batch = PushBatch.objects.get()
    assert response.status_code == 302 and response["Location"] == reverse("pushes:batch", args=[batch.id])
    assert batch.state == BatchState.DONE and batch.unit == d.community_a
    assert (batch.rows_total, batch.imported, batch.merged, batch.rejected) == (
        corpus_file.rows, corpus_file.count("imported"), corpus_file.count("merged"), corpus_file.count("rejected"))
    page = client.get(response["Location"])
    html = page.content.decode()
    t, i, m, r = batch.rows_total, batch.imported, batch.merged, batch.rejected
    assert f'data-testid="rows-total">{t}<' in html and f'data-testid="imported">{i}<' in html
    assert f'data-testid="merged">{m}<' in html and f'data-testid="rejected">{r}<' in html
    assert f"{t} = {i} + {m} + {r}" in html and "账目平衡" in html
    shown = sum(g["n"] for g in page.context["rejections"])
    assert shown == r
    rejected_rows = sorted(n for n, e in corpus_file.expect.items() if e.result == "rejected")
    assert sorted(n for g in page.context["rejections"] for n in g["rows"]) == rejected_rows
    assert 'hx-trigger="every 2s"' not in html  # done: no polling
    for secret in corpus_file.secrets:
        assert secret not in html


def test_the_same_file_twice_shows_the_same_batch_and_changes_nothing(client, district, tmp_path, today):
    d = district
    corpus_file = BUILDERS["gbk_csv"](tmp_path, today)
    client.force_login(d.users["community_a"])
    first = _confirm(client, _step1(client, corpus_file), corpus_file)
    people, rows, audits = PushedPerson.objects.count(), PushRow.objects.count(), AuditEntry.objects.count()
    step1 = _step1(client, corpus_file)
    assert step1.context["existing"].id == PushBatch.objects.get().id
    assert 'data-testid="already"' in step1.content.decode()
    again = _confirm(client, step1, corpus_file)
    assert again["Location"] == first["Location"]
    assert PushBatch.objects.count() == 1
    assert (PushedPerson.objects.count(), PushRow.objects.count(), AuditEntry.objects.count()) == (
        people, rows, audits)
    page = client.get(again["Location"]).content.decode()
    assert "这个文件已经导入过，没有任何更改" in page


def test_a_saved_mapping_is_used_for_the_next_file_of_the_source(client, district, tmp_path):
    d = district
    header = ["人员", "证件", "联系", "备注"]  # nothing recognisable as a name
    rows = [{"人员": "王建国", "证件": "", "联系": "13812345678", "备注": "x"}]
    first = SimpleNamespace(path=simple_csv(tmp_path / "a.csv", rows, header=header), source="某县平台")
    first.data = first.path.read_bytes()
    client.force_login(d.users["community_a"])
    step1 = _step1(client, first)
    assert step1.status_code == 200
    # no header recognised: the first row is offered with every column ignored, the name column highlighted
    html = step1.content.decode()
    assert "找不到表头行" in html and 'data-testid="missing-required"' in html
    assert [c["header"] for c in step1.context["columns"]] == header
    refused = _confirm(client, step1, first)  # confirming without a name column is refused
    assert refused.status_code == 400 and not PushBatch.objects.exists()
    change = {"人员": "name", "证件": "", "联系": "phone", "备注": ""}
    response = _confirm(client, step1, first, change=change, save=True)
    assert response.status_code == 302
    saved = SourceMapping.objects.get(unit=d.community_a, source="某县平台").mapping
    assert saved == change
    assert AuditEntry.objects.filter(action="push.mapping.save").exists()
    batch = PushBatch.objects.get()
    assert batch.imported == 1 and batch.column_mapping["人员"] == "name"

    rows2 = [{"人员": "李秀英", "证件": "", "联系": "13912345678", "备注": "y"}]
    second = SimpleNamespace(path=simple_csv(tmp_path / "b.csv", rows2, header=header), source="某县平台")
    second.data = second.path.read_bytes()
    step1 = _step1(client, second)
    assert {c["header"]: c["field"] for c in step1.context["columns"]} == change
    assert not step1.context["missing_required"]
    assert "某县平台" in step1.context["sources"]
    _confirm(client, step1, second)
    assert PushBatch.objects.get(file_name="b.csv").imported == 1


def test_a_different_file_at_confirm_is_previewed_not_imported(client, district, tmp_path, today):
    d = district
    gbk, xlsx = BUILDERS["gbk_csv"](tmp_path, today), BUILDERS["xlsx"](tmp_path, today)
    client.force_login(d.users["community_a"])
    step1 = _step1(client, gbk)
    data = {"confirm": "1", "sha256": step1.context["sha256"], "source": gbk.source, "columns": 0,
            "file": _file(xlsx)}
    response = client.post(reverse("pushes:upload"), data)
    assert response.status_code == 200 and response.context["preview"] and not PushBatch.objects.exists()


def test_bad_uploads_say_why(client, district):
    client.force_login(district.users["community_a"])
    url = reverse("pushes:upload")
    response = client.post(url, {"source": "", "file": SimpleUploadedFile("a.txt", b"x")})
    assert response.status_code == 400
    assert "请填写推送来源" in response.content.decode() and "只能上传" in response.content.decode()
    response = client.post(url, {"source": "省平台", "file": SimpleUploadedFile("a.csv", "甲,乙\n1,2\n".encode())})
    assert response.status_code == 200 and "找不到表头行" in response.content.decode()
    assert [c["header"] for c in response.context["columns"]] == ["甲", "乙"]  # to be mapped by hand
    response = client.post(url, {"source": "省平台", "file": SimpleUploadedFile("a.csv", b"")})
    assert response.status_code == 400 and "文件是空的" in response.content.decode()
    assert not PushBatch.objects.exists()


def test_the_upload_refuses_a_unit_outside_ones_part(client, district, tmp_path, today):
    d = district
    corpus_file = BUILDERS["gbk_csv"](tmp_path, today)
    client.force_login(d.users["community_a"])
    response = client.post(reverse("pushes:upload"), {"source": "x", "unit": d.village_b.id,
                                                      "file": _file(corpus_file)})
    assert response.status_code == 404 and not PushBatch.objects.exists()


# --- progress and report ------------------------------------------------------------------------------------

def test_the_progress_fragment_polls_while_running_and_refreshes_when_done(client, ctx):
    d, batch = ctx.d, ctx.batch
    PushBatch.objects.filter(pk=batch.pk).update(state=BatchState.RUNNING, rows_total=4000, rows_done=1000)
    client.force_login(d.users["community_a"])
    url = reverse("pushes:batch_progress", args=[batch.id])
    response = client.get(url, **HX)
    html = response.content.decode()
    assert response.status_code == 200 and "HX-Refresh" not in response
    assert 'hx-trigger="every 2s"' in html and "1000 / 4000" in html and 'aria-valuenow="25"' in html
    page = client.get(reverse("pushes:batch", args=[batch.id])).content.decode()
    assert f'hx-get="{url}"' in page
    PushBatch.objects.filter(pk=batch.pk).update(state=BatchState.DONE, rows_done=4000)
    response = client.get(url, **HX)
    assert response["HX-Refresh"] == "true" and 'hx-trigger' not in response.content.decode()


def test_the_report_downloads_and_is_audited(client, ctx):
    d, batch = ctx.d, ctx.batch
    client.force_login(d.users["township_a"])
    response = client.get(reverse("pushes:batch_report", args=[batch.id]))
    assert response.status_code == 200 and response["Content-Type"].startswith("application/vnd.openxml")
    book = load_workbook(io.BytesIO(response.content))
    totals = {row[0]: row[1] for row in book["汇总"].iter_rows(values_only=True)}
    assert totals["总行数"] == 1 and totals["核对"].startswith("总行数 =")
    assert AuditEntry.objects.filter(action="push.report", actor=d.users["township_a"]).count() == 1
