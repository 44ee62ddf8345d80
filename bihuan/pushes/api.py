"""/api/v1/pushes: for the big-data centre's system (大数据中心) and any other client — upload a pushed list,
read a batch's reconciliation and per-row results, read back verification results, and the daily report.

Every read is scoped through ``bihuan.register.access`` (``scoped`` / ``access_unit`` / ``scope_of``). As in the
other routers, the object is looked up before the permission is checked: an outsider gets 404 and learns
nothing; an insider whose role lacks the permission gets 403. A refused upload is a 400 whose ``field`` names
what was wrong.

- Batches (upload, list, reconciliation, rows, Excel report) need ``import_push``; a batch belongs to the unit
  it was uploaded for, and is seen by that unit and the units above it.
- Verification results need ``verify_push``; they show masked ID numbers and phones only.
- The daily report (JSON and Excel) needs ``view_register``: it holds counts, never a person.

Lists run a fixed number of queries whatever the page size.
"""

from __future__ import annotations

import datetime as dt

from django.core.exceptions import PermissionDenied
from django.db.models import Q
from django.http import HttpRequest
from django.utils import timezone
from ninja import Field, File, Form, Query, Router, Schema
from ninja.files import UploadedFile

from bihuan.core.api_errors import ErrorOut
from bihuan.core.http import ApiDay, ApiMoment, download
from bihuan.core.roles import Perm
from bihuan.register.access import access_unit, require, scope_of, scoped
from bihuan.register.api import PageParams, UnitRef
from bihuan.register.models import Unit, UnitKind, subtree_q

from . import report, selectors
from .access import access_batch, visible_batches
from .models import Measure, Outcome, PushBatch, PushedPerson, PushRow, RowResult

router = Router(tags=["pushes"])

MAX_UPLOAD_BYTES = 50 * 1024 * 1024
MAX_REPORT_DAYS = 366
SEALED = ("id_sealed", "id_hash", "phone_sealed", "phone_hash")
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"  # for the schema
XLSX_RESPONSE = {"responses": {200: {"description": "Excel workbook",
                                       "content": {XLSX: {"schema": {"type": "string", "format": "binary"}}}}}}


# ---------------------------------------------------------------------------------------------- schemas


class RejectionOut(Schema):
    reason: str
    field: str
    rows: int


class BatchOut(Schema):
    id: int
    source: str
    file_name: str
    unit: UnitRef
    uploaded_at: dt.datetime
    state: str = Field(description="pending, running, done or failed")
    rows_total: int
    rows_done: int
    percent: int = Field(description="rows done of rows total (progress of a large file)")
    imported: int
    merged: int = Field(description="rows that joined a person already pushed (duplicates)")
    rejected: int
    reconciled: bool = Field(description="rows_total = imported + merged + rejected (once done)")
    error: str


class BatchDetail(BatchOut):
    rejections: list[RejectionOut] = Field(description="rejected rows by reason")


class BatchPage(Schema):
    total: int
    limit: int
    offset: int
    items: list[BatchOut]


class RowOut(Schema):
    row_number: int = Field(description="the row number the spreadsheet shows")
    result: str = Field(description="imported, merged or rejected")
    reason: str
    field: str
    person_id: int | None
    values: dict = Field(description="the row as read, ID numbers and phones masked")


class RowPage(Schema):
    batch_id: int
    total: int
    limit: int
    offset: int
    items: list[RowOut]


class PersonOut(Schema):
    id: int
    name: str
    id_masked: str
    phone_masked: str
    origin: str
    via: str
    arrival_date: dt.date | None
    first_pushed_at: dt.datetime
    last_pushed_at: dt.datetime
    times_pushed: int
    sources: list[str]
    unit: UnitRef | None = Field(description="the unit handling the person now")
    in_queue: bool = Field(description="in the command office's manual-dispatch queue")
    route_method: str
    route_reason: str
    outcome: str
    outcome_label: str
    measure: str = Field(description="the measure staff confirmed (empty until then)")
    recommended_measure: str
    recommendation_basis: str
    override_reason: str
    verified_at: dt.datetime | None


class PersonPage(Schema):
    total: int
    limit: int
    offset: int
    items: list[PersonOut]


class PushCountsOut(Schema):
    pushed: int
    routed: dict[str, int] = Field(description="pushed people by how they were routed: resident, address, "
                                               "manual (dispatched from the queue), transfer")
    routed_total: int
    unrouted: int = Field(description="still in the manual-dispatch queue (counted at the command office)")
    verified: int
    overdue: int = Field(description="verification loops open past their deadline at the end of the period")
    transferred_out: int
    transferred_in: int
    accepted: int
    returned: int
    ping_pong: int
    outcomes: dict[str, int]
    measures: dict[str, int]
    extra: dict[str, int] = Field({}, description="figures other apps add (卡口, 报备, 排查: cp_*, sr_*, sc_*)")


