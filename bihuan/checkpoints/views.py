"""Pages of checkpoints (staff), the public self-report page and the household screening link. Views parse,
authorize (``register.access`` and ``actions.access_checkpoint``) and call the actions; nothing else writes.

The registration form is one page that works without script: five person blocks (driver and passengers; blank
ones are ignored), a one-time token against double submission, and receipt codes pulled in with one tap
(``?codes=…``)."""

from __future__ import annotations

import uuid

from django.contrib import messages
from django.db.models import Q
from django.http import Http404, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.safestring import mark_safe
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from bihuan.core import links, ratelimit
from bihuan.core.errors import Refused
from bihuan.core.http import client_address, download, int_param, parse_date, safe_next
from bihuan.core.roles import Perm
from bihuan.policy.places import PROVINCES
from bihuan.policy.rules import areas_in_force
from bihuan.register.access import access_household, scoped, staff_required
from bihuan.register.models import MAX_LEVEL, Household, Unit

from . import actions, exports, selectors
from .models import (
    Campaign,
    ChangeState,
    Checkpoint,
    CheckpointKind,
    HealthCode,
    RegisterChange,
    Registration,
    SelfReport,
    SelfReportStatus,
    Transport,
    VehicleType,
)

BLOCKS = 5  # driver + four passengers on one page; blank blocks are ignored
PERSON_FIELDS = ("name", "id_number", "phone", "origin", "destination", "destination_unit", "temperature",
                 "health_code", "test_hours", "report", "note")
TEST_CHOICES = [("24", _("24 小时内")), ("48", _("48 小时内")), ("72", _("72 小时内")), ("", _("无"))]
REPORT_PURPOSE = "bihuan-selfreport"
SCREEN_PURPOSE = "bihuan-screening"
# The self-report page's own flood guard (core.ratelimit, beside the public pages' general limits): per client
# address (shared by the self-report, its receipt and the screening link) and per phone.
PER_ADDRESS = (20, 3600)  # 20 submissions an hour
PER_PHONE = (3, 86400)  # 3 reports a day
MAX_BODY = 8 * 1024  # bytes: a self-report is a few hundred


# --- staff: checkpoints and registration ----------------------------------------------------------------------

@staff_required(Perm.REGISTER_CHECKPOINT)
def checkpoint_list(request, scope):
    today = timezone.localdate()
    checkpoints = list(scoped(request.user, Checkpoint.objects.select_related("unit")).filter(active=True))
    figures = {r["checkpoint_id"]: r for r in selectors.day_figures(scope.root.path, today)}
    units = []
    if scope.can(Perm.EDIT_REGISTER):
        units = list(scoped(request.user, Unit.objects).filter(level__gte=3, level__lte=5)
                     .order_by("path").values_list("id", "name")[:300])
    return render(request, "checkpoints/list.html", {
        "checkpoints": [(c, figures.get(c.pk)) for c in checkpoints], "kinds": CheckpointKind.choices,
        "units": units, "today": today, "now": timezone.localtime().time()})


@require_POST
@staff_required(Perm.EDIT_REGISTER)
def checkpoint_create(request, scope):
    unit = Unit.objects.filter(pk=int_param(request.POST.get("unit"))).first()
    if unit is None:
        raise Http404("no such unit")
    try:
        actions.do_create_checkpoint(unit=unit, name=request.POST.get("name", ""), kind=request.POST.get("kind", ""),
                                     opens=request.POST.get("opens"), closes=request.POST.get("closes"),
                                     acting_user=request.user)
    except Refused as exc:
        messages.error(request, exc.message)
    return redirect("checkpoints:list")


def _pulled_reports(codes_text: str) -> list[SelfReport]:
    codes = [c.strip().upper() for c in codes_text.replace("，", ",").split(",") if c.strip()][:BLOCKS]
    if not codes:
        return []
    found = {r.code: r for r in SelfReport.objects.filter(code__in=codes, status=SelfReportStatus.REPORTED)}
    return [found[c] for c in codes if c in found]


