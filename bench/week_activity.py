"""One generated week of district activity for the scoring benchmark and tests (not a benchmark itself).

``build_week(week_start, scale)`` writes, set-based (``INSERT … SELECT`` from the register), a week of work that
the weekly score reads: directives with their receipts at every unit of their scope and their households' reach
rows, pushed people with their verification loops, control cases at home with their check-ins (and missed
ones), test samples and service requests, and inspection visits with answers, findings and rectification loops.
Outcomes (in time, late, not done) follow the record ids, so the same register gives the same week. Every row
is told apart by a mark (``bench:week``) and removed by ``cleanup``.

Loop rows are written here directly, as benchmark fixtures (the application writes them only through
``bihuan.loops.engine``).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

MARK = "bench:week"


@dataclass(frozen=True)
class Sizes:
    directives: int
    reach_every: int  # every n-th household of a directive's scope gets a reach row
    pushed_every: int  # every n-th resident is pushed
    case_every: int  # every n-th resident is under control at home
    service_every: int  # every n-th case asks for a service
    visits_per_community: int


SIZES = {
    "tiny": Sizes(directives=6, reach_every=1, pushed_every=1, case_every=1, service_every=2, visits_per_community=2),
    "demo": Sizes(directives=50, reach_every=2, pushed_every=4, case_every=8, service_every=10, visits_per_community=2),
    "yaodu": Sizes(directives=50, reach_every=2, pushed_every=31, case_every=180, service_every=10,
                   visits_per_community=2),
}


def _q(name: str) -> str:
    from django.db import connection

    return connection.ops.quote_name(name)


def _insert(model, values: dict[str, tuple[str, list]], from_sql: str, from_params: list) -> int:
    """``INSERT INTO model (…) SELECT … FROM …``: ``values`` maps columns to SQL expressions (with their parameters);
    every other non-null column gets its field's default as a parameter."""
    from django.db import connection

    cols, exprs, params = [], [], []
    for f in model._meta.concrete_fields:
        if f.primary_key:
            continue
        col = f.column
        if col in values:
            expr, p = values[col]
        elif f.null:
            continue
        else:
            default = f.get_default()
            expr, p = "%s", [f.get_db_prep_save(default, connection)]
        cols.append(_q(col))
        exprs.append(expr)
        params.extend(p)
    sql = f"INSERT INTO {_q(model._meta.db_table)} ({', '.join(cols)}) SELECT {', '.join(exprs)} {from_sql}"
    with connection.cursor() as cur:
        cur.execute(sql, params + from_params)
        return cur.rowcount


def _t(model) -> str:
    return _q(model._meta.db_table)


def _interval(expr: str, minutes_expr: str) -> str:
    """``expr`` (a timestamp) plus ``minutes_expr`` minutes, in SQL of the database in use."""
    from django.db import connection

    if connection.vendor == "postgresql":
        return f"({expr} + ({minutes_expr}) * INTERVAL '1 minute')"
    return f"strftime('%%Y-%%m-%%d %%H:%%M:%%f', {expr}, '+' || ({minutes_expr}) || ' minutes')"