class ReportRow(UnitRef):
    parent_id: int | None
    own: bool = Field(description="the root unit's own records (not its children's), when it holds any")
    counts: PushCountsOut


class ReportOut(Schema):
    unit: UnitRef
    start: dt.date
    end: dt.date
    as_of: dt.datetime = Field(description="when the snapshot figures (overdue) were taken")
    title: str
    to_level: int
    totals: PushCountsOut
    total: int
    limit: int
    offset: int
    items: list[ReportRow] = Field(description="the units below, tree order, down to to_level")


# ---------------------------------------------------------------------------------------------- helpers


def _user(request: HttpRequest):
    return request.auth  # type: ignore[attr-defined]


def _unit_ref(u) -> dict:
    return {"id": u.id, "name": u.name, "level": u.level, "kind": u.kind, "path": u.path}


def _refused(field: str, message: str):
    return 400, {"detail": f"{field}: {message}", "field": field}


def _batch(request: HttpRequest, id: int) -> PushBatch:
    """The batch if its unit is in the caller's part of the district (else 404), then the permission (403)."""
    return access_batch(_user(request), id)


def _batch_out(b: PushBatch) -> dict:
    return {
        "id": b.id, "source": b.source, "file_name": b.file_name, "unit": _unit_ref(b.unit),
        "uploaded_at": b.uploaded_at, "state": b.state, "rows_total": b.rows_total, "rows_done": b.rows_done,
        "imported": b.imported, "merged": b.merged, "rejected": b.rejected, "error": b.error,
        **{k: v for k, v in selectors.batch_progress(b).items() if k != "polling"},
    }


def _batch_detail(b: PushBatch) -> dict:
    return {**_batch_out(b), "rejections": [{"reason": r["reason"], "field": r["field"], "rows": r["n"]}
                                            for r in selectors.rejections(b)]}


def _person_out(p: PushedPerson) -> dict:
    ver = getattr(p, "verification", None)
    outcome = ver.outcome if ver else Outcome.VERIFYING
    return {
        "id": p.id, "name": p.name, "id_masked": p.id_masked, "phone_masked": p.phone_masked, "origin": p.origin,
        "via": p.via, "arrival_date": p.arrival_date, "first_pushed_at": p.first_pushed_at,
        "last_pushed_at": p.last_pushed_at, "times_pushed": p.times_pushed,
        "sources": [s for s in p.sources.split("|") if s],
        "unit": _unit_ref(p.unit) if p.unit else None,
        "in_queue": p.unit is None or p.unit.kind == UnitKind.COMMAND_OFFICE,
        "route_method": p.route_method, "route_reason": p.route_reason,
        "outcome": outcome, "outcome_label": str(Outcome(outcome).label) if outcome in Outcome.values else outcome,
        "measure": ver.measure if ver else "", "recommended_measure": ver.recommended_measure if ver else "",
        "recommendation_basis": ver.recommendation_basis if ver else "",
        "override_reason": ver.override_reason if ver else "", "verified_at": ver.verified_at if ver else None,
    }


def _period(day: dt.date | None, start: dt.date | None, end: dt.date | None) -> tuple[dt.date, dt.date]:
    if start is not None or end is not None:
        start = start or end
        end = end or start
    else:
        start = end = day or timezone.localdate()
    if end < start:
        raise ValueError("end: 结束日期早于开始日期 (the end is before the start)")
    if (end - start).days >= MAX_REPORT_DAYS:
        raise ValueError(f"end: 最多 {MAX_REPORT_DAYS} 天 (at most {MAX_REPORT_DAYS} days)")
    return start, end


def _report_unit(request: HttpRequest, unit: int | None) -> Unit:
    user = _user(request)
    target = access_unit(user, unit) if unit is not None else None  # outsiders: 404 first
    scope = require(user, Perm.VIEW_REGISTER)
    return target or scope.root


# ---------------------------------------------------------------------------------------------- batches


