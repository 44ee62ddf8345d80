"""Demo checkpoints (卡口): a highway exit or bus station at every town or township, an entrance at every
village, a gate at one compound in five, each with its forces post; deterministic with the seed, one bulk insert whatever the preset."""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Callable

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
