"""Helpers of the inspection tests: photos, a home under control, the inspection world on the base district (an
inspector of the district, a group inspecting township A, a home under isolation in grid A with its measures
partly done), a drawn plan with its home visit, a visit carried out with some items failed, and posts of the duty
roster with or without a gap."""

from __future__ import annotations

import datetime as dt
import io
from types import SimpleNamespace

from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone


def png(name: str = "photo.png", size=(64, 48), color=(200, 30, 30)) -> SimpleUploadedFile:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, format="PNG")
    return SimpleUploadedFile(name, buf.getvalue(), content_type="image/png")


def open_home_case(unit, resident, *, type_code: str = "home_isolation", start: dt.date | None = None,
                   done: tuple[str, ...] = ("card_posted", "agreement_signed")):
    """A control case at home with its measures checklist (``done`` ones marked), written through the models."""
    from bihuan.control.models import ControlCase, ControlType, MeasureItem

    ctype = ControlType.objects.get(code=type_code)
    start = start or timezone.localdate() - dt.timedelta(days=2)
    case = ControlCase.objects.create(
        type=ctype, unit=unit, path=unit.path, resident=resident, name=resident.name, start_date=start,
        end_date=start + dt.timedelta(days=13), site_kind="home", site_address=resident.household.address,
        phases=[{"type": type_code, "days": 14, "tests": [1, 7, 14]}])
    now = timezone.now()
    for m in ctype.measures:
        MeasureItem.objects.create(case=case, key=m["key"], label=m["label"],
                                   done_at=now - dt.timedelta(days=1) if m["key"] in done else None)
    return case


def build_world(d):
    from bihuan.core.roles import Role
    from bihuan.inspections import actions
    from bihuan.testing import create_staff

    w = SimpleNamespace(d=d)
    w.inspector = create_staff(d.district, "inspector", Role.INSPECTOR).user
    w.other_inspector = create_staff(d.district, "inspector_b", Role.INSPECTOR).user
    d.users["inspector"] = w.inspector
    d.users["inspector_b"] = w.other_inspector
    w.group = actions.do_create_group(name="第一督导组", leader=w.inspector, members=[w.inspector],
                                      territory=[d.township_a], visits_per_week=10, acting_user=d.users["commander"])
    w.group_b = actions.do_create_group(name="第二督导组", leader=w.other_inspector, members=[w.other_inspector],
                                        territory=[d.township_b], visits_per_week=10, acting_user=d.users["commander"])
    w.case = open_home_case(d.grid_a, d.resident_a)
    return w


def draw_home_visit(w, week_start: dt.date | None = None, seed: int = 7):
    """The group's plan for the week (everything in its small territory is drawn) and its visit to the home."""
    from bihuan.inspections import actions
    from bihuan.inspections.models import TargetKind

    plan = actions.do_draw_plan(w.group, week_start=week_start or timezone.localdate(), seed=seed,
                                acting_user=w.d.users["commander"])
    return plan, plan.visits.get(target_kind=TargetKind.HOME)


def answers_failing(visit, *keys, photo=True):
    """Every item passed (with a reason where the data said otherwise), the ``keys`` failed with a photo."""
    out = {}
    for a in visit.answers.select_related("item"):
        if a.item.key in keys:
            out[a.pk] = {"result": "fail", "photo": png() if photo else None,
                         "reason": "现场核实不符" if a.prefilled == "pass" else ""}
        else:
            out[a.pk] = {"result": "pass", "reason": "现场已整改到位" if a.prefilled == "fail" else ""}
    return out


def visit_and_fail(w, *keys, week_start=None):
    from bihuan.inspections import actions

    _plan, visit = draw_home_visit(w, week_start=week_start)
    actions.do_start_visit(visit, acting_user=w.inspector)
    return visit, actions.do_submit_visit(visit, answers_failing(visit, *keys), acting_user=w.inspector)


def create_post(unit, name: str, *, kind: str = "checkpoint", staffed_by=None, week_start: dt.date | None = None,
                start_hour: int = 8, end_hour: int = 20):
    """A post of the duty roster (rows written directly: fixtures of another app's models). ``staffed_by`` (a Staff)
    is put on every day's window of the week, so the post has no gap; without it the post is short all week."""
    from bihuan.forces.models import Post, Shift

    post = Post.objects.create(unit=unit, path=unit.path, name=name, kind=kind, start_hour=start_hour,
                               end_hour=end_hour, required=1)
    if staffed_by is not None:
        monday = week_start or timezone.localdate() - dt.timedelta(days=timezone.localdate().weekday())
        for day in range(7):
            d = monday + dt.timedelta(days=day)
            Shift.objects.create(post=post, path=post.path, staff=staffed_by,
                                 starts_at=timezone.make_aware(dt.datetime.combine(d, dt.time(start_hour))),
                                 ends_at=timezone.make_aware(dt.datetime.combine(d, dt.time(end_hour))))
    return post
