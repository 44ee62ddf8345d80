"""Pages of the field force. Staff pages scope through ``forces.access`` / ``register.access``; the public pages
(a poster's report-in form, a helper's own page, a notice) work through signed links with no login and no script.
"""

from __future__ import annotations

import datetime as dt

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.db.models import Count, Q
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.safestring import mark_safe
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from bihuan.core import reveal
from bihuan.core.errors import Refused
from bihuan.core.http import download, int_param, is_htmx, parse_date, said, whole
from bihuan.core.roles import Perm
from bihuan.loops.models import OPEN_STATES, Loop
from bihuan.register.access import access_unit, staff_required
from bihuan.register.models import Unit, subtree_q

from . import actions, exports, links, roster, selectors
from .access import (
    MANAGE,
    RECORD,
    VIEW,
    access_helper,
    access_notice,
    access_place,
    access_post,
    access_swap,
    access_task,
    access_team,
    home_helpers,
    may_act_on,
)
from .certificate import certificate_pdf
from .models import (
    REPORT_IN,
    TASK,
    DisinfectionLog,
    GroupCode,
    Helper,
    HelperKind,
    HelperStatus,
    Notice,
    NoticeView,
    Place,
    PlaceKind,
    Post,
    PostKind,
    Shift,
    ShiftSwap,
    SwapState,
    Task,
    TaskKind,
    Team,
)
from .upload import RowError


def qr_svg(url: str) -> str:
    import qrcode
    from qrcode.image.svg import SvgPathImage

    return mark_safe(qrcode.make(url, image_factory=SvgPathImage, border=1).to_string(encoding="unicode"))  # noqa: S308


def _unit(request, scope):
    unit_id = request.GET.get("unit")
    return access_unit(request.user, int_param(unit_id)) if unit_id else scope.unit


# --- staff pages ----------------------------------------------------------------------------------------------

@staff_required(VIEW)
def home(request, scope):
    """The field force of a unit, live: its figures and those of each unit below, report-ins waiting."""
    unit = _unit(request, scope)
    units, totals = roster.rollup(unit)
    children = [(u, totals[u.id]) for u in units if u.parent_id == unit.pk]
    pending = list(Helper.objects.filter(unit.subtree(), status=HelperStatus.PENDING)
                   .select_related("unit", "home_unit").order_by("reported_at")[:100])
    tasks = list(Task.objects.filter(unit.subtree()).select_related("helper", "team").order_by("-created_at")[:20])
    task_loops = {lp.subject_id: lp for lp in Loop.objects.filter(kind=TASK, subject_id__in=[t.pk for t in tasks])}
    for t in tasks:
        t.loop = task_loops.get(t.pk)
    return render(request, "forces/home.html", {
        "unit": unit, "f": totals[unit.pk], "children": children, "pending": pending, "tasks": tasks,
        "can_manage": scope.can(MANAGE), "join_url": links.absolute(links.join_path(unit.pk), request)
        if unit.level == 4 else "",
        "posts": Post.objects.filter(unit.subtree(), active=True).select_related("unit")[:200],
        "overdue_places": roster.overdue_places(unit, limit=50),
        "swaps": list(ShiftSwap.objects.filter(unit.subtree(), state=SwapState.ACCEPTED)
                      .select_related("shift__post", "from_helper", "to_helper").order_by("shift__starts_at")[:50]),
        "group_units": _group_units(unit) if scope.can(MANAGE) else [],
    })


def _group_units(unit: Unit) -> list[Unit]:
    """The compounds, villager groups and grids under a community (or the unit itself, below it) whose WeCom /
    WeChat group QR code may be uploaded, each with its code if it has one."""
    if unit.level < 4:
        return []
    units = list(Unit.objects.filter(unit.subtree(), level__gte=5).order_by("path")[:100])
    codes = {g.unit_id: g for g in GroupCode.objects.filter(unit__in=units)}
    for u in units:
        u.group_code = codes.get(u.pk)
    return units


@staff_required(VIEW)
def helpers(request, scope):
    """Helpers of the unit's subtree (masked), with hours served this week; ``?home=1``: the cadres whose home
    organisation is here, wherever they serve (双报到)."""
    unit = _unit(request, scope)
    home = request.GET.get("home") == "1"
    qs = (home_helpers(request.user).filter(unit.subtree() if unit != scope.root else Q(), home_path__gte=unit.path)
          if home else Helper.objects.filter(unit.subtree()))
    rows = list(qs.select_related("unit", "home_unit").order_by("path", "name")[:500])
    since = timezone.make_aware(dt.datetime.combine(roster.monday_of(timezone.localdate()), dt.time()))
    served = dict(roster.served_seconds(since, timezone.now(), None if home else unit.path))
    for h in rows:
        h.hours = round(served.get(h.pk, 0) / 3600, 1)
    return render(request, "forces/helpers.html", {"unit": unit, "rows": rows, "home": home,
                                                   "can_manage": scope.can(MANAGE),
                                                   "can_reveal": scope.can(Perm.REVEAL_PERSONAL)})


