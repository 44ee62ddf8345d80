"""``python -m bench <name> [--scale tiny|demo|yaodu]``."""

from __future__ import annotations

import argparse
import importlib
from pathlib import Path

from bench.common import DEFAULT_SCALE, SCALES, setup

# week_activity: data for scoring and district-hour; district_hour_users: district-hour's Locust side
NOT_BENCHMARKS = {"__init__", "__main__", "common", "week_activity", "district_hour_users"}


def available() -> list[str]:
    here = Path(__file__).resolve().parent
    return sorted(p.stem.replace("_", "-") for p in here.glob("*.py") if p.stem not in NOT_BENCHMARKS)


def main(argv: list[str] | None = None) -> None:
    names = available()
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="Run one benchmark on the database DATABASE_URL names (default: a SQLite file of its "
                    "own, var/bench-<scale>.sqlite3). The last line printed is the JSON result.",
    )
    parser.add_argument("name", choices=names, help="the benchmark to run")
    parser.add_argument("--scale", choices=SCALES, default=DEFAULT_SCALE,
                        help=f"size of the district to run on (default: {DEFAULT_SCALE})")
    args = parser.parse_args(argv)
    setup(args.scale)
    module = importlib.import_module(f"bench.{args.name.replace('-', '_')}")
    module.run(args.scale)


if __name__ == "__main__":
    main()