def cleanup() -> None:
    from django.db import connection, transaction

    from bihuan.control.models import (
        ALERT,
        MISSED_CHECKIN,
        SERVICE,
        TEST_MISSED,
        TEST_POSITIVE,
        CheckIn,
        ControlCase,
        MeasureItem,
        MissedCheckIn,
        ServiceRequest,
        TeamMember,
        TestSample,
    )
    from bihuan.directives.models import Directive, Reach
    from bihuan.inspections.models import Answer, Finding, InspectionGroup, Visit
    from bihuan.loops.models import Loop, LoopEvent
    from bihuan.pushes.models import PushBatch, PushedPerson

    data = "CAST(data AS TEXT)" if connection.vendor == "postgresql" else "data"
    with transaction.atomic(), connection.cursor() as cur:
        marked = f"SELECT id FROM {_t(Loop)} WHERE {data} LIKE %s"
        cur.execute(f"DELETE FROM {_t(LoopEvent)} WHERE loop_id IN ({marked})", [f"%{MARK}%"])
        cur.execute(f"UPDATE {_t(ServiceRequest)} SET loop_id = NULL WHERE loop_id IN ({marked})", [f"%{MARK}%"])
        cur.execute(f"UPDATE {_t(Finding)} SET loop_id = NULL WHERE loop_id IN ({marked})", [f"%{MARK}%"])
        cur.execute(f"DELETE FROM {_t(Loop)} WHERE {data} LIKE %s", [f"%{MARK}%"])
        groups = f"SELECT id FROM {_t(InspectionGroup)} WHERE name = %s"
        visits = f"SELECT id FROM {_t(Visit)} WHERE group_id IN ({groups})"
        cur.execute(f"DELETE FROM {_t(Finding)} WHERE visit_id IN ({visits})", [MARK])
        cur.execute(f"DELETE FROM {_t(Answer)} WHERE visit_id IN ({visits})", [MARK])
        cur.execute(f"DELETE FROM {_t(Visit)} WHERE group_id IN ({groups})", [MARK])
        cur.execute(f"DELETE FROM {_t(InspectionGroup.territory.through)} WHERE inspectiongroup_id IN ({groups})",
                    [MARK])
        cur.execute(f"DELETE FROM {_t(InspectionGroup)} WHERE name = %s", [MARK])
        cases = f"SELECT id FROM {_t(ControlCase)} WHERE protocol_name = %s"
        # Loops the application opened on the week's cases since (a worker's missed check-ins and tests, an
        # abnormal check-in recorded on a page, a service request): found by their subjects, not by the mark.
        for kind, model in ((MISSED_CHECKIN, MissedCheckIn), (ALERT, CheckIn), (TEST_POSITIVE, TestSample),
                            (TEST_MISSED, TestSample), (SERVICE, ServiceRequest)):
            made = (f"SELECT id FROM {_t(Loop)} WHERE kind = %s AND subject_id IN "
                    f"(SELECT id FROM {_t(model)} WHERE case_id IN ({cases}))")
            cur.execute(f"DELETE FROM {_t(LoopEvent)} WHERE loop_id IN ({made})", [kind, MARK])
            cur.execute(f"UPDATE {_t(ServiceRequest)} SET loop_id = NULL WHERE loop_id IN ({made})", [kind, MARK])
            cur.execute(f"DELETE FROM {_t(Loop)} WHERE id IN ({made})", [kind, MARK])
        for model in (CheckIn, MissedCheckIn, TestSample, ServiceRequest, MeasureItem, TeamMember):
            cur.execute(f"DELETE FROM {_t(model)} WHERE case_id IN ({cases})", [MARK])
        cur.execute(f"DELETE FROM {_t(ControlCase)} WHERE protocol_name = %s", [MARK])
        directives = f"SELECT id FROM {_t(Directive)} WHERE title LIKE %s"
        cur.execute(f"DELETE FROM {_t(Reach)} WHERE directive_id IN ({directives})", [f"{MARK}%"])
        cur.execute(f"DELETE FROM {_t(Directive)} WHERE title LIKE %s", [f"{MARK}%"])
        batches = f"SELECT id FROM {_t(PushBatch)} WHERE source = %s"
        cur.execute(f"DELETE FROM {_t(PushedPerson)} WHERE first_batch_id IN ({batches})", [MARK])
        cur.execute(f"DELETE FROM {_t(PushBatch)} WHERE source = %s", [MARK])


