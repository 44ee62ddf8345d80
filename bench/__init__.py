"""Benchmarks: ``python -m bench <name> [--scale tiny|demo|yaodu]`` from the repository root.

A benchmark is a module ``bench/<name>.py`` (dashes in the name become underscores) with a function
``run(scale: str) -> dict`` that imports Django models inside the function, builds what it needs with
``bench.common.ensure_scale`` and ends with ``bench.common.report(...)``, which prints the one-line JSON
result (see DESIGN.md, "Benchmarks"). Shared code lives in ``bench/common.py``.
"""
