"""The push-import benchmark at its smallest scale: it runs end to end and prints its JSON line with peak_mb."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.slow


def test_push_import_benchmark_prints_its_result_with_peak_memory(tmp_path):
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{tmp_path / 'bench.sqlite3'}", "BIHUAN_DEMO": "1"}
    done = subprocess.run([sys.executable, "-m", "bench", "push-import", "--scale", "tiny"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["bench"] == "push-import" and result["n"] == 3000
    assert result["seconds"] > 0 and result["baseline_seconds"] > 0 and 0 < result["peak_mb"] < 600
    assert "verification loops opened" in done.stdout