def _blocks(post=None, reports: list[SelfReport] | None = None) -> list[dict]:
    blocks = []
    reports = list(reports or [])
    for i in range(BLOCKS):
        if post is not None:
            values = {f: post.get(f"p{i}_{f}", "") for f in PERSON_FIELDS}
        else:
            values = {f: "" for f in PERSON_FIELDS} | {"health_code": HealthCode.GREEN}
            values["test_hours"] = "24" if i == 0 else ""
        report = None
        code = (values.get("report") or "").strip().upper()
        if not code and post is None and reports:
            report = reports.pop(0)
            values["report"] = report.code
        elif code:
            report = SelfReport.objects.filter(code=code).first()
        blocks.append({"i": i, "v": values, "report": report, "driver": i == 0})
    return blocks


def _posted_people(post) -> list[dict]:
    people = []
    for i in range(BLOCKS):
        p = {f: post.get(f"p{i}_{f}", "") for f in PERSON_FIELDS}
        if not p["test_hours"] and i:
            p["test_hours"] = None  # blank: as the driver's
        people.append(p)
    return people


@staff_required(Perm.REGISTER_CHECKPOINT)
def register(request, checkpoint_id: int, scope):
    checkpoint = actions.access_checkpoint(request.user, checkpoint_id)
    error = None
    if request.method == "POST":
        try:
            registration, _created = actions.do_register(
                checkpoint, token=request.POST.get("token", ""), vehicle_type=request.POST.get("vehicle_type", ""),
                plate=request.POST.get("plate", ""), people=_posted_people(request.POST), acting_user=request.user)
        except Refused as exc:
            error = exc
        else:
            return redirect(reverse("checkpoints:register", args=[checkpoint.pk]) + f"?done={registration.pk}")
    done = None
    if request.GET.get("done"):
        done = (Registration.objects.filter(pk=int_param(request.GET["done"]), checkpoint=checkpoint)
                .prefetch_related("travellers").first())
    reports = _pulled_reports(request.GET.get("codes", "")) if request.method == "GET" else []
    post = request.POST if error else None
    return render(request, "checkpoints/register.html", {
        "checkpoint": checkpoint, "done": done, "error": error, "blocks": _blocks(post, reports),
        "token": request.POST.get("token") if error else uuid.uuid4().hex,
        "vehicle_type": (post or {}).get("vehicle_type", "car"), "plate": (post or {}).get("plate", ""),
        "vehicle_types": VehicleType.choices, "codes": HealthCode.choices, "tests": TEST_CHOICES,
        "risk_areas": _risk_names(), "provinces": PROVINCES, "codes_text": request.GET.get("codes", ""),
        "pulled": reports, "is_open": checkpoint.is_open_at(timezone.localtime().time()),
        "on_duty": actions.on_duty(checkpoint)})


def _risk_names() -> list[tuple[str, str]]:
    labels = {"high": "高风险", "medium": "中风险", "low": "低风险"}
    return [(a.name, labels.get(a.level, a.level)) for a in areas_in_force(timezone.localdate())[:500]]


@staff_required(Perm.REGISTER_CHECKPOINT)
def registrations(request, checkpoint_id: int, scope):
    checkpoint = actions.access_checkpoint(request.user, checkpoint_id)
    day = timezone.localdate()
    rows = selectors.registrations_of(checkpoint, day)
    return render(request, "checkpoints/registrations.html", {"checkpoint": checkpoint, "rows": rows, "day": day})


@staff_required(Perm.REGISTER_CHECKPOINT)
def destinations(request, scope):
    """Destinations as people type them: units of the district by name, then the register's addresses (flats,
    never who lives there) from two characters on (JSON for the datalist)."""
    q = request.GET.get("q", "").strip()[:30]
    if len(q) < 1:
        return JsonResponse({"results": []})
    units = list(Unit.objects.filter(Q(name__contains=q) | Q(aliases__contains=q), level__gte=3)
                 .order_by("level", "path").values("id", "name", "level")[:10])
    if len(q) >= 2:
        homes = Household.objects.filter(address__contains=q).order_by("path", "address").values_list(
            "unit_id", "address")[:10]
        units += [{"id": unit_id, "name": address, "level": MAX_LEVEL + 1} for unit_id, address in homes]
    return JsonResponse({"results": units})


