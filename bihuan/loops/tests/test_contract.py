"""Only bihuan/loops writes loop rows: the guard the suite runs under catches any other writer."""

import re

import pytest
from django.db import connection

from bihuan.loops import contract, engine
from bihuan.loops.models import Loop
from bihuan.register.models import Unit


def run_as(module_path: str, source: str, **names):
    """Run ``source`` as if it were code of ``module_path`` (a file under bihuan/), under the guard."""
    code = compile(source, str(contract.PACKAGE / module_path), "exec")
    with connection.execute_wrapper(contract.guard):
        exec(code, {"Loop": Loop, **names})


@pytest.fixture
def loop(district):
    engine.open_for_units(kind="test.contract", subject_id=1, title="t", units=Unit.objects.filter(pk=district.grid_a.pk),
                          originator_unit=district.office)
    return Loop.objects.get(kind="test.contract")


@pytest.mark.parametrize("source", [
    "Loop.objects.filter(pk=loop.pk).update(title='x')",
    "loop.title = 'x'; loop.save()",
    "Loop.objects.filter(pk=loop.pk).delete()",
    "LoopEvent.objects.create(loop=loop, action='x')",
    "cursor = connection.cursor(); cursor.execute('UPDATE loops_loop SET title = %s', ['x'])",
])
def test_a_module_outside_the_engine_cannot_write_loop_rows(loop, source):
    from bihuan.loops.models import LoopEvent

    with pytest.raises(contract.LoopWriteOutsideEngine, match="bihuan/pushes/routing.py writes loop rows"):
        run_as("pushes/routing.py", source, loop=loop, LoopEvent=LoopEvent, connection=connection)


def test_the_engine_and_reads_pass_the_guard(loop):
    run_as("loops/engine.py", "Loop.objects.filter(pk=loop.pk).update(title='y')", loop=loop)
    run_as("pushes/report.py", "list(Loop.objects.filter(pk=loop.pk))", loop=loop)
    with connection.execute_wrapper(contract.guard):
        engine.transition(loop, "acknowledged", actor=None)
    assert Loop.objects.get(pk=loop.pk).title == "y"


# The same rule read from the source, for code paths no test runs.
WRITES = re.compile(r"\bLoop(?:Event)?\.objects\b[^\n]*\.(?:create|bulk_create|get_or_create|update_or_create|update|"
                    r"delete)\(|\bLoop(?:Event)?\(|(?:INSERT INTO|UPDATE|DELETE FROM) \{(?:loop|event)[a-z_]*\}")


def test_no_module_outside_the_engine_writes_loop_rows_in_its_source():
    offenders = []
    for path in contract.PACKAGE.rglob("*.py"):
        parts = path.relative_to(contract.PACKAGE).parts
        if parts[0] == "loops" or "tests" in parts or "migrations" in parts or path.name == "testing.py":
            continue
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if WRITES.search(line):
                offenders.append(f"{'/'.join(parts)}:{n}: {line.strip()}")
    assert offenders == []


def test_the_source_scan_would_catch_a_write():
    assert WRITES.search('Loop.objects.filter(pk=1).update(state="closed")')
    assert WRITES.search("LoopEvent.objects.create(loop=loop)")
    assert WRITES.search('cur.execute(f"INSERT INTO {loop_t} (kind) VALUES (%s)")')
    assert not WRITES.search("Loop.objects.filter(pk=1).first()")
