"""Figures of checkpoints, self-reports and screenings, derived live (never typed): per checkpoint per day, and
per unit rolled up through the levels as three sections of the daily report (``pushes.report``): 卡口 (persons,
vehicles, from risk areas, sent to verification, abnormal), 报备 (self-reports and how many are verified),
排查 (households answered, arrivals found). One ``GROUP BY`` per kind of record; the tree walk is the report's.
"""

from __future__ import annotations

import datetime as dt

from django.db.models import Count, Q, Sum

from bihuan.pushes import report as push_report
from bihuan.pushes.models import Outcome
from bihuan.register.models import subtree_q

from .models import Registration, ScreeningAnswer, SelfReport, SelfReportStatus

CHECKPOINT_KEYS = ("cp_persons", "cp_vehicles", "cp_from_risk", "cp_to_verify", "cp_abnormal")


def _registration_sums(qs):
    return qs.annotate(
        persons_n=Sum("persons"), vehicles_n=Count("id", filter=~Q(vehicle_type="")),
        from_risk_n=Sum("from_risk"), to_verify_n=Sum("to_verify"), abnormal_n=Sum("abnormal"))


def _checkpoints(root, low, high, units) -> dict[int, dict[str, int]]:
    out: dict[int, dict[str, int]] = {}
    rows = _registration_sums(
        Registration.objects.filter(subtree_q(root.path), registered_at__gte=low, registered_at__lt=high)
        .values("checkpoint__unit_id")).order_by()
    for r in rows:
        out[r["checkpoint__unit_id"]] = {
            "cp_persons": r["persons_n"] or 0, "cp_vehicles": r["vehicles_n"] or 0,
            "cp_from_risk": r["from_risk_n"] or 0, "cp_to_verify": r["to_verify_n"] or 0,
            "cp_abnormal": r["abnormal_n"] or 0}
    return out


def _self_reports(root, low, high, units) -> dict[int, dict[str, int]]:
    """Counted at the unit verifying the person now (a report not routed yet counts nowhere)."""
    inside = {u.id for u in units}
    done = [o for o in Outcome.values if o != Outcome.VERIFYING]
    out: dict[int, dict[str, int]] = {}
    rows = (SelfReport.objects.filter(created_at__gte=low, created_at__lt=high).values("pushed_person__unit_id")
            .annotate(n=Count("id"), cancelled=Count("id", filter=Q(status=SelfReportStatus.CANCELLED)),
                      verified=Count("id", filter=Q(pushed_person__verification__outcome__in=done)))
            .order_by())
    for r in rows:
        if r["pushed_person__unit_id"] in inside:
            out[r["pushed_person__unit_id"]] = {"sr_reported": r["n"], "sr_verified": r["verified"],
                                                "sr_cancelled": r["cancelled"]}
    return out


def _screenings(root, low, high, units) -> dict[int, dict[str, int]]:
    out: dict[int, dict[str, int]] = {}
    rows = (ScreeningAnswer.objects.filter(subtree_q(root.path), answered_at__gte=low, answered_at__lt=high)
            .values("unit_id").annotate(n=Count("id"), arrived=Count("id", filter=~Q(arrived=[])),
                                        fever=Count("id", filter=Q(fever=True))).order_by())
    for r in rows:
        out[r["unit_id"]] = {"sc_answered": r["n"], "sc_arrived": r["arrived"], "sc_fever": r["fever"]}
    return out


push_report.register_section(push_report.Section(
    "卡口", (("登记人数", "cp_persons"), ("登记车辆", "cp_vehicles"), ("来自风险区", "cp_from_risk"),
             ("转核查", "cp_to_verify"), ("异常", "cp_abnormal")), _checkpoints))
push_report.register_section(push_report.Section(
    "报备", (("报备人数", "sr_reported"), ("报备已核查", "sr_verified"), ("报备取消", "sr_cancelled")),
    _self_reports))
push_report.register_section(push_report.Section(
    "排查", (("已排查户数", "sc_answered"), ("有返乡人员户数", "sc_arrived"), ("有发热症状户数", "sc_fever")),
    _screenings))


def checkpoint_days(root_path: str, start: dt.date, end: dt.date | None = None) -> list[dict]:
    """Per checkpoint (of the subtree) per day: persons, vehicles, from risk areas, sent to verification,
    abnormal. One query; days counted with conditional sums over their ranges."""
    end = end or start
    days = [start + dt.timedelta(days=i) for i in range((end - start).days + 1)]
    out = []
    for day in days:
        a, b = push_report.day_bounds(day)
        rows = _registration_sums(
            Registration.objects.filter(subtree_q(root_path), registered_at__gte=a, registered_at__lt=b)
            .values("checkpoint_id", "checkpoint__name", "checkpoint__unit__name")).order_by("checkpoint__name")
        out += [{"day": day, "checkpoint_id": r["checkpoint_id"], "checkpoint": r["checkpoint__name"],
                 "unit": r["checkpoint__unit__name"], "persons": r["persons_n"] or 0, "vehicles": r["vehicles_n"],
                 "from_risk": r["from_risk_n"] or 0, "to_verify": r["to_verify_n"] or 0,
                 "abnormal": r["abnormal_n"] or 0} for r in rows]
    return out
