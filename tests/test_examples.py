"""The scripts in examples/ run as a user would run them (tiny budgets)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_ray_sweep_example_runs_locally(tmp_path):
    out = tmp_path / "sweep"
    command = [sys.executable, "-m", "examples.ray_sweep", "--executor", "serial", "--out", str(out)]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    records = [json.loads(p.read_text()) for p in out.glob("*.json")]
    assert len(records) == 7 and "tau 100 s" in done.stdout