@router.post("/batches", response={201: BatchDetail, 503: ErrorOut})
def upload_batch(request: HttpRequest, file: File[UploadedFile], source: Form[str],
                 unit: Form[int] = None):
    """Upload a pushed list (.xlsx, .xls or .csv in UTF-8, GBK or GB18030) for ``unit`` (default: your own
    unit) from ``source`` (推送来源, e.g. 省大数据中心). A small file is imported at once (the answer holds its
    reconciliation); a large one is queued for the worker — poll ``GET /pushes/batches/{id}``. The same file
    for the same unit and source again returns the batch already there and changes nothing."""
    user = _user(request)
    target = access_unit(user, unit) if unit is not None else None  # outsiders: 404 before anything else
    scope = require(user, Perm.IMPORT_PUSH)
    target = target or scope.unit
    if file.size is not None and file.size > MAX_UPLOAD_BYTES:
        return _refused("file", f"文件超过 {MAX_UPLOAD_BYTES // 1024 // 1024} MB (the file is too large)")
    try:
        from . import importing
    except ImportError:  # the import pipeline is not installed in this build
        return 503, {"detail": "the push-list import is not available"}
    data = file.read()
    try:
        batch = importing.create_batch(data, file.name or "upload", source=source, unit=target, acting_user=user)
    except PermissionDenied:
        raise
    except ValueError as exc:
        message = str(exc)
        field = message.split(":", 1)[0].strip() if ":" in message else "file"
        return 400, {"detail": message, "field": field}
    batch = visible_batches(user).get(pk=batch.pk)
    return 201, _batch_detail(batch)


@router.get("/batches", response={200: BatchPage})
def list_batches(request: HttpRequest, page: Query[PageParams], unit: int | None = None,
                 state: str | None = None):
    """Uploaded lists of ``unit``'s subtree (default: your part of the district), newest first."""
    user = _user(request)
    within = access_unit(user, unit) if unit is not None else None
    require(user, Perm.IMPORT_PUSH)
    qs = visible_batches(user).defer("column_mapping").order_by("-uploaded_at", "-id")
    if within is not None:
        qs = qs.filter(subtree_q(within.path, "unit__path"))
    if state:
        qs = qs.filter(state=state)
    total = qs.count()
    rows = list(qs[page.offset: page.offset + page.limit])
    return {"total": total, "limit": page.limit, "offset": page.offset, "items": [_batch_out(b) for b in rows]}


@router.get("/batches/{id}", response={200: BatchDetail})
def batch_detail(request: HttpRequest, id: int):
    """A batch's progress and reconciliation: rows = imported + merged + rejected, and the rejections by reason."""
    return _batch_detail(_batch(request, id))


@router.get("/batches/{id}/rows", response={200: RowPage})
def batch_rows(request: HttpRequest, id: int, page: Query[PageParams], result: RowResult | None = None):
    """Every row's result (imported, merged or rejected with the reason and the column), in file order, with
    the row as read (masked)."""
    batch = _batch(request, id)
    qs = PushRow.objects.filter(batch=batch).order_by("row_number")
    if result is not None:
        qs = qs.filter(result=result.value)
    total = qs.count()
    root = scope_of(_user(request)).root.path
    rows = qs.values_list("row_number", "result", "reason", "field", "person_id", "person__path", "masked")[
        page.offset: page.offset + page.limit]
    # a row that joined a record outside the caller's part of the district does not name it (no existence oracle)
    return {"batch_id": batch.pk, "total": total, "limit": page.limit, "offset": page.offset,
            "items": [{"row_number": n, "result": r, "reason": reason, "field": f,
                       "person_id": pid if (path or "").startswith(root) else None, "values": m}
                      for n, r, reason, f, pid, path, m in rows]}


@router.get("/batches/{id}/report.xlsx", response={200: None}, openapi_extra=XLSX_RESPONSE)
def batch_report(request: HttpRequest, id: int):
    """The batch's reconciliation and every row's result as an Excel workbook (audited: it names people)."""
    batch = _batch(request, id)
    from . import importing

    user = _user(request)
    data = importing.batch_report_xlsx(PushBatch.objects.select_related("unit").get(pk=batch.pk))
    return download(data, f"push-batch-{batch.pk}.xlsx", acting_user=user, audit_action="push.report",
                    target=batch, changes={"rows": batch.rows_total, "unit": require(user, Perm.IMPORT_PUSH).unit.pk})


# ---------------------------------------------------------------------------------------------- results


