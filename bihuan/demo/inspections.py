"""Inspections in the generated district: inspection groups (督导组) with an inspector account each and a share of
the townships, this week's plans drawn with seeds derived from the generator's, and each group's visits due by
today carried out (the data's answers confirmed, every other visit's last item failed with a photo), so the demo
shows findings, rectification loops and scores (read live from the week's records). Deterministic with the seed;
through the actions (and so the loop engine); a few dozen visits whatever the preset."""

from __future__ import annotations

import io
from collections.abc import Callable

from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

GROUPS = {"tiny": 0, "demo": 3, "yaodu": 11}  # tiny: the bare register the tests count on


def _photo() -> SimpleUploadedFile:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (160, 120), (150, 60, 40)).save(buf, format="JPEG")
    return SimpleUploadedFile("finding.jpg", buf.getvalue(), content_type="image/jpeg")


def generate_inspections(preset: str, seed: int, out: Callable[[str], None] = print) -> dict:
    from bihuan.core.roles import Role
    from bihuan.inspections import actions
    from bihuan.inspections.models import ChecklistTemplate
    from bihuan.inspections.planning import monday
    from bihuan.register.models import Unit
    from bihuan.register.staff_actions import do_create_staff

    from . import PASSWORD

    if not ChecklistTemplate.objects.exists():  # a flushed test database lost the shipped checklists: seed them
        import importlib

        from django.apps import apps

        importlib.import_module("bihuan.inspections.migrations.0002_checklists_and_rules").add(apps, None)
        importlib.import_module("bihuan.inspections.migrations.0004_checkpoint_checklist_v2").add(apps, None)
    townships = list(Unit.objects.filter(level=3).order_by("path"))
    district = Unit.objects.filter(level=1).order_by("path").first()
    if not townships or district is None or not GROUPS.get(preset, 0):
        return {}
    n = min(GROUPS.get(preset, 1), len(townships))
    week = monday(timezone.localdate())
    visits = findings = 0
    for i in range(n):
        username = "inspector" if i == 0 else f"inspector{i + 1}"
        user = do_create_staff(unit=district, username=username, name=f"督导组{i + 1}组长", role=Role.INSPECTOR,
                               password=PASSWORD, phone=f"1370000{i + 1:04d}", acting_user=None)[0].user
        group = actions.do_create_group(name=f"第{i + 1}督导组", leader=user, members=[user],
                                        territory=townships[i::n], visits_per_week=6, acting_user=None)
        plan = actions.do_draw_plan(group, week_start=week, seed=seed * 1000 + i + 1, acting_user=None)
        planned = list(plan.visits.order_by("planned_for", "id"))
        # The visits due by today are carried out (at least the first): every other one fails its last item.
        due = [v for v in planned if v.planned_for <= timezone.localdate()] or planned[:1]
        for j, visit in enumerate(due):
            actions.do_start_visit(visit, acting_user=user)
            answers = list(visit.answers.select_related("item").order_by("item__order"))
            given = {a.pk: {"result": "pass", "reason": "现场核实" if a.prefilled == "fail" else ""} for a in answers}
            if j % 2 == 0:
                given[answers[-1].pk] = {"result": "fail", "photo": _photo(),
                                         "reason": "现场核实不符" if answers[-1].prefilled == "pass" else ""}
            findings += len(actions.do_submit_visit(visit, given, acting_user=user))
        visits += len(planned)
    out(f"inspections: {n} groups, {visits} planned visits, {findings} findings")
    return {"groups": n, "visits": visits, "findings": findings}