@staff_required(MANAGE)
@require_POST
def decide(request, helper_id, scope):
    helper = access_helper(request.user, helper_id, MANAGE)
    said(request, lambda: actions.do_decide_report_in(helper, approve=request.POST.get("approve") == "1",
                                                      acting_user=request.user, note=request.POST.get("note", "")),
         _("已处理：%(name)s") % {"name": helper.name})
    return redirect(_local_next(request, reverse("forces:home")))


@staff_required(MANAGE)
@require_POST
def helper_status(request, helper_id, scope):
    """Pause, resume or let go of an approved helper (暂停 / 在岗 / 已离开)."""
    helper = access_helper(request.user, helper_id, MANAGE)
    said(request, lambda: actions.do_set_helper_status(helper, request.POST.get("status", ""), acting_user=request.user),
         _("已处理：%(name)s") % {"name": helper.name})
    return redirect(reverse("forces:helpers") + f"?unit={helper.unit_id}")


@staff_required(Perm.REVEAL_PERSONAL)
@require_POST
def helper_reveal(request, helper_id, scope):
    """A helper's full phone and ID number, as a resident's (``core.reveal``): a reason from the short list or free
    text, throttled per user, audited. A refusal comes back in place of the values, with its message."""
    helper = access_helper(request.user, helper_id, Perm.REVEAL_PERSONAL)  # outsiders: 404 before anything else
    try:
        reason = reveal.reason_of(request.POST.get("reason", ""), request.POST.get("reason_text", ""))
        values = actions.do_reveal_helper(helper, acting_user=request.user, reason=reason)
    except Refused as exc:
        return render(request, "register/_reveal_refused.html", {"message": exc.message})
    return render(request, "register/_revealed.html", values)


@staff_required(VIEW)
def poster(request, unit_id, scope):
    """The A4 report-in poster of a village or community: its QR code and a few lines."""
    unit = access_unit(request.user, unit_id)
    if unit.level != 4:
        raise Http404("posters are per village or community")
    url = links.absolute(links.join_path(unit.pk), request)
    return render(request, "forces/poster.html", {"unit": unit, "url": url, "qr": qr_svg(url)})


@staff_required(VIEW)
def post_roster(request, post_id, scope):
    """One post's week: hours short (red), the shifts, and (for managers) assigning a helper."""
    post = access_post(request.user, post_id)
    monday = roster.monday_of(timezone.localdate())
    if request.GET.get("week") == "next":
        monday += dt.timedelta(days=7)
    if request.method == "POST":
        if not scope.can(MANAGE):
            raise PermissionError
        try:
            day = parse_date(request.POST.get("date", ""))
            if day is None:
                raise ValueError("not a date")
            start, end = int_param(request.POST.get("start"), low=0, high=23), int_param(request.POST.get("end"),
                                                                                          low=1, high=24)
            base = timezone.make_aware(dt.datetime.combine(day, dt.time()))
            helper = access_helper(request.user, int_param(request.POST.get("helper")))
            actions.do_assign_shift(post, helper=helper, starts_at=base + dt.timedelta(hours=start),
                                    ends_at=base + dt.timedelta(hours=end), acting_user=request.user)
            messages.success(request, _("已排班：%(name)s") % {"name": helper.name})
        except (ValueError, Http404) as exc:
            messages.error(request, exc.message if isinstance(exc, Refused) else _("请填写日期、时段和人员"))
        return redirect(request.get_full_path())
    grid = roster.post_week_grid(post, monday)
    choices = Helper.objects.filter(path__startswith=post.path[:16], status=HelperStatus.ACTIVE).order_by("name")[:300]
    swaps = list(ShiftSwap.objects.filter(shift__post=post, state__in=(SwapState.REQUESTED, SwapState.ACCEPTED))
                 .select_related("shift", "from_helper", "to_helper").order_by("shift__starts_at"))
    return render(request, "forces/roster.html", {"post": post, "monday": monday, "grid": grid, "swaps": swaps,
                                                  "helpers": choices, "can_manage": scope.can(MANAGE),
                                                  "kinds": PostKind.choices})


@staff_required(VIEW)
def places(request, scope):
    """Disinfection places (消杀点位) of the unit's subtree and the latest jobs; ``?overdue=1``: the overdue ones
    (blind spots; the board's figure). Managers register a place."""
    unit = _unit(request, scope)
    error = ""
    if request.method == "POST":
        if not scope.can(MANAGE):
            raise PermissionDenied
        try:
            place = actions.do_create_place(_form_unit(request, unit), **_place_fields(request),
                                            acting_user=request.user)
            messages.success(request, _("已添加点位：%(name)s") % {"name": place.name})
            if not is_htmx(request):
                return redirect(reverse("forces:places") + f"?unit={unit.pk}")
        except Refused as exc:
            error = exc.message
    qs = Place.objects.filter(unit.subtree(), active=True).select_related("unit")
    overdue = request.GET.get("overdue") == "1"
    if overdue:
        qs = qs.filter(pk__in=selectors.places_overdue(unit))
    rows = list(qs[:500])
    now = timezone.now()
    for p in rows:
        p.overdue = p.is_overdue(now)
    logs = DisinfectionLog.objects.filter(unit.subtree()).select_related("place").order_by("-at")[:50]
    return _page_or_fragment(request, "forces/places.html", "forces/_places.html", {
        "unit": unit, "rows": rows, "logs": logs, "overdue": overdue, "error": error,
        "can_manage": scope.can(MANAGE), "can_record": scope.can(RECORD), "units": _units_below(unit),
        "kinds": PlaceKind.choices})


