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


def _run_example(name: str, *args: str) -> subprocess.CompletedProcess:
    command = [sys.executable, f"examples/{name}.py", *args]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return done


def test_device_basics_example():
    out = _run_example("device_basics", "--quick").stdout
    assert "tau at V_b -0.3 V" in out and "kept (long-term)" in out


def test_fit_your_traces_example(tmp_path):
    out = _run_example("fit_your_traces", "--quick", "--out", str(tmp_path)).stdout
    fitted = json.loads((tmp_path / "params.json").read_text())
    assert (tmp_path / "trace.csv").is_file() and "tau0 (s)" in out
    assert abs(fitted["tau0"] / 0.4 - 1) < 0.3  # the simulated device's tau0, within its d2d spread


def test_mstpn_sequence_model_example():
    out = _run_example("mstpn_sequence_model", "--quick").stdout
    assert "test accuracy after 5 steps" in out and "mJ in the devices" in out


def test_assess_device_example(tmp_path):
    out = _run_example("assess_device", "--quick", "--out", str(tmp_path)).stdout
    summary = json.loads((tmp_path / "assess.json").read_text())
    assert (tmp_path / "report.html").is_file() and summary["verdict"] in out
    assert summary["limiting_property"] == "tau0"  # the example's device forgets 3x faster
