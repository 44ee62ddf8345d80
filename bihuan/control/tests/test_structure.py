"""Control reads loops but never writes them: every loop it opens, hands on or moves goes through
``bihuan.loops.engine`` (tests may still age a loop by hand)."""

import re
from pathlib import Path

CONTROL = Path(__file__).resolve().parents[1]
WRITES = re.compile(r"\bLoop(?:Event)?\.objects\b[^\n]*\.(?:create|update|delete|bulk_create|get_or_create)\(|"
                    r"\bLoopEvent\b|\bLoop\(|INSERT INTO\b[^\n]*loop|\.save\(\)[^\n]*#\s*loop")


def test_no_module_of_control_writes_a_loop_or_a_loop_event():
    offenders = []
    for path in CONTROL.rglob("*.py"):
        if "tests" in path.parts or "migrations" in path.parts:
            continue
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if WRITES.search(line):
                offenders.append(f"{path.relative_to(CONTROL)}:{n}: {line.strip()}")
    assert offenders == []


def test_the_structure_test_would_catch_a_write():
    assert WRITES.search('Loop.objects.filter(pk=1).update(state="closed")')
    assert WRITES.search("LoopEvent.objects.create(loop=loop)")
