"""Demo checkpoints (卡口): a highway exit or bus station at every town or township, an entrance at every
village, a gate at one compound in five, each with its forces post; deterministic with the seed, one bulk insert whatever the preset."""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Callable

from django.utils import timezone

from bihuan.checkpoints.models import Checkpoint, CheckpointKind
from bihuan.forces.models import Post, PostKind
from bihuan.register.models import Unit, UnitKind


def generate(seed: int, out: Callable[[str], None] = print) -> int:
    rng = random.Random(f"checkpoints-{seed}")
    rows = []
    for unit_id, path, name, kind in Unit.objects.filter(level__in=(3, 4, 5)).order_by("path").values_list(
            "id", "path", "name", "kind"):
        if kind in (UnitKind.TOWN, UnitKind.TOWNSHIP):
            rows.append(Checkpoint(unit_id=unit_id, path=path, name=f"{name}高速出口", kind=CheckpointKind.HIGHWAY_EXIT))
        elif kind == UnitKind.SUBDISTRICT and rng.random() < 0.5:
            rows.append(Checkpoint(unit_id=unit_id, path=path, name=f"{name}汽车站", kind=CheckpointKind.BUS_STATION,
                                   opens=dt.time(6), closes=dt.time(22)))
        elif kind == UnitKind.VILLAGE:
            rows.append(Checkpoint(unit_id=unit_id, path=path, name=f"{name}村口", kind=CheckpointKind.VILLAGE_ENTRANCE))
        elif kind == UnitKind.COMPOUND and rng.random() < 0.2:
            rows.append(Checkpoint(unit_id=unit_id, path=path, name=f"{name}大门", kind=CheckpointKind.COMPOUND_GATE,
                                   opens=dt.time(6), closes=dt.time(23)))
    # Each checkpoint is staffed through a forces post of kind checkpoint: the unit's post the forces demo
    # already rosters if there is one (a village's entrance post), else a new post with the same name and hours.
    free: dict[int, list[int]] = {}
    for post_id, unit_id in Post.objects.filter(kind=PostKind.CHECKPOINT, checkpoint__isnull=True).order_by(
            "unit_id", "id").values_list("id", "unit_id"):
        free.setdefault(unit_id, []).append(post_id)
    new = []
    for c in rows:
        if free.get(c.unit_id):
            c.post_id = free[c.unit_id].pop(0)
        else:
            new.append(c)
    posts = Post.objects.bulk_create([
        Post(unit_id=c.unit_id, path=c.path, name=c.name, kind=PostKind.CHECKPOINT,
             start_hour=c.opens.hour if c.opens else 0, end_hour=c.closes.hour if c.closes else 24, required=1)
        for c in new], batch_size=2000)
    for c, post in zip(new, posts, strict=True):
        c.post_id = post.pk
    Checkpoint.objects.bulk_create(rows, batch_size=2000)
    out(f"checkpoints: {len(rows):,}")
    return len(rows)


def plan_day(day) -> None:
    """The checkpoints' share of the demo day (``bihuan.demo.day``), scheduled on its clock: arrivals registered
    at the district's first checkpoint through the morning (a car with a feverish passenger opens an alert),
    self-reports sent yesterday whose people are now past their verification deadline, and a household
    screening (拉网式排查) started yesterday with a quarter of its households answered at the door."""
    from bihuan.checkpoints import actions
    from bihuan.register.models import Household

    checkpoint = Checkpoint.objects.order_by("path", "id").first()
    if checkpoint is None:
        return
    counts = day.counts

    def people(n: int, arrival: dt.date) -> list[dict]:
        return [{"name": name, "id_number": id_number, "phone": phone, "origin": origin, "destination": address,
                 "temperature": "36.5", "health_code": "green", "test_hours": 24}
                for name, id_number, phone, origin, _day, address, _t, _c in day._push_rows(n, arrival)]

    def register(n: int, plate: str, fever: bool) -> None:
        travellers = people(n, timezone.localdate())
        if not travellers:
            return
        if fever:
            travellers[-1]["temperature"] = "38.3"
        actions.do_register(checkpoint, token=f"demo-{plate}", vehicle_type="car", plate=plate, people=travellers,
                            acting_user=day.user_for(day.by_id[checkpoint.unit_id]))
        counts["checkpoint_registrations"] += 1
        actions.push_pending(owner="demo-day")

    def self_reports() -> None:
        yesterday = timezone.localdate() - dt.timedelta(days=1)
        for p in people(3, yesterday):
            actions.do_submit_self_report({
                "name": p["name"], "id_number": p["id_number"], "phone": p["phone"], "origin": p["origin"],
                "destination": p["destination"], "transport": "train", "arrival_date": yesterday.isoformat()})
            counts["self_reports"] += 1

    def screening() -> None:
        campaign = actions.do_start_campaign(title="拉网式排查：全面摸清每户在家人员和返乡人员",
                                             since=timezone.localdate() - dt.timedelta(days=14),
                                             acting_user=day.office_user, reach_hours=24)
        for i, household in enumerate(Household.objects.filter(unit__level=6).order_by("id")[:40]):
            if i % 4 == 0:
                actions.do_answer_screening(campaign, household, {"present": "3"},
                                            acting_user=day.user_for(household.unit))
                counts["screening_answers"] += 1

    day.at(30, self_reports)
    day.at(29, screening)
    day.at(3.5, lambda: register(2, "晋L3A825", fever=False))
    day.at(2.2, lambda: register(4, "沪AD12345", fever=True))
    day.at(0.6, lambda: register(1, "晋LF67890", fever=False))
