"""The engine's contract, enforced: only ``bihuan/loops`` writes loop rows.

Modules open, move and annotate loops through ``bihuan.loops.engine``; none inserts, updates or deletes
``Loop`` / ``LoopEvent`` rows itself. ``guard`` is a database execute wrapper that the test suite installs
around every test (see the root ``conftest.py``): a statement that writes a loop table, whose nearest
application frame is not in ``bihuan/loops``, fails the test that ran it. Tests may arrange loop rows
themselves (a test file is not application code), and so may migrations.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

from .models import Loop, LoopEvent

PACKAGE = Path(__file__).resolve().parents[1]  # bihuan/
ENGINE = Path(__file__).resolve().parent  # bihuan/loops/
_TABLES = "|".join(re.escape(m._meta.db_table) for m in (Loop, LoopEvent))
WRITES_LOOPS = re.compile(rf'^\s*(?:WITH\b.*?\)\s*)?(?:INSERT\s+INTO|UPDATE|DELETE\s+FROM)\s+"?(?:{_TABLES})"?\b',
                          re.IGNORECASE | re.DOTALL)


class LoopWriteOutsideEngine(AssertionError):
    pass


# The one exception, with its reason: emptying a whole demo database is not work on a loop.
EXEMPT = {PACKAGE / "demo" / "generate.py": "generate --reset empties every table that points at the register"}
CORE = PACKAGE / "core"  # shared tools (worker leases, bulk updates): the module that calls them is the writer


def writer_of(frame) -> Path | None:
    """The innermost application file on the stack, past the shared tools of ``bihuan/core`` (None if a test,
    a migration or only library code wrote)."""
    while frame is not None:
        path = Path(frame.f_code.co_filename).resolve()
        if path.is_relative_to(PACKAGE) and not path.is_relative_to(CORE):
            parts = path.relative_to(PACKAGE).parts
            if "tests" in parts or "migrations" in parts or path.name in ("testing.py", "conftest.py"):
                return None
            return path
        frame = frame.f_back
    return None


def guard(execute, sql, params, many, context):
    if isinstance(sql, str) and WRITES_LOOPS.match(sql):
        path = writer_of(sys._getframe(1))
        if path is not None and not path.is_relative_to(ENGINE) and path not in EXEMPT:
            raise LoopWriteOutsideEngine(
                f"{path.relative_to(PACKAGE.parent)} writes loop rows; only bihuan/loops may "
                f"(use bihuan.loops.engine): {sql[:120]}")
    return execute(sql, params, many, context)