@staff_required(Perm.REGISTER_CHECKPOINT)
def day_report(request, scope):
    day = timezone.localdate()
    if request.GET.get("day"):
        day = parse_date(request.GET["day"])
        if day is None:
            raise Http404("bad day")
    rows = selectors.day_figures(scope.root.path, day)
    return render(request, "checkpoints/report.html", {"rows": rows, "day": day,
                                                       "self_reports": selectors.self_report_states(scope, day)})


# --- the public self-report page --------------------------------------------------------------------------------

def _flooded(request) -> int:
    """Count one submission to the self-report and screening pages from this client address (core.ratelimit, on
    top of the limits every public page has). Returns 0 while within the limit, else the seconds to wait."""
    return ratelimit.hit("report.addr", client_address(request), limit=PER_ADDRESS[0], window=PER_ADDRESS[1])


def _too_many(request, wait: int) -> HttpResponse:
    response = render(request, "checkpoints/too_many.html", status=429)
    response["Retry-After"] = str(wait)
    return response


def self_report(request):
    """报备: public, no login. Throttled per client address and per phone; a honeypot field; size-limited."""
    if request.method not in ("GET", "POST"):
        return HttpResponse(status=405)
    if request.method == "POST":
        if int(request.META.get("CONTENT_LENGTH") or 0) > MAX_BODY:
            return HttpResponse(_("提交内容过长"), status=413, content_type="text/plain; charset=utf-8")
        if wait := _flooded(request):
            return _too_many(request, wait)
        if request.POST.get("website"):  # the honeypot: people never see it, robots fill it
            return render(request, "checkpoints/self_report.html", {"sent": True, "v": {}, "today": None,
                                                                    "transports": Transport.choices})
        phone = request.POST.get("phone", "").strip()
        if phone and (wait := ratelimit.hit("report.phone", phone[-11:], limit=PER_PHONE[0], window=PER_PHONE[1])):
            return _too_many(request, wait)
        try:
            report = actions.do_submit_self_report(request.POST)
        except Refused as exc:
            return render(request, "checkpoints/self_report.html", {
                "error": exc, "v": request.POST, "transports": Transport.choices, "today": timezone.localdate()},
                status=400)
        return redirect("self_report_receipt", links.token_for(REPORT_PURPOSE, report.pk))
    return render(request, "checkpoints/self_report.html", {"v": {}, "transports": Transport.choices,
                                                            "today": timezone.localdate()})


def _qr(text: str) -> str:
    import qrcode
    from qrcode.image.svg import SvgPathImage

    return mark_safe(qrcode.make(text, image_factory=SvgPathImage, border=1).to_string(encoding="unicode"))  # noqa: S308


def self_report_receipt(request, token: str):
    """The receipt: code and QR to show at the checkpoint; change or cancel (the signed link is the key)."""
    report_id = links.id_from(REPORT_PURPOSE, token)
    report = SelfReport.objects.filter(pk=report_id).first() if report_id else None
    if report is None:
        raise Http404("no such receipt")
    error = None
    if request.method == "POST":
        if wait := _flooded(request):
            return _too_many(request, wait)
        try:
            if request.POST.get("cancel"):
                actions.do_cancel_self_report(report)
            else:
                actions.do_update_self_report(report, request.POST)
        except Refused as exc:
            error = exc
        else:
            return redirect("self_report_receipt", token)
    return render(request, "checkpoints/receipt.html", {
        "report": report, "qr": _qr(report.code), "error": error, "transports": Transport.choices,
        "companions": "\n".join(f"{c['name']} {c.get('relation', '')}".strip() for c in report.companions)})


# --- screening campaigns ----------------------------------------------------------------------------------------

@staff_required(Perm.MARK_REACH)
def campaigns(request, scope):
    if request.method == "POST":
        since = parse_date(request.POST.get("since", ""))
        if since is None:
            messages.error(request, _("请选择返乡起始日期"))
            return redirect("checkpoints:campaigns")
        try:
            campaign = actions.do_start_campaign(title=request.POST.get("title", ""), since=since,
                                                 acting_user=request.user)
        except Refused as exc:
            messages.error(request, exc.message)
            return redirect("checkpoints:campaigns")
        return redirect("checkpoints:campaign", campaign.pk)
    items = selectors.visible_campaigns(request.user)
    return render(request, "checkpoints/campaigns.html", {
        "campaigns": items, "can_start": scope.can(Perm.ISSUE_DIRECTIVE), "today": timezone.localdate()})