def _next(unit: Unit) -> str:
    from bihuan.register.models import next_path

    return next_path(unit.path)


@staff_required(VIEW)
def disinfection_export(request, scope):
    """The disinfection log as the usual 消杀记录表 (Excel), audited."""
    unit = _unit(request, scope)
    days = int_param(request.GET.get("days", "7"), low=1, high=92)
    data = exports.disinfection_workbook(unit, since=timezone.now() - dt.timedelta(days=days))
    return download(data, f"消杀记录表-{unit.name}-{timezone.localdate():%Y%m%d}.xlsx", acting_user=request.user,
                    audit_action="forces.disinfection.export", target=unit, changes={"days": days})


@staff_required(VIEW)
def certificate(request, helper_id, scope):
    """The volunteer-service certificate (志愿服务证明) of a helper, as a PDF with hours served."""
    helper = access_helper(request.user, helper_id)
    return download(certificate_pdf(helper), f"志愿服务证明-{helper.name}.pdf", content_type="application/pdf",
                    acting_user=request.user, audit_action="forces.certificate", target=helper, inline=True)


@staff_required(VIEW)
def notices(request, scope):
    unit = _unit(request, scope)
    if request.method == "POST":
        try:
            notice = actions.do_publish_notice(unit, title=request.POST.get("title", ""),
                                               body=request.POST.get("body", ""), acting_user=request.user)
            return redirect("forces:notice_sheets", notice_id=notice.pk)
        except Refused as exc:
            messages.error(request, exc.message)
    rows = list(Notice.objects.filter(Q(path__gte=unit.path, path__lt=_next(unit)) | Q(path__in=unit.ancestor_paths()))
                .annotate(reads=Count("views__count")).order_by("-published_at")[:50])
    reads = dict(NoticeView.objects.filter(notice__in=rows).values("notice_id").annotate(n=Count("id"))
                 .values_list("notice_id", "n"))
    for n in rows:
        n.buildings = reads.get(n.pk, 0)
    return render(request, "forces/notices.html", {"unit": unit, "rows": rows, "can_manage": scope.can(MANAGE)})


@staff_required(VIEW)
def notice_sheets(request, notice_id, scope):
    """Printable per-building QR sheets of a notice: the notice, its QR (counted per building), the compound's
    or grid's group QR image and the self-report link when there is one."""
    notice = access_notice(request.user, notice_id) if Notice.objects.filter(
        pk=notice_id, path__gte=scope.root.path).exists() else _inherited_notice(request.user, notice_id, scope)
    unit = _unit(request, scope)
    from bihuan.register.models import Household

    homes = Household.objects.filter(unit.subtree()).exclude(building="")
    buildings = list(homes.values_list("unit__parent_id", "unit__parent__name", "building").distinct()
                     .order_by("unit__parent__name", "building")[:200])
    grids: dict[tuple, set] = {}
    for compound_id, building, grid_id in homes.values_list("unit__parent_id", "building", "unit_id").distinct():
        grids.setdefault((compound_id, building), set()).add(grid_id)
    codes = {g.unit_id: g for g in GroupCode.objects.filter(unit__path__gte=unit.path, unit__path__lt=_next(unit))}
    sheets = []
    for compound_id, compound_name, building in buildings:
        url = links.absolute(links.notice_path(notice.pk, compound_id, building), request)
        # The building's group: its grid's (when one grid holds it and has a code), else the compound's.
        own = [codes[g] for g in sorted(grids.get((compound_id, building), ())) if g in codes]
        sheets.append({"compound": compound_name, "building": building, "qr": qr_svg(url), "url": url,
                       "group": own[0] if len(grids.get((compound_id, building), ())) == 1 and own
                       else codes.get(compound_id)})
    views = {(v.unit_id, v.building): v.count for v in NoticeView.objects.filter(notice=notice)}
    for s, (cid, _n, b) in zip(sheets, buildings, strict=True):
        s["reads"] = views.get((cid, b), 0)
    return render(request, "forces/notice_sheets.html", {"notice": notice, "unit": unit, "sheets": sheets})


