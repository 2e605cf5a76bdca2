"""mstpn pong tolerance: points as sweep jobs, resume without replaying, figure and JSON, bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mstpn.cli import main

AGENT = Path(__file__).resolve().parents[2] / "checkpoints" / "pong_mstpn.pt"
QUICK = ["--draws", "1", "--games", "1", "--max-frames", "120", "--executor", "serial", "--no-progress"]


def test_tolerance_map_writes_points_figure_and_resumes(tmp_path, capsys):
    out = tmp_path / "tol"
    args = ["pong", "tolerance", str(AGENT), "--out", str(out), "--properties", "c2c_sigma,bias_range",
            *QUICK]
    assert main(args) == 0
    summary = json.loads((out / "tolerance.json").read_text())
    assert set(summary["properties"]) == {"c2c_sigma", "bias_range"}
    assert summary["properties"]["c2c_sigma"]["preset"] == 0.05
    assert len(summary["properties"]["c2c_sigma"]["points"]) == 6
    assert (out / "tolerance.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    jobs = {p.name: p.stat().st_mtime_ns for p in (out / "jobs").glob("*.json")}
    assert len(jobs) == 6 + 4
    assert main(args) == 0  # a rerun replays no point
    assert {p.name: p.stat().st_mtime_ns for p in (out / "jobs").glob("*.json")} == jobs
    assert "c2c_sigma (agent's 0.05)" in capsys.readouterr().out


@pytest.mark.parametrize(("extra", "message"), [
    (["--properties", "colour"], "--properties"), (["--draws", "0"], "--draws"),
    (["--seed", "1000"], "--seed"),
    (["--executor", "serial", "--threads-per-job", "0"], "--threads-per-job")])
def test_tolerance_bad_input_exit_2_nothing_written(tmp_path, capsys, extra, message):
    out = tmp_path / "tol"
    assert main(["pong", "tolerance", str(AGENT), "--out", str(out), "--no-progress", *extra]) == 2
    assert message in capsys.readouterr().err
    assert not (out / "tolerance.json").exists()
