"""The situation board's registry: what is behind now, and where.

Each capability contributes its figures through a *provider*: a function decorated with ``@provider`` in a module
named ``today.py`` of its app (found by ``discover``, so adding a capability touches no shared file). A provider
gets an ``Area`` — a unit's subtree (a path range), the path length of the units one row below it on the board,
and the moment — and returns ``Figure``s: a count over the subtree, the same count per row unit (one
``GROUP BY SUBSTR(path, …)``: set-based, one query per figure), the link to the list behind it, and a short line
saying what to do. ``Area.count`` runs such a query; a provider hands it the FROM and WHERE of its figure.

Rows: the board of the district lists the townships directly (the command office they hang under is a layer no
commander wants to click through); the office's own loops and the departments' show as one row apart.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from django.db import connection

PROVIDERS: list[Callable[[Area], list[Figure]]] = []
_discovered = False


@dataclass(frozen=True)
class Figure:
    key: str  # "<app>.<what>", stable (tests and the wall display refer to it)
    label: str  # what is counted, in the user's language
    count: int
    url: str  # the list behind the figure
    by_row: dict[str, int] = field(default_factory=dict)  # row unit's path -> count
    hint: str = ""  # what it means or what to do about it
    bad: bool = True  # a figure that should be 0 (shown red when it is not)
    order: int = 50  # place on the board (lower first)


@dataclass(frozen=True)
class Area:
    """The subtree a board covers: ``path`` <= unit path < ``upper``; rows are the units whose paths are
    ``row_len`` long (0: no rows)."""

    unit_id: int
    path: str
    upper: str
    row_len: int
    now: datetime

    def count(self, table_sql: str, path_col: str, where: str = "1 = 1", params: list | tuple = ()) -> tuple[int, dict]:
        """``SELECT COUNT(*) … GROUP BY`` the row prefix of ``path_col`` within the area: (total, {row path: n})."""
        key = f"SUBSTR({path_col}, 1, {self.row_len})" if self.row_len else "''"
        sql = (f"SELECT {key}, COUNT(*) FROM {table_sql} WHERE {path_col} >= %s AND {path_col} < %s "
               f"AND ({where}) GROUP BY 1")
        with connection.cursor() as cur:
            cur.execute(sql, [self.path, self.upper, *params])
            rows = dict(cur.fetchall())
        return sum(rows.values()), rows


def provider(fn: Callable[[Area], list[Figure]]) -> Callable[[Area], list[Figure]]:
    """Register ``fn(area) -> [Figure]`` (in an app's ``today.py``)."""
    if fn not in PROVIDERS:
        PROVIDERS.append(fn)
    return fn


def discover() -> list[Callable[[Area], list[Figure]]]:
    """Import every installed app's ``today`` module once (their ``@provider`` functions register)."""
    global _discovered
    if not _discovered:
        from django.utils.module_loading import autodiscover_modules

        autodiscover_modules("today")
        _discovered = True
    return PROVIDERS


def figures(area: Area) -> list[Figure]:
    """Every provider's figures for ``area``, in board order."""
    out: list[Figure] = []
    for fn in discover():
        out += fn(area)
    return sorted(out, key=lambda f: (f.order, f.key))


def table(model) -> str:
    return connection.ops.quote_name(model._meta.db_table)