def _inherited_notice(user, notice_id, scope):
    """A notice of a unit above the user's (the district's) that reaches their subtree."""
    notice = Notice.objects.filter(pk=notice_id, path__in=scope.root.ancestor_paths()).first()
    if notice is None:
        raise Http404("no such notice")
    return notice


@staff_required(MANAGE)
@require_POST
def group_code(request, unit_id, scope):
    unit = access_unit(request.user, unit_id)
    image = request.FILES.get("image")
    try:
        if image is None:
            raise actions.ForcesError("image", _("请上传群二维码图片（JPEG、PNG）"))
        actions.do_upload_group_code(unit, image, acting_user=request.user)
        messages.success(request, _("群二维码已上传：%(name)s") % {"name": unit.name})
    except Refused as exc:
        messages.error(request, exc.message)
    return redirect(_local_next(request, reverse("forces:home") + f"?unit={unit.pk}"))


@staff_required(RECORD)
@require_POST
def tap(request, shift_id, scope):
    """Staff tap a helper on or off duty (the helper's own page does it through their link)."""
    from .access import access_shift

    shift = access_shift(request.user, shift_id, RECORD)
    said(request, lambda: actions.do_tap_duty(shift, on=request.POST.get("on") == "1", acting_user=request.user))
    return redirect(reverse("forces:roster", args=[shift.post_id]))


@staff_required(RECORD)
@require_POST
def log_disinfection(request, place_id, scope):
    place = access_place(request.user, place_id, RECORD)
    try:
        actions.do_log_disinfection(place, agent=request.POST.get("agent", ""),
                                    concentration=request.POST.get("concentration", ""),
                                    area_m2=int_param(request.POST.get("area_m2") or "0", low=0, high=10_000_000),
                                    photo=request.FILES.get("photo"), note=request.POST.get("note", ""),
                                    done_by=request.POST.get("done_by", ""), acting_user=request.user)
        messages.success(request, _("消杀记录已保存"))
    except (Refused, ValueError) as exc:
        messages.error(request, getattr(exc, "message", str(exc)))
    return redirect(reverse("forces:places") + f"?unit={place.unit_id}")


def mine(request):
    """A helper with a login: their own page (the same as their signed link)."""
    if not request.user.is_authenticated:
        from django.contrib.auth.views import redirect_to_login

        return redirect_to_login(request.get_full_path())
    helper = Helper.objects.filter(user=request.user).first()
    if helper is None:
        raise Http404("this account is not a helper")
    return redirect(links.helper_path(helper.pk))


# --- public pages (no login, no script) ---------------------------------------------------------------------

def join(request, token):
    """A poster's report-in form: name, phone, (ID number), kind, organisation. A receipt link on success."""
    unit = Unit.objects.filter(pk=links.id_from(links.JOIN, token), level=4).first()
    if unit is None:
        raise Http404("no such link")
    homes = list(Unit.objects.filter(Q(kind="department") | Q(level=3)).order_by("level", "path")
                 .values_list("id", "name"))
    error = field = ""
    data = request.POST if request.method == "POST" else {}
    if request.method == "POST":
        home_id = request.POST.get("home_unit") or ""
        home = Unit.objects.filter(pk=whole(home_id), level__lte=3).first() if whole(home_id) else None
        try:
            helper, merged = actions.do_report_in(
                unit, name=request.POST.get("name", ""), phone=request.POST.get("phone", ""),
                id_number=request.POST.get("id_number", ""), kind=request.POST.get("kind", ""), home_unit=home,
                home_org=request.POST.get("home_org", ""), party_member=request.POST.get("party_member") == "1",
                skills=request.POST.get("skills", ""), availability=request.POST.get("availability", ""))
            return redirect(links.helper_path(helper.pk) + ("?merged=1" if merged else "?new=1"))
        except Refused as exc:
            error, field = exc.message, exc.field
    return render(request, "forces/join.html", {"unit": unit, "kinds": HelperKind.choices, "homes": homes,
                                                "error": error, "field": field, "data": data})