@staff_required(Perm.MARK_REACH)
def campaign(request, campaign_id: int, scope):
    c = selectors.campaign_for(request.user, campaign_id)
    rows, totals = selectors.campaign_rollup(c, scope.root)
    households = selectors.campaign_households(c, request.user, limit=300)
    changes = list(RegisterChange.objects.filter(path__gte=scope.root.path, answer__campaign=c,
                                                 state=ChangeState.PROPOSED)
                   .filter(path__startswith=scope.root.path).select_related("household")[:100])
    return render(request, "checkpoints/campaign.html", {"c": c, "rows": rows, "totals": totals,
                                                         "households": households, "changes": changes,
                                                         "can_decide": scope.can(Perm.EDIT_REGISTER)})


@staff_required(Perm.MARK_REACH)
def screen(request, campaign_id: int, household_id: int, scope):
    c = selectors.campaign_for(request.user, campaign_id)
    household = access_household(request.user, household_id)
    answer = c.answers.filter(household=household).first()
    error = None
    if request.method == "POST":
        try:
            actions.do_answer_screening(c, household, request.POST, acting_user=request.user)
        except Refused as exc:
            error = exc
        else:
            messages.success(request, _("已保存：%(address)s") % {"address": household.address})
            return redirect(reverse("checkpoints:campaign", args=[c.pk]) + "#households")
    return render(request, "checkpoints/screen.html", {"c": c, "household": household, "answer": answer,
                                                       "error": error, "v": request.POST if error else None,
                                                       "slots": range(3), **_member_fields(household)})


def screen_link(request, token: str):
    """The household link (no login): the resident answers the screening form for their own household."""
    from bihuan.directives.models import Reach

    reach_id = links.id_from(SCREEN_PURPOSE, token)
    reach = Reach.objects.select_related("household", "directive").filter(pk=reach_id).first() if reach_id else None
    c = Campaign.objects.filter(directive_id=reach.directive_id).select_related("directive").first() if reach else None
    if c is None:
        raise Http404("no such link")
    household = reach.household
    error, saved = None, False
    if request.method == "POST":
        if wait := _flooded(request):
            return _too_many(request, wait)
        try:
            actions.do_answer_screening(c, household, request.POST)
            saved = True
        except Refused as exc:
            error = exc
    return render(request, "checkpoints/screen.html", {
        "c": c, "household": household, "answer": c.answers.filter(household=household).first(), "error": error,
        "public": True, "saved": saved, "v": request.POST if error else None, "slots": range(3),
        **_member_fields(household)})


def _member_fields(household) -> dict:
    """The household's members (to mark who left) and the slots for people moving in."""
    from bihuan.register.models import ACTIVE_STATUSES, Relation, Resident

    return {"members": list(Resident.objects.filter(household=household, status__in=ACTIVE_STATUSES)
                            .order_by("id").only("id", "name", "relation")[:30]),
            "leaving": [(s.value, s.label) for s in actions.LEAVING], "member_slots": range(actions.MEMBER_SLOTS),
            "relations": Relation.choices}


def screen_path(reach_id: int) -> str:
    return reverse("screen_link", args=[links.token_for(SCREEN_PURPOSE, reach_id)])


@staff_required(Perm.MARK_REACH)
def campaign_xlsx(request, campaign_id: int, scope):
    c = selectors.campaign_for(request.user, campaign_id)
    data, n = exports.ledger_xlsx(c, scope.root)
    return download(data, f"排查台账-{c.directive.title}.xlsx", acting_user=request.user,
                    audit_action="campaign.export", target=c, changes={"rows": n, "unit": scope.root.pk})


@require_POST
@staff_required(Perm.EDIT_REGISTER)
def decide_change(request, change_id: int, scope):
    change = RegisterChange.objects.filter(pk=change_id).first()
    if change is None or not change.path.startswith(scope.root.path):
        raise Http404("no such change")
    actions.do_decide_register_change(change, confirm=request.POST.get("confirm") == "1", acting_user=request.user,
                                      note=request.POST.get("note", ""))
    return redirect(safe_next(request, "checkpoints:campaigns"))