def build_week(week_start: dt.date, scale: str) -> dict:
    """Write the week (after removing an earlier one). Returns the counts written."""
    from django.db import connection, transaction
    from django.utils import timezone

    from bihuan.control.models import (
        CheckIn,
        ControlCase,
        ControlType,
        MissedCheckIn,
        ServiceRequest,
        TestSample,
    )
    from bihuan.directives.models import RECEIPT, Directive, Reach
    from bihuan.inspections.models import (
        RECTIFY_KINDS,
        Answer,
        ChecklistTemplate,
        Finding,
        InspectionGroup,
        Visit,
    )
    from bihuan.loops.models import Loop
    from bihuan.pushes.models import VERIFICATION, PushBatch, PushedPerson
    from bihuan.register.models import Household, Resident, Unit

    s = SIZES[scale]
    cleanup()
    pg = connection.vendor == "postgresql"
    adapt = connection.ops.adapt_datetimefield_value
    start = timezone.make_aware(dt.datetime.combine(week_start, dt.time()))
    d_ = connection.ops.adapt_datefield_value
    jsonp = "CAST(%s AS jsonb)" if pg else "%s"
    mark_json = f'{{"mark": "{MARK}"}}'
    counts: dict[str, int] = {}
    u, h, r = _t(Unit), _t(Household), _t(Resident)
    with transaction.atomic(), connection.cursor() as cur:
        office = Unit.objects.filter(level=2, kind="command_office").order_by("path").first() or \
            Unit.objects.order_by("path").first()
        townships = list(Unit.objects.filter(level=3).order_by("path").values_list("id", "path"))
        # Directives: one a township, round the townships, issued on the week's days at 09:00.
        directive_ids = []
        for i in range(s.directives):
            scope_id, _path = townships[i % len(townships)]
            issued = start + dt.timedelta(days=i % 6, hours=9)
            d = Directive.objects.create(issuer_unit=office, scope_unit_id=scope_id, title=f"{MARK} 指令 {i + 1}",
                                         body="本周工作部署", issued_at=issued, sign_minutes=30, reach_hours=24,
                                         fanout_state="done")
            directive_ids.append(d.pk)
        n = 0
        for pk in directive_ids:
            d = Directive.objects.select_related("scope_unit").get(pk=pk)
            issued = adapt(d.issued_at)
            lo, hi = d.scope_unit.path, d.scope_unit.path[:-4] + str(int(d.scope_unit.path[-4:]) + 1).zfill(4)
            ack_due = _interval("%s", "30 * (x.level - 2)")
            due = _interval("%s", "1440")
            # 80 % sign in time, 10 % late, 10 % not at all; report in time 75 %, late 15 %.
            n += _insert(Loop, {
                "kind": ("%s", [RECEIPT]), "subject_id": ("%s", [pk]), "title": ("%s", [d.title]),
                "owner_unit_id": ("x.id", []), "path": ("x.path", []), "level": ("x.level", []),
                "originator_unit_id": ("%s", [office.pk]), "state": (
                    "CASE WHEN x.id %% 20 < 15 THEN 'reported' WHEN x.id %% 10 = 9 THEN 'issued' "
                    "ELSE 'acknowledged' END", []),
                "ack_due_at": (ack_due, [issued]), "due_at": (due, [issued]),
                "acknowledged_at": (f"CASE WHEN x.id %% 10 < 8 THEN {_interval('%s', '10 * (x.level - 2)')} "
                                    f"WHEN x.id %% 10 = 8 THEN {_interval('%s', '600')} ELSE NULL END",
                                    [issued, issued]),
                "started_at": (f"CASE WHEN x.level < 6 AND x.id %% 10 < 8 THEN {_interval('%s', '20 * (x.level - 2)')} "
                               "ELSE NULL END", [issued]),
                "reported_at": (f"CASE WHEN x.id %% 20 < 15 THEN {_interval('%s', '600 + (x.id %% 20) * 60')} "
                                "ELSE NULL END", [issued]),
                "data": (jsonp, [mark_json]), "created_at": ("%s", [issued]),
            }, f"FROM {u} x WHERE x.path >= %s AND x.path < %s AND x.level > 2", [lo, hi])
            _insert(Reach, {
                "directive_id": ("%s", [pk]), "household_id": ("y.id", []), "unit_id": ("y.unit_id", []),
                "path": ("y.path", []),
                "status": ("CASE WHEN y.id %% 10 < 8 THEN 'reached' WHEN y.id %% 10 = 8 THEN 'unreachable' "
                           "ELSE 'pending' END", []),
                "marked_at": (f"CASE WHEN y.id %% 10 < 7 THEN {_interval('%s', '60 + y.id %% 600')} "
                              f"WHEN y.id %% 10 < 9 THEN {_interval('%s', '1500')} ELSE NULL END", [issued, issued]),
            }, f"FROM {h} y WHERE y.path >= %s AND y.path < %s AND y.id %% %s = 0", [lo, hi, s.reach_every])
        counts["directives"], counts["receipts"] = len(directive_ids), n
        cur.execute(f"SELECT COUNT(*) FROM {_t(Reach)} WHERE directive_id IN "
                    f"(SELECT id FROM {_t(Directive)} WHERE title LIKE %s)", [f"{MARK}%"])
        counts["reach"] = cur.fetchone()[0]

        # Pushed people: every n-th resident, pushed on the week's days, verification due 12 hours later.
        batch = PushBatch.objects.create(source=MARK, file_name="week.xlsx", file_sha256=MARK, file_data=b"",
                                         unit=office, state="done")
        pushed_at = _interval("%s", "(z.id %% 6) * 1440 + 480 + z.id %% 300")
        counts["pushed"] = _insert(PushedPerson, {
            "name": ("z.name", []), "id_masked": ("z.id_masked", []), "first_batch_id": ("%s", [batch.pk]),
            "first_pushed_at": (pushed_at, [adapt(start)]), "last_pushed_at": (pushed_at, [adapt(start)]),
            "resident_id": ("z.id", []), "unit_id": ("z.unit_id", []), "path": ("z.path", []),
            "sources": ("%s", [MARK]),
        }, f"FROM {r} z WHERE z.id %% %s = 0", [s.pushed_every])
        pp = _t(PushedPerson)
        # 85 % verified in time, 10 % late, 5 % not yet.
        _insert(Loop, {
            "kind": ("%s", [VERIFICATION]), "subject_id": ("p.id", []), "title": ("%s", ["推送核查"]),
            "owner_unit_id": ("p.unit_id", []), "path": ("p.path", []), "level": ("6", []),
            "originator_unit_id": ("%s", [office.pk]),
            "state": ("CASE WHEN p.id %% 20 = 19 THEN 'issued' ELSE 'reported' END", []),
            "due_at": (_interval("p.first_pushed_at", "720"), []),
            "reported_at": ("CASE WHEN p.id %% 20 < 17 THEN " + _interval("p.first_pushed_at", "60 + p.id %% 600")
                            + " WHEN p.id %% 20 < 19 THEN " + _interval("p.first_pushed_at", "900") + " ELSE NULL END",
                            []),
            "data": (jsonp, [mark_json]), "created_at": ("p.first_pushed_at", []),
        }, f"FROM {pp} p WHERE p.first_batch_id = %s", [batch.pk])

        # Control cases at home for the whole week, with check-ins, missed slots, tests and service requests.
        ctype = ControlType.objects.get(code="home_isolation")
        counts["cases"] = _insert(ControlCase, {
            "type_id": ("%s", [ctype.pk]), "unit_id": ("z.unit_id", []), "path": ("z.path", []),
            "resident_id": ("z.id", []), "name": ("z.name", []), "id_masked": ("z.id_masked", []),
            "phases": (jsonp, ['[{"type": "home_isolation", "days": 14, "tests": [1, 4, 7]}]']),
            "protocol_name": ("%s", [MARK]), "start_date": ("%s", [d_(week_start)]),
            "end_date": ("%s", [d_(week_start + dt.timedelta(days=13))]), "site_kind": ("'home'", []),
            "site_address": ("w.address", []), "state": ("'active'", []), "created_at": ("%s", [adapt(start)]),
        }, f"FROM {r} z JOIN {h} w ON w.id = z.household_id WHERE z.id %% %s = %s", [s.case_every, 1 % s.case_every])
        cs = _t(ControlCase)
        checkins = missed = samples = 0
        for day in range(7):
            date = week_start + dt.timedelta(days=day)
            for slot, hour in (("am", 8), ("pm", 16)):
                at = adapt(start + dt.timedelta(days=day, hours=hour))
                checkins += _insert(CheckIn, {
                    "case_id": ("c.id", []), "date": ("%s", [d_(date)]), "slot": ("%s", [slot]),
                    "temperature": ("36.5", []), "symptoms": (jsonp, ["[]"]), "abnormal": ("%s", [False]),
                    "at": ("%s", [at]),
                }, f"FROM {cs} c WHERE c.protocol_name = %s AND (c.id + %s) %% 12 <> 0", [MARK, day])
                missed += _insert(MissedCheckIn, {  # history: reminded and handed on when they were missed
                    "case_id": ("c.id", []), "path": ("c.path", []), "date": ("%s", [d_(date)]),
                    "slot": ("%s", [slot]), "due_at": ("%s", [at]), "alert_at": ("%s", [at]),
                    "reminded_at": ("%s", [at]), "handed_at": ("%s", [at]),
                }, f"FROM {cs} c WHERE c.protocol_name = %s AND (c.id + %s) %% 12 = 0", [MARK, day])
            if day in (0, 3, 6):
                samples += _insert(TestSample, {
                    "case_id": ("c.id", []), "day": ("%s", [day + 1]), "date": ("%s", [d_(date)]),
                    "result": ("CASE WHEN c.id %% 15 = 0 THEN '' ELSE 'negative' END", []),
                }, f"FROM {cs} c WHERE c.protocol_name = %s", [MARK])
        counts.update(checkins=checkins, missed=missed, samples=samples)
        requested = _interval("%s", "(c.id %% 6) * 1440 + 600")
        counts["services"] = _insert(ServiceRequest, {
            "case_id": ("c.id", []), "kind": ("'groceries'", []), "text": ("'大米一袋'", []),
            "requested_at": (requested, [adapt(start)]),
        }, f"FROM {cs} c WHERE c.protocol_name = %s AND c.id %% %s = 0", [MARK, s.service_every])
        _insert(Loop, {
            "kind": ("%s", ["control.service"]), "subject_id": ("v.id", []), "title": ("%s", ["服务请求"]),
            "owner_unit_id": ("c.unit_id", []), "path": ("c.path", []), "level": ("6", []),
            "originator_unit_id": ("c.unit_id", []),
            "state": ("CASE WHEN v.id %% 5 = 4 THEN 'issued' ELSE 'reported' END", []),
            "due_at": (_interval("v.requested_at", "1440"), []),
            "reported_at": ("CASE WHEN v.id %% 5 < 3 THEN " + _interval("v.requested_at", "300") + " WHEN v.id %% 5 = 3 "
                            "THEN " + _interval("v.requested_at", "1800") + " ELSE NULL END", []),
            "data": (jsonp, [mark_json]), "created_at": ("v.requested_at", []),
        }, f"FROM {_t(ServiceRequest)} v JOIN {cs} c ON c.id = v.case_id WHERE c.protocol_name = %s", [MARK])

        # Inspections: visits to every community, answers to its checklist, every third item failed → findings.
        group = InspectionGroup.objects.create(name=MARK, visits_per_week=0)
        template = ChecklistTemplate.objects.filter(target_kind="community").order_by("-version").first()
        items = list(template.items.order_by("order").values_list("id", "key", "text", "severity"))
        for k in range(s.visits_per_community):
            finished = _interval("%s", f"(x.id %% 5) * 1440 + 600 + {k} * 1440")
            _insert(Visit, {
                "group_id": ("%s", [group.pk]), "target_kind": ("'community'", []), "unit_id": ("x.id", []),
                "path": ("x.path", []), "responsible_unit_id": ("x.id", []), "label": ("x.name", []),
                "planned_for": ("%s", [d_(week_start)]), "state": ("'done'", []),
                "template_id": ("%s", [template.pk]), "started_at": (finished, [adapt(start)]),
                "finished_at": (finished, [adapt(start)]), "created_at": ("%s", [adapt(start)]),
            }, f"FROM {u} x WHERE x.level = 4", [])
        vt = _t(Visit)
        for i, (item_id, _key, _text, _sev) in enumerate(items):
            _insert(Answer, {
                "visit_id": ("v.id", []), "item_id": ("%s", [item_id]), "path": ("v.path", []),
                "result": ("CASE WHEN (v.id + %s) %% 3 = 0 THEN 'fail' ELSE 'pass' END", [i]),
                "answered_at": ("v.finished_at", []),
            }, f"FROM {vt} v WHERE v.group_id = %s", [group.pk])
        at = _t(Answer)
        counts["visits"] = Visit.objects.filter(group=group).count()
        sev = {key: s_ for _id, key, _t_, s_ in items}
        text = {key: t_ for _id, key, t_, _s in items}
        key_case = "CASE " + " ".join(f"WHEN a.item_id = {int(i_)} THEN %s" for i_, *_r in items) + " END"
        keys = [k_ for _i, k_, *_r in items]
        counts["findings"] = _insert(Finding, {
            "answer_id": ("a.id", []), "visit_id": ("a.visit_id", []), "unit_id": ("v.unit_id", []),
            "path": ("v.path", []), "item_key": (key_case, keys), "text": (key_case, [text[k_] for k_ in keys]),
            "severity": (key_case, [sev[k_] for k_ in keys]), "created_at": ("v.finished_at", []),
        }, f"FROM {at} a JOIN {vt} v ON v.id = a.visit_id WHERE v.group_id = %s AND a.result = 'fail'", [group.pk])
        due_minutes = {"minor": 72 * 60, "major": 24 * 60, "critical": 4 * 60}
        for severity, kind in RECTIFY_KINDS.items():
            _insert(Loop, {
                "kind": ("%s", [kind]), "subject_id": ("f.id", []), "title": ("%s", ["督查整改"]),
                "owner_unit_id": ("f.unit_id", []), "path": ("f.path", []), "level": ("4", []),
                "originator_unit_id": ("f.unit_id", []),
                "state": ("CASE WHEN f.id %% 4 < 2 THEN 'closed' WHEN f.id %% 4 = 2 THEN 'reported' "
                          "ELSE 'in_progress' END", []),
                "due_at": (_interval("f.created_at", str(due_minutes[severity])), []),
                "reported_at": ("CASE WHEN f.id %% 4 < 3 THEN " + _interval("f.created_at", "(f.id %% 7) * 60 + 30")
                                + " ELSE NULL END", []),
                "closed_at": ("CASE WHEN f.id %% 4 < 2 THEN " + _interval("f.created_at", "(f.id %% 7) * 60 + 300")
                              + " ELSE NULL END", []),
                "data": (jsonp, [mark_json]), "created_at": ("f.created_at", []),
            }, f"FROM {_t(Finding)} f JOIN {vt} v ON v.id = f.visit_id WHERE v.group_id = %s AND f.severity = %s",
                [group.pk, severity])
    if pg:
        with connection.cursor() as cur:
            for model in (Loop, Reach, CheckIn, TestSample, MissedCheckIn, Answer, ControlCase):
                cur.execute(f"ANALYZE {_t(model)}")
    return counts