def helper_page(request, token):
    """A helper's own page: the receipt of their report-in, then "my duty" — today's and the coming shifts with
    one tap on and off duty, tasks to report, a disinfection job to log with a photo, a certificate."""
    helper = Helper.objects.select_related("unit").filter(pk=links.id_from(links.HELPER, token)).first()
    if helper is None:
        raise Http404("no such link")
    error = ""
    if request.method == "POST":
        action = request.POST.get("action", "")
        try:
            if helper.status != HelperStatus.ACTIVE:
                raise actions.ForcesError("status", _("报到审核通过后才能上岗"))
            if action in ("on", "off"):
                shift = Shift.objects.filter(pk=int_param(request.POST.get("shift")), helper=helper).first()
                if shift is None:
                    raise actions.ForcesError("shift", _("这不是您的班次"))
                actions.do_tap_duty(shift, on=action == "on", helper=helper)
                messages.success(request, _("已上岗，辛苦了！") if action == "on" else _("已下岗，谢谢您！"))
            elif action == "disinfection":
                place = Place.objects.filter(pk=int_param(request.POST.get("place")), active=True).first()
                if place is None:
                    raise actions.ForcesError("place", _("请选择点位"))
                actions.do_log_disinfection(place, agent=request.POST.get("agent", ""),
                                            concentration=request.POST.get("concentration", ""),
                                            area_m2=int_param(request.POST.get("area_m2") or "0", low=0,
                                                              high=10_000_000),
                                            photo=request.FILES.get("photo"), helper=helper)
                messages.success(request, _("消杀记录已保存"))
            elif action == "swap":
                shift = Shift.objects.filter(pk=int_param(request.POST.get("shift")), helper=helper).first()
                other = Helper.objects.filter(pk=int_param(request.POST.get("to_helper"))).first()
                if shift is None or other is None:
                    raise actions.ForcesError("shift", _("请选择班次和替班人"))
                actions.do_request_swap(shift, to_helper=other, helper=helper)
                messages.success(request, _("换班申请已发给 %(name)s") % {"name": other.name})
            elif action in ("swap_yes", "swap_no"):
                swap = ShiftSwap.objects.filter(pk=int_param(request.POST.get("swap")), to_helper=helper).first()
                if swap is None:
                    raise actions.ForcesError("swap", _("该换班请求不需要您处理"))
                actions.do_answer_swap(swap, helper=helper, accept=action == "swap_yes")
                messages.success(request, _("已接受替班，等待社区审批") if action == "swap_yes" else _("已拒绝替班"))
            elif action == "ack":
                task = Task.objects.filter(pk=int_param(request.POST.get("task"))).first()
                if task is None:
                    raise actions.ForcesError("task", _("没有这项任务"))
                actions.do_acknowledge_task(task, helper=helper)
                messages.success(request, _("已签收任务"))
            elif action == "report":
                task = Task.objects.filter(pk=int_param(request.POST.get("task"))).first()
                if task is None:
                    raise actions.ForcesError("task", _("没有这项任务"))
                actions.do_report_task(task, report=request.POST.get("report", ""), photo=request.FILES.get("photo"),
                                       helper=helper)
                messages.success(request, _("已报告完成"))
            return redirect(request.path)
        except (Refused, ValueError) as exc:
            error = getattr(exc, "message", str(exc))
    now = timezone.now()
    shifts = list(Shift.objects.filter(helper=helper, ends_at__gt=now - dt.timedelta(hours=12))
                  .select_related("post").order_by("starts_at")[:14])
    for s in shifts:
        s.can_on = not s.on_at and s.starts_at - dt.timedelta(minutes=30) <= now < s.ends_at
        s.can_off = bool(s.on_at and not s.off_at)
    tasks = list(Task.objects.filter(Q(helper=helper) | Q(team__members=helper)).distinct().order_by("due_at")[:20])
    states = dict(Loop.objects.filter(kind=TASK, subject_id__in=[t.pk for t in tasks], state__in=OPEN_STATES)
                  .exclude(state="reported").values_list("subject_id", "state"))
    from bihuan.register.models import Household

    hh = dict(Household.objects.filter(pk__in={i for t in tasks for i in t.households}).values_list("pk", "address"))
    pl = dict(Place.objects.filter(pk__in={i for t in tasks for i in t.places}).values_list("pk", "name"))
    for t in tasks:
        t.open = t.pk in states
        t.unsigned = states.get(t.pk) == "issued"
        t.target_households = [hh[i] for i in t.households if i in hh]
        t.target_places = [pl[i] for i in t.places if i in pl]
    swaps_in = list(ShiftSwap.objects.filter(to_helper=helper, state=SwapState.REQUESTED)
                    .select_related("shift__post", "from_helper").order_by("shift__starts_at"))
    swaps_out = {w.shift_id: w for w in ShiftSwap.objects.filter(
        from_helper=helper, shift__in=shifts).order_by("id")}
    for s in shifts:
        s.swap = swaps_out.get(s.pk)
        s.can_swap = not s.on_at and s.starts_at > now and (s.swap is None or s.swap.state in (
            SwapState.DECLINED, SwapState.APPROVED))
    colleagues = (Helper.objects.filter(path__startswith=helper.path[:16], status=HelperStatus.ACTIVE)
                  .exclude(pk=helper.pk).order_by("name").values_list("pk", "name")[:200]
                  if any(s.can_swap for s in shifts) else [])
    places = Place.objects.filter(path__startswith=helper.path[:16], active=True).order_by("path", "name")[:200]
    served = roster.seconds_served_by(helper, until=now)
    waiting = Loop.objects.filter(kind=REPORT_IN, subject_id=helper.pk, state__in=OPEN_STATES).exists()
    return render(request, "forces/helper.html", {
        "helper": helper, "shifts": shifts, "tasks": tasks, "places": places, "error": error,
        "swaps_in": swaps_in, "colleagues": colleagues,
        "hours": round(served / 3600, 1), "waiting": waiting, "merged": request.GET.get("merged") == "1",
        "new": request.GET.get("new") == "1", "now": now})


