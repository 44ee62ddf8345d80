"""Households in the order of the buildings: room 102 before 1002, building 2 before 10 — one rule, in Python
(``natural``, ``household_key``) and in SQL (``household_order``: a number-like text sorts by its length first,
which is the natural order for the plain numbers rooms, entrances and buildings are)."""

from __future__ import annotations

import re

from django.db.models.functions import Length

PARTS = ("building", "entrance", "room", "house_number")


def natural(text: str | None) -> tuple:
    """Numbers compared as numbers: ``natural("102室") < natural("1002室")``."""
    return tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in re.split(r"(\d+)", text or "") if p)


def household_key(h) -> tuple:
    """Sort key of a household (or anything with building, entrance, room, house_number and id)."""
    return (*(natural(getattr(h, part, "")) for part in PARTS), getattr(h, "id", 0) or 0)


def household_order(prefix: str = "") -> list:
    """``order_by`` arguments giving the same order in the database (``prefix``: ``"household__"`` from a row
    that points at a household)."""
    out: list = []
    for part in PARTS:
        out += [Length(prefix + part), prefix + part]
    return [*out, prefix + "id"]
