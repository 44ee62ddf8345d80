"""Upload pages of pushed lists: the batches of one's part of the district, the two-step upload (preview the
column mapping, then import), a batch's reconciliation with a polled progress bar, and its Excel report.

The upload does not keep the file between the two steps (no session, no temporary file): step 1 reads the
posted file with ``importing.preview_file`` and writes nothing; step 2 posts the same file again with the
mapping staff chose (and its SHA-256 from step 1, so a different file is previewed rather than imported) and
calls ``importing.create_batch(..., mapping=chosen)``. ``create_batch`` imports small files at once and leaves
large ones to the ``pushes.process`` worker; the batch page polls its progress. Views parse, authorize through
``register.access`` and call the actions; nothing else writes.
"""

from __future__ import annotations

import hashlib

from django.contrib import messages
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _

from bihuan.core.http import download, int_param, is_htmx
from bihuan.core.roles import Perm
from bihuan.core.tabular import UnreadableFile, cell_text, is_blank, read_sheets
from bihuan.register.access import access_unit, staff_required

from . import selectors
from .access import access_batch, visible_batches
from .headers import FIELDS, IGNORE, save_mapping
from .importing import Preview, batch_report_xlsx, create_batch, preview_file
from .models import BatchState, PushBatch, SourceMapping

EXTENSIONS = (".xlsx", ".xls", ".csv")
MAX_UPLOAD_BYTES = 50 * 1024 * 1024
REQUIRED = ("name",)  # without a name column every row would be rejected
LIST_LIMIT = 200  # batches on the list page
REASON_LIMIT = 30  # rejection reasons shown on the batch page
ROW_NUMBERS_SHOWN = 20  # row numbers shown per reason (the Excel report has them all)
SOURCES_OFFERED = 50
RUNNING = selectors.RUNNING


def is_blank_row(values) -> bool:
    return all(is_blank(v) for v in values)


def _batches(request):
    return visible_batches(request.user).select_related("uploaded_by__staff")


def _progress_context(batch: PushBatch) -> dict:
    return {"batch": batch, **selectors.batch_progress(batch)}


# --- the list ---------------------------------------------------------------------------------------------

@staff_required(Perm.IMPORT_PUSH)
def batches(request, scope):
    """The uploaded lists of the user's part of the district, newest first."""
    rows = list(_batches(request).order_by("-uploaded_at", "-pk")[:LIST_LIMIT])
    return render(request, "pushes/batches.html", {"batches": rows, "limit": LIST_LIMIT})


# --- the upload -------------------------------------------------------------------------------------------

def _sources(request, unit) -> list[str]:
    used = set(_batches(request).values_list("source", flat=True).distinct()[:SOURCES_OFFERED])
    used |= set(SourceMapping.objects.filter(unit=unit).values_list("source", flat=True)[:SOURCES_OFFERED])
    return sorted(used)


def _posted_mapping(post) -> tuple[dict[str, str], list[str]]:
    """The mapping chosen on step 2 (``col-N`` header, ``field-N`` field) and errors."""
    mapping: dict[str, str] = {}
    errors: list[str] = []
    count = min(int_param(post.get("columns") or 0, low=0), 500)
    for i in range(count):
        header = (post.get(f"col-{i}") or "").strip()
        field = post.get(f"field-{i}", IGNORE)
        if not header:
            continue
        if field not in FIELDS and field != IGNORE:
            errors.append(_("第 %(n)s 列：没有这个字段") % {"n": i + 1})
            continue
        mapping[header] = field
    given = [f for f in mapping.values() if f]
    for field in sorted({f for f in given if given.count(f) > 1}):
        errors.append(_("“%(field)s”只能对应一列") % {"field": FIELDS[field]})
    return mapping, errors


def _first_row(data: bytes, file_name: str) -> Preview | None:
    """A preview taking the first non-blank row as the header row, every column ignored (for a file whose header
    row is not recognised); None if the file cannot be read at all."""
    try:
        for sheet, rows in read_sheets(data, file_name):
            header_row, headers, count = 0, [], 0
            for number, values in rows:
                if is_blank_row(values):
                    continue
                if not headers:
                    texts = [cell_text(v)[:100] for v in values]
                    headers = list(dict.fromkeys(t for t in texts if t.strip()))
                    header_row = number
                else:
                    count += 1
            if headers:
                return Preview(sheet, header_row, dict.fromkeys(headers, IGNORE), headers, count, list(FIELDS))
    except UnreadableFile:
        return None
    return None


def _columns(mapping: dict[str, str]) -> list[dict]:
    return [{"index": i, "header": h, "field": f} for i, (h, f) in enumerate(mapping.items())]