def helper_certificate(request, token):
    helper = Helper.objects.filter(pk=links.id_from(links.HELPER, token), status=HelperStatus.ACTIVE).first()
    if helper is None:
        raise Http404("no such link")
    response = HttpResponse(certificate_pdf(helper), content_type="application/pdf")
    response["Content-Disposition"] = "inline; filename=certificate.pdf"
    return response


def notice_page(request, token):
    """A notice for residents: plain HTML, no login, no script. A building's QR adds one to its counter."""
    notice = Notice.objects.select_related("unit").filter(pk=links.id_from(links.NOTICE, token)).first()
    if notice is None:
        raise Http404("no such link")
    building = links.building_from(request.GET.get("b", ""))
    if building is not None and request.method == "GET":
        actions.count_notice_view(notice, *building)
    return render(request, "forces/notice.html", {"notice": notice})


@staff_required(MANAGE)
@require_POST
def roster_upload(request, scope):
    """A roster sheet (排班表) for the posts under a unit: all rows or none, each bad row with its reason."""
    from .upload import import_roster

    unit = _unit(request, scope)
    upload = request.FILES.get("file")
    if upload is None:
        added, errors = 0, [RowError(0, _("请选择排班表文件（.xlsx、.xls 或 .csv）"))]
    else:
        added, errors = import_roster(unit, upload.read(), upload.name, acting_user=request.user)
    return render(request, "forces/upload.html", {"unit": unit, "added": added, "errors": errors},
                  status=400 if errors else 200)


# --- teams, posts, places, tasks: create and edit (staff) ---------------------------------------------------

def _page_or_fragment(request, template: str, fragment: str, context: dict):
    """The whole page, or (an htmx request) only its list section, which the form replaces."""
    return render(request, fragment if is_htmx(request) else template, context)


def _units_below(unit: Unit, deepest: int = 6) -> list[Unit]:
    """The unit and the units under it (down to ``deepest``), for a form's 'under which unit' choice."""
    return list(Unit.objects.filter(unit.subtree(), level__lte=deepest).order_by("path")[:300])


def _form_unit(request, unit: Unit) -> Unit:
    raw = request.POST.get("unit") or ""
    return access_unit(request.user, int_param(raw)) if raw else unit


def _helpers_in(user, unit: Unit, ids) -> list[Helper]:
    """Helpers by id, each visible to ``user`` (an outsider's id is a 404, never a silent skip)."""
    out = []
    for raw in ids:
        if str(raw).strip():
            out.append(access_helper(user, int_param(raw)))
    return out


def _choices_of(unit: Unit):
    """Active helpers who may join a team or take a task under ``unit``: serving in its reach (its subtree, or a
    compound's community) or belonging to it."""
    return (Helper.objects.filter(subtree_q(actions.reach_path(unit)) | subtree_q(unit.path, "home_path"),
                                  status=HelperStatus.ACTIVE).order_by("path", "name")[:500])


@staff_required(VIEW)
def teams(request, scope):
    """Teams (服务队) of the unit's subtree with their leaders and members; managers form a new one."""
    unit = _unit(request, scope)
    error = ""
    if request.method == "POST":
        if not scope.can(MANAGE):
            raise PermissionDenied
        target = _form_unit(request, unit)
        try:
            leader = _helpers_in(request.user, target, [request.POST.get("leader", "")])
            team = actions.do_create_team(target, name=request.POST.get("name", ""),
                                          purpose=request.POST.get("purpose", ""), leader=leader[0] if leader else None,
                                          members=_helpers_in(request.user, target, request.POST.getlist("members")),
                                          acting_user=request.user)
            messages.success(request, _("已成立服务队：%(name)s") % {"name": team.name})
            if not is_htmx(request):
                return redirect(reverse("forces:teams") + f"?unit={unit.pk}")
        except Refused as exc:
            error = exc.message
    rows = list(Team.objects.filter(unit.subtree()).select_related("unit", "leader")
                .annotate(n=Count("teammember")).order_by("path", "name")[:300])
    return _page_or_fragment(request, "forces/teams.html", "forces/_teams.html", {
        "unit": unit, "rows": rows, "error": error, "can_manage": scope.can(MANAGE), "units": _units_below(unit, 5),
        "helpers": _choices_of(unit) if scope.can(MANAGE) else []})