@router.get("/people", response={200: PersonPage})
def list_people(request: HttpRequest, page: Query[PageParams], batch: int | None = None, unit: int | None = None,
                pushed_on: ApiDay | None = None, verified_on: ApiDay | None = None,
                verified_since: ApiMoment | None = None, outcome: Outcome | None = None,
                measure: Measure | None = None):
    """Verification results, masked: who was pushed, which unit handles them, the outcome and measure and when
    they were verified. Filter by ``batch`` (everyone a row of that list named, merged duplicates included),
    ``unit`` (its subtree), ``pushed_on`` / ``verified_on`` (local dates), ``verified_since`` (for incremental
    reads), ``outcome`` and ``measure``. Ordered by id."""
    user = _user(request)
    in_batch = access_batch(user, batch, perm=None) if batch is not None else None
    within = access_unit(user, unit) if unit is not None else None
    require(user, Perm.VERIFY_PUSH)
    qs = scoped(user, PushedPerson.objects.select_related("unit", "verification").defer(*SEALED))
    if within is not None:
        qs = qs.filter(subtree_q(within.path))
    if in_batch is not None:
        qs = qs.filter(pk__in=PushRow.objects.filter(batch=in_batch, person__isnull=False).values("person_id"))
    if pushed_on is not None:
        low, high = report.day_bounds(pushed_on)
        qs = qs.filter(first_pushed_at__gte=low, first_pushed_at__lt=high)
    if verified_on is not None:
        low, high = report.day_bounds(verified_on)
        qs = qs.filter(verification__verified_at__gte=low, verification__verified_at__lt=high)
    if verified_since is not None:
        qs = qs.filter(verification__verified_at__gte=verified_since)
    if outcome == Outcome.VERIFYING:  # no verification row yet counts as still verifying
        qs = qs.filter(Q(verification__outcome=outcome.value) | Q(verification__isnull=True))
    elif outcome is not None:
        qs = qs.filter(verification__outcome=outcome.value)
    if measure is not None:
        qs = qs.filter(verification__measure=measure.value)
    qs = qs.order_by("id")
    total = qs.count()
    rows = list(qs[page.offset: page.offset + page.limit])
    return {"total": total, "limit": page.limit, "offset": page.offset, "items": [_person_out(p) for p in rows]}


# ---------------------------------------------------------------------------------------------- the report


def _report_args(request: HttpRequest, unit: int | None, day: dt.date | None, start: dt.date | None,
                 end: dt.date | None, to_level: int | None):
    """``((unit, first day, last day, depth), refusal)``: the refusal (400, naming the field) if any."""
    root = _report_unit(request, unit)
    try:
        first, last = _period(day, start, end)
    except ValueError as exc:
        return (root, None, None, None), _refused("end", str(exc).split(": ", 1)[1])
    depth = to_level or report.default_depth(root)
    if not root.level <= depth <= 6:
        return (root, first, last, None), _refused("to_level", f"应在 {root.level}–6 之间 (must be from {root.level} to 6)")
    return (root, first, last, depth), None


@router.get("/report", response={200: ReportOut})
def daily_report(request: HttpRequest, page: Query[PageParams], unit: int | None = None, day: ApiDay | None = None,
                 start: ApiDay | None = None, end: ApiDay | None = None, to_level: int | None = Query(None, ge=1, le=6)):
    """The daily report (日报) of ``unit`` (default: the top of your part) for ``day`` (default today) or the
    days ``start`` … ``end``: totals, and every unit below down to ``to_level`` (default: villages and
    communities for the district and townships, one level below further down) in tree order."""
    (root, first, last, depth), refusal = _report_args(request, unit, day, start, end, to_level)
    if refusal:
        return refusal
    now = timezone.now()
    units, own, totals = report.collect(root, first, last, now=now)
    rows = report.report_rows(units, own, totals, root.id, depth)
    shown = rows[page.offset: page.offset + page.limit]
    return 200, {
        "unit": _unit_ref(root), "start": first, "end": last, "as_of": report.as_of(last, now),
        "title": report.report_title(root, first, last), "to_level": depth,
        "totals": totals[root.id].as_dict(), "total": len(rows), "limit": page.limit, "offset": page.offset,
        "items": [{**_unit_ref(u), "parent_id": u.parent_id, "own": is_own, "counts": c.as_dict()}
                  for u, c, is_own in shown],
    }


@router.get("/report.xlsx", response={200: None}, openapi_extra=XLSX_RESPONSE)
def daily_report_xlsx(request: HttpRequest, unit: int | None = None, day: ApiDay | None = None,
                      start: ApiDay | None = None, end: ApiDay | None = None, to_level: int | None = Query(None, ge=1, le=6)):
    """The daily report as a conventional 日报 workbook: title row, header groups 推送 / 核查 / 转办 / 核查结果 /
    管控措施, units indented by level, a totals row."""
    (root, first, last, depth), refusal = _report_args(request, unit, day, start, end, to_level)
    if refusal:
        return refusal
    return download(report.report_workbook(root, first, last, to_level=depth),
                    f"push-report-{root.code}-{first:%Y%m%d}.xlsx", acting_user=_user(request),
                    audit_action="push.daily_report.export", target=root,
                    changes={"start": first.isoformat(), "end": last.isoformat(), "to_level": depth})