@staff_required(Perm.IMPORT_PUSH)
def upload(request, scope):
    """Step 1 (POST a file and a source): preview how its columns are read, write nothing. Step 2 (``confirm``:
    the same file again with the chosen mapping): import it, optionally saving the mapping for the source."""
    unit = access_unit(request.user, int_param(request.POST.get("unit") or request.GET.get("unit") or scope.unit.id))
    context = {"unit": unit, "sources": _sources(request, unit), "fields": FIELDS, "required": REQUIRED,
               "extensions": ",".join(EXTENSIONS), "source": "", "errors": []}
    if request.method != "POST":
        return render(request, "pushes/upload.html", context)

    source = (request.POST.get("source") or "").strip()
    upload_file = request.FILES.get("file")
    context["source"] = source
    errors = context["errors"]
    if not source:
        errors.append(_("请填写推送来源"))
    if upload_file is None:
        errors.append(_("请选择文件"))
    elif not upload_file.name.lower().endswith(EXTENSIONS):
        errors.append(_("只能上传 .xlsx、.xls 或 .csv 文件"))
    elif upload_file.size > MAX_UPLOAD_BYTES:
        errors.append(_("文件超过 %(mb)s MB") % {"mb": MAX_UPLOAD_BYTES // 1024 // 1024})
    if errors:
        return render(request, "pushes/upload.html", context, status=400)

    data = upload_file.read()
    sha = hashlib.sha256(data).hexdigest()
    confirm = request.POST.get("confirm") == "1" and request.POST.get("sha256") == sha
    chosen, mapping_errors = _posted_mapping(request.POST) if confirm else ({}, [])
    header_found = True
    try:
        preview = preview_file(data, upload_file.name, unit=unit, source=source,
                               mapping=chosen if confirm else None)
    except UnreadableFile as exc:
        errors.append(str(exc))
        preview = _first_row(data, upload_file.name)  # no header recognised: let staff map the first row
        if preview is None:
            return render(request, "pushes/upload.html", context, status=400)
        header_found = False
    given = {f for f in preview.mapping.values() if f}
    missing_required = [f for f in REQUIRED if f not in given]
    existing = (_batches(request).filter(unit=unit, source=source, file_sha256=sha)
                .exclude(state=BatchState.FAILED).first())

    if confirm and header_found and not mapping_errors and not missing_required:
        if request.POST.get("save_mapping") == "1":
            save_mapping(unit, source, chosen, request.user)
            messages.success(request, _("已保存该来源的列映射"))
        batch = create_batch(data, upload_file.name, source=source, unit=unit, acting_user=request.user,
                             mapping=chosen)
        if existing is not None and existing.pk == batch.pk:
            messages.info(request, _("这个文件已经导入过，没有任何更改"))
        elif batch.state in RUNNING:
            messages.info(request, _("文件较大，正在后台导入"))
        return redirect("pushes:batch", batch.pk)

    errors.extend(mapping_errors)
    for field in missing_required:
        errors.append(_("缺少必填列：%(field)s") % {"field": FIELDS[field]})
    context.update(preview=preview, columns=_columns(preview.mapping), sha256=sha, file_name=upload_file.name,
                   missing_required=[FIELDS[f] for f in missing_required], existing=existing,
                   missing=[FIELDS[f] for f in preview.missing if f not in REQUIRED])
    return render(request, "pushes/upload.html", context, status=400 if confirm else 200)


# --- a batch ----------------------------------------------------------------------------------------------

def _rejections(batch: PushBatch) -> list[dict]:
    reasons = selectors.rejections(batch, limit=REASON_LIMIT)
    for r in reasons:
        r["rows"] = selectors.rejected_row_numbers(batch, r["reason"], r["field"], ROW_NUMBERS_SHOWN)
        r["more"] = r["n"] - len(r["rows"])
        r["field_label"] = FIELDS.get(r["field"], r["field"])
    return reasons


@staff_required(Perm.IMPORT_PUSH)
def batch_detail(request, batch_id: int, scope):
    batch = access_batch(request.user, batch_id)
    context = _progress_context(batch)
    context["rejections"] = _rejections(batch) if batch.state == BatchState.DONE else []
    context["reason_limit"] = REASON_LIMIT
    context["id_to_fix"] = (selectors.id_to_fix_rows(batch, limit=200, within=scope.root.path)
                            if batch.state == BatchState.DONE else [])
    return render(request, "pushes/batch.html", context)


@staff_required(Perm.IMPORT_PUSH)
def batch_progress(request, batch_id: int, scope):
    """The progress bar, polled by HTMX every 2 s while the batch is pending or running; then the page reloads
    with the reconciliation."""
    batch = access_batch(request.user, batch_id)
    response = render(request, "pushes/_batch_progress.html", _progress_context(batch))
    if batch.state not in RUNNING and is_htmx(request):
        response["HX-Refresh"] = "true"
    return response


@staff_required(Perm.IMPORT_PUSH)
def batch_report(request, batch_id: int, scope):
    """The Excel report: totals and every row's result and reason (audited: it names people)."""
    batch = access_batch(request.user, batch_id)
    return download(batch_report_xlsx(batch), f"push-batch-{batch.pk}-report.xlsx", acting_user=request.user,
                    audit_action="push.report", target=batch, changes={"rows": batch.rows_total, "unit": scope.unit.pk})