@staff_required(VIEW)
def team(request, team_id, scope):
    """One team: its leader, members and hours served this month; managers rename it and set its people."""
    team = access_team(request.user, team_id)
    error = ""
    if request.method == "POST":
        team = access_team(request.user, team_id, MANAGE)
        try:
            leader = _helpers_in(request.user, team.unit, [request.POST.get("leader", "")])
            actions.do_update_team(team, name=request.POST.get("name", ""), purpose=request.POST.get("purpose", ""),
                                   leader=leader[0] if leader else None, clear_leader=not leader,
                                   members=_helpers_in(request.user, team.unit, request.POST.getlist("members")),
                                   acting_user=request.user)
            messages.success(request, _("已保存"))
            return redirect("forces:team", team_id=team.pk)
        except Refused as exc:
            error = exc.message
    members = list(team.members.select_related("unit").order_by("name"))
    since = timezone.now() - dt.timedelta(days=30)
    mine = selectors.helper_hours(since, timezone.now(), [h.pk for h in members])
    for h in members:
        h.hours = mine.get(h.pk, 0)
    team.refresh_from_db()
    return render(request, "forces/team.html", {
        "team": team, "members": members, "error": error, "can_manage": may_act_on(request.user, team.path, MANAGE),
        "helpers": _choices_of(team.unit), "member_ids": {h.pk for h in members},
        "hours": round(sum(h.hours for h in members), 2)})


def _post_fields(request) -> dict:
    return {"name": request.POST.get("name", ""), "kind": request.POST.get("kind", ""),
            "start_hour": int_param(request.POST.get("start_hour", "0"), low=0, high=23),
            "end_hour": int_param(request.POST.get("end_hour", "24"), low=1, high=24),
            "required": int_param(request.POST.get("required", "1"), low=1, high=50)}


@staff_required(VIEW)
def posts(request, scope):
    """Posts (岗位) of the unit's subtree; ``?now=gap``: short on the roster this hour, ``?now=short``: fewer on
    duty than required this hour (the situation board's figures). Managers add a post."""
    unit = _unit(request, scope)
    error = ""
    if request.method == "POST":
        if not scope.can(MANAGE):
            raise PermissionDenied
        try:
            post = actions.do_create_post(_form_unit(request, unit), **_post_fields(request), acting_user=request.user)
            messages.success(request, _("已添加岗位：%(name)s") % {"name": post.name})
            if not is_htmx(request):
                return redirect(reverse("forces:posts") + f"?unit={unit.pk}")
        except Refused as exc:
            error = exc.message
    now_filter = request.GET.get("now", "")
    qs = Post.objects.filter(unit.subtree(), active=True).select_related("unit")
    if now_filter in ("gap", "short"):
        qs = qs.filter(pk__in=selectors.posts_short_now(unit, on_duty=now_filter == "short"))
    return _page_or_fragment(request, "forces/posts.html", "forces/_posts.html", {
        "unit": unit, "rows": list(qs.order_by("path", "name")[:500]), "error": error, "now_filter": now_filter,
        "can_manage": scope.can(MANAGE), "units": _units_below(unit), "kinds": PostKind.choices,
        "monday": roster.monday_of(timezone.localdate())})


@staff_required(MANAGE)
@require_POST
def post_edit(request, post_id, scope):
    post = access_post(request.user, post_id, MANAGE)
    said(request, lambda: actions.do_update_post(post, **_post_fields(request), active=request.POST.get("active") == "1",
                                                 acting_user=request.user), _("已保存"))
    return redirect("forces:roster", post_id=post.pk)


@staff_required(MANAGE)
@require_POST
def copy_week(request, scope):
    """Copy last week's roster of every post under the unit to this week (or this week's to the next)."""
    unit = _unit(request, scope)
    monday = roster.monday_of(timezone.localdate())
    source = monday - dt.timedelta(days=7) if request.POST.get("week") != "this" else monday
    said(request, lambda: actions.do_copy_week(unit, from_monday=source, acting_user=request.user),
         lambda added: _("已复制 %(n)s 个班次") % {"n": added})
    return redirect(reverse("forces:posts") + f"?unit={unit.pk}")


def _place_fields(request) -> dict:
    return {"name": request.POST.get("name", ""), "kind": request.POST.get("kind", ""),
            "every_hours": int_param(request.POST.get("every_hours", "24"), low=1, high=24 * 14)}


@staff_required(MANAGE)
@require_POST
def place_edit(request, place_id, scope):
    place = access_place(request.user, place_id, MANAGE)
    said(request, lambda: actions.do_update_place(place, **_place_fields(request),
                                                  active=request.POST.get("active") == "1", acting_user=request.user),
         _("已保存"))
    return redirect(reverse("forces:places") + f"?unit={place.unit_id}")


def _attach_loops(rows: list[Task]) -> None:
    loops = {lp.subject_id: lp for lp in Loop.objects.filter(kind=TASK, subject_id__in=[t.pk for t in rows])}
    now = timezone.now()
    for t in rows:
        t.loop = loops.get(t.pk)
        t.late = bool(t.loop and t.loop.is_open and t.loop.state != "reported" and t.due_at < now)


