"""Only bihuan/loops writes loop rows: the guard the suite runs under catches any other writer."""

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
