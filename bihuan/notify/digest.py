"""Lines of reminder and escalation digests, naming units by name (one query for all the units named)."""

from __future__ import annotations

from collections.abc import Iterable

DIGEST_LINES = 50  # the most loops listed in one digest; the subject carries the full count


def unit_names(unit_ids: Iterable[int]) -> dict[int, str]:
    from bihuan.register.models import Unit

    ids = {i for i in unit_ids if i is not None}
    return dict(Unit.objects.filter(pk__in=ids).values_list("id", "name")) if ids else {}


def loop_lines(loops, limit: int = DIGEST_LINES, names: dict[int, str] | None = None) -> list[str]:
    """``- <title> · <owner unit's name>`` for each loop (the first ``limit``), then ``… 另有 N 项`` if cut.
    A unit that no longer exists is named by its id. One query, whatever the number of loops — or none when
    ``names`` (from ``unit_names`` over every loop of a reminder round) is given, so a round with many
    digests still reads the names once."""
    loops = list(loops)
    shown = loops[:limit]
    if names is None:
        names = unit_names(lp.owner_unit_id for lp in shown)
    lines = [f"- {lp.title} · {names.get(lp.owner_unit_id, lp.owner_unit_id)}" for lp in shown]
    if len(loops) > limit:
        lines.append(f"… 另有 {len(loops) - limit} 项")
    return lines