@staff_required(VIEW)
def tasks(request, scope):
    """Tasks (任务) of the unit's subtree; ``?overdue=1``: past their deadline (the board's figure). Managers give
    a task to a helper or a team, optionally naming households and places."""
    unit = _unit(request, scope)
    error = ""
    if request.method == "POST":
        if not scope.can(MANAGE):
            raise PermissionDenied
        target = _form_unit(request, unit)
        try:
            helper = _helpers_in(request.user, target, [request.POST.get("helper", "")])
            team_id = request.POST.get("team") or ""
            team = access_team(request.user, int_param(team_id)) if team_id else None
            due = _local_datetime(request.POST.get("due_at", ""))
            task = actions.do_create_task(
                target, kind=request.POST.get("kind", ""), title=request.POST.get("title", ""), due_at=due,
                helper=helper[0] if helper else None, team=team, detail=request.POST.get("detail", ""),
                households=[int_param(x) for x in request.POST.getlist("households")],
                places=[int_param(x) for x in request.POST.getlist("places")], acting_user=request.user)
            messages.success(request, _("已派发任务：%(t)s") % {"t": task.title})
            if not is_htmx(request):
                return redirect(reverse("forces:tasks") + f"?unit={unit.pk}")
        except Refused as exc:
            error = exc.message
    qs = Task.objects.filter(unit.subtree()).select_related("unit", "helper", "team")
    overdue = request.GET.get("overdue") == "1"
    if overdue:
        qs = qs.filter(pk__in=selectors.tasks_overdue(unit))
    rows = list(qs.order_by("-created_at")[:300])
    _attach_loops(rows)
    manage = scope.can(MANAGE)
    from bihuan.register.models import Household

    return _page_or_fragment(request, "forces/tasks.html", "forces/_tasks.html", {
        "unit": unit, "rows": rows, "error": error, "overdue": overdue, "can_manage": manage,
        "kinds": TaskKind.choices, "units": _units_below(unit, 5),
        "helpers": _choices_of(unit) if manage else [],
        "teams": Team.objects.filter(unit.subtree()).order_by("name")[:200] if manage else [],
        "places": Place.objects.filter(unit.subtree(), active=True).select_related("unit")[:200] if manage else [],
        "households": (Household.objects.filter(unit.subtree()).order_by("address")[:300]
                       if manage and unit.level >= 5 else [])})


def _local_datetime(raw: str) -> dt.datetime:
    try:
        return timezone.make_aware(dt.datetime.fromisoformat(raw))
    except ValueError:
        raise actions.ForcesError("due_at", _("请填写截止时间")) from None


@staff_required(VIEW)
def task(request, task_id, scope):
    """One task: who, what, its targets (households, places), its loop's state and history, the report and photo;
    the owning unit closes it out."""
    task = access_task(request.user, task_id)
    if request.method == "POST":
        task = access_task(request.user, task_id, MANAGE)
        said(request, lambda: actions.do_close_task(task, acting_user=request.user, note=request.POST.get("note", "")),
             _("已销号"))
        return redirect("forces:task", task_id=task.pk)
    _attach_loops([task])
    events = list(task.loop.events.order_by("at", "id")) if task.loop else []
    return render(request, "forces/task.html", {
        "task": task, "events": events, **task_targets(task),
        "can_manage": may_act_on(request.user, task.path, MANAGE)})


def task_targets(task: Task) -> dict:
    """The households and places a task names, in one query each."""
    from bihuan.register.models import Household

    return {"target_households": list(Household.objects.filter(pk__in=task.households).order_by("address")),
            "target_places": list(Place.objects.filter(pk__in=task.places).select_related("unit").order_by("name"))}


@staff_required(MANAGE)
@require_POST
def swap_decide(request, swap_id, scope):
    swap = access_swap(request.user, swap_id, MANAGE)
    said(request, lambda: actions.do_approve_swap(swap, approve=request.POST.get("approve") == "1",
                                                  acting_user=request.user), _("已处理换班申请"))
    return redirect(_local_next(request, reverse("forces:roster", args=[swap.shift.post_id])))


def _local_next(request, default: str) -> str:
    """Where a form goes back to: a page of this app only (never another site)."""
    nxt = request.POST.get("next", "")
    return nxt if nxt.startswith("/forces/") else default


@staff_required(VIEW)
def hours(request, scope):
    """Hours served, per helper, team, home organisation (双报到) or unit of the posts, over the last days."""
    unit = _unit(request, scope)
    by = request.GET.get("by", "helper")
    if by not in selectors.BY:
        by = "helper"
    days = int_param(request.GET.get("days", "7"), low=1, high=366)
    now = timezone.now()
    rows = selectors.hours_served(now - dt.timedelta(days=days), now, unit, by=by)[:500]
    model = {"helper": Helper, "team": Team, "home": Unit, "unit": Unit}[by]
    names = dict(model.objects.filter(pk__in=[k for k, _h in rows]).values_list("pk", "name"))
    return render(request, "forces/hours.html", {
        "unit": unit, "by": by, "days": days, "rows": [(names.get(k, "—"), h) for k, h in rows],
        "total": round(sum(h for _k, h in rows), 2), "choices": [
            ("helper", _("按人员")), ("team", _("按服务队")), ("home", _("按派出单位")), ("unit", _("按岗位所在单位"))]})
