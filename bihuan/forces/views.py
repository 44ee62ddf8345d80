"""Pages of the field force. Staff pages scope through ``forces.access`` / ``register.access``; the public pages
(a poster's report-in form, a helper's own page, a notice) work through signed links with no login and no script.
"""

from __future__ import annotations

import datetime as dt

from django.contrib import messages
from django.db.models import Count, Q
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.safestring import mark_safe
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from bihuan.core.errors import Refused
from bihuan.core.http import download, int_param, parse_date, safe_next, whole
from bihuan.loops.models import OPEN_STATES, Loop
from bihuan.register.access import access_unit, staff_required
from bihuan.register.models import Unit

from . import actions, exports, links, roster
from .access import (
    MANAGE,
    RECORD,
    VIEW,
    access_helper,
    access_notice,
    access_place,
    access_post,
    home_helpers,
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
    Post,
    Shift,
    Task,
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
    })


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
                                                   "can_manage": scope.can(MANAGE)})


@staff_required(MANAGE)
@require_POST
def decide(request, helper_id, scope):
    helper = access_helper(request.user, helper_id, MANAGE)
    try:
        actions.do_decide_report_in(helper, approve=request.POST.get("approve") == "1", acting_user=request.user,
                                    note=request.POST.get("note", ""))
        messages.success(request, _("已处理：%(name)s") % {"name": helper.name})
    except Refused as exc:
        messages.error(request, exc.message)
    return redirect(safe_next(request, "forces:home"))


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
    return render(request, "forces/roster.html", {"post": post, "monday": monday, "grid": grid,
                                                  "helpers": choices, "can_manage": scope.can(MANAGE)})


@staff_required(VIEW)
def places(request, scope):
    unit = _unit(request, scope)
    rows = list(Place.objects.filter(unit.subtree(), active=True).select_related("unit")[:500])
    now = timezone.now()
    for p in rows:
        p.overdue = p.is_overdue(now)
    logs = DisinfectionLog.objects.filter(unit.subtree()).select_related("place").order_by("-at")[:50]
    return render(request, "forces/places.html", {"unit": unit, "rows": rows, "logs": logs})


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

    buildings = list(Household.objects.filter(unit.subtree()).exclude(building="").values_list(
        "unit__parent_id", "unit__parent__name", "building").distinct().order_by("unit__parent__name", "building")[:200])
    codes = {g.unit_id: g for g in GroupCode.objects.filter(unit__path__gte=unit.path, unit__path__lt=_next(unit))}
    sheets = []
    for compound_id, compound_name, building in buildings:
        url = links.absolute(links.notice_path(notice.pk, compound_id, building), request)
        sheets.append({"compound": compound_name, "building": building, "qr": qr_svg(url), "url": url,
                       "group": codes.get(compound_id)})
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
    try:
        actions.do_upload_group_code(unit, request.FILES.get("image"), acting_user=request.user)
        messages.success(request, _("群二维码已上传"))
    except (Refused, AttributeError):
        messages.error(request, _("请上传群二维码图片（JPEG、PNG）"))
    return redirect(reverse("forces:home") + f"?unit={unit.pk}")


@staff_required(RECORD)
@require_POST
def tap(request, shift_id, scope):
    """Staff tap a helper on or off duty (the helper's own page does it through their link)."""
    from .access import access_shift

    shift = access_shift(request.user, shift_id, RECORD)
    try:
        actions.do_tap_duty(shift, on=request.POST.get("on") == "1", acting_user=request.user)
    except Refused as exc:
        messages.error(request, exc.message)
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
    open_loops = set(Loop.objects.filter(kind=TASK, subject_id__in=[t.pk for t in tasks], state__in=OPEN_STATES)
                     .exclude(state="reported").values_list("subject_id", flat=True))
    for t in tasks:
        t.open = t.pk in open_loops
    places = Place.objects.filter(path__startswith=helper.path[:16], active=True).order_by("path", "name")[:200]
    served = roster.seconds_served_by(helper, until=now)
    waiting = Loop.objects.filter(kind=REPORT_IN, subject_id=helper.pk, state__in=OPEN_STATES).exists()
    return render(request, "forces/helper.html", {
        "helper": helper, "shifts": shifts, "tasks": tasks, "places": places, "error": error,
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
