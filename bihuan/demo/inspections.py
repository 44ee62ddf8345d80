"""Inspections in the generated district: inspection groups (督导组) with an inspector account each and a share of
the townships, this week's plans drawn with seeds derived from the generator's, and the visits due by today
carried out on the demo day (the data's answers confirmed, failed items photographed), so the demo
shows findings, rectification loops and scores (read live from the week's records). Deterministic with the seed;
through the actions (and so the loop engine); a few dozen visits whatever the preset."""

from __future__ import annotations

import io
from collections.abc import Callable

from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from bihuan.inspections import shipped

GROUPS = {"tiny": 0, "demo": 3, "yaodu": 11}  # tiny: the bare register the tests count on


def _photo() -> SimpleUploadedFile:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (160, 120), (150, 60, 40)).save(buf, format="JPEG")
    return SimpleUploadedFile("finding.jpg", buf.getvalue(), content_type="image/jpeg")


def _make_groups(n: int, seed: int) -> list:
    """``n`` groups, each with an inspector account, a share of the townships and this week's plan drawn."""
    from bihuan.core.roles import Role
    from bihuan.inspections import actions
    from bihuan.inspections.planning import monday
    from bihuan.register.models import Unit
    from bihuan.register.staff_actions import do_create_staff

    from . import PASSWORD

    townships = list(Unit.objects.filter(level=3).order_by("path"))
    district = Unit.objects.filter(level=1).order_by("path").first()
    if not townships or district is None or not n:
        return []
    n = min(n, len(townships))
    groups = []
    for i in range(n):
        username = "inspector" if i == 0 else f"inspector{i + 1}"
        user = do_create_staff(unit=district, username=username, name=f"督导组{i + 1}组长", role=Role.INSPECTOR,
                               password=PASSWORD, phone=f"1370000{i + 1:04d}", acting_user=None)[0].user
        group = actions.do_create_group(name=f"第{i + 1}督导组", leader=user, members=[user],
                                        territory=townships[i::n], visits_per_week=6, acting_user=None)
        actions.do_draw_plan(group, week_start=monday(timezone.localdate()), seed=seed * 1000 + i + 1,
                             acting_user=None)
        groups.append(group)
    return groups


def generate_inspections(preset: str, seed: int, out: Callable[[str], None] = print) -> dict:
    """The groups and this week's plans (the visits are carried out on the demo day: ``plan_day``)."""
    shipped.ensure()  # a flushed test database lost the shipped checklists
    groups = _make_groups(GROUPS.get(preset, 0), seed)
    if groups:
        out(f"inspections: {len(groups)} groups")
    return {"groups": len(groups)}


def plan_day(day) -> None:
    """The inspections' share of the demo day, on its clock: each group carries out the visits of its plan due
    by today, from yesterday morning on. The first fails one item of each severity (so by now the critical and
    the major one are past their rectification deadlines and the minor one is open), every other one after it
    fails its last item; the district without groups (the tiny preset) gets one on the day."""
    from bihuan.inspections.models import InspectionGroup, Visit

    shipped.ensure()  # a flushed test database lost the shipped checklists
    groups = list(InspectionGroup.objects.select_related("leader").order_by("id")) or _make_groups(
        1, day.rng.randint(1, 10_000))
    today = timezone.localdate(day.now)
    for i, group in enumerate(groups):
        due = list(Visit.objects.filter(plan__group=group, planned_for__lte=today).order_by("planned_for", "id")) or \
            list(Visit.objects.filter(plan__group=group).order_by("planned_for", "id")[:1])
        for j, visit in enumerate(due):
            day.at(max(0.5, 30 - 5 * j - i * 0.5), lambda v=visit, u=group.leader, j=j: _carry_out(v, u, j, day.counts))


def _carry_out(visit, user, j: int, counts) -> None:
    from bihuan.inspections import actions

    actions.do_start_visit(visit, acting_user=user)
    answers = list(visit.answers.select_related("item").order_by("item__order"))
    given = {a.pk: {"result": "pass", "reason": "现场核实" if a.prefilled == "fail" else ""} for a in answers}
    if j == 0:
        failing = list({a.item.severity: a for a in answers}.values())
    else:
        failing = answers[-1:] if j % 2 == 0 else []
    for a in failing:
        given[a.pk] = {"result": "fail", "photo": _photo(), "reason": "现场核实不符" if a.prefilled == "pass" else ""}
    counts["findings"] += len(actions.do_submit_visit(visit, given, acting_user=user))
    counts["visits"] += 1
