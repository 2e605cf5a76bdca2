"""mstpn.sweep: one atomic result file per job, resume without redoing finished jobs, executors."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mstpn.errors import UserError
from mstpn.sweep import job_id, run_sweep

HERE = Path(__file__).resolve().parent


def calls(log: Path) -> list[int]:
    return [int(line) for line in log.read_text().split()] if log.exists() else []


def test_serial_sweep_writes_one_file_per_job_and_reruns_nothing(tmp_path):
    log = tmp_path / "calls.log"
    specs = [{"x": x, "log": str(log)} for x in range(4)]
    records = run_sweep("sweep_jobs:logged", specs, tmp_path / "out", executor="serial", progress=False)
    assert [r["result"]["x"] for r in records.values()] == [0, 1, 2, 3]
    assert sorted(p.stem for p in (tmp_path / "out").iterdir()) == sorted(records)
    assert list(records) == [job_id("sweep_jobs:logged", s) for s in specs]
    run_sweep("sweep_jobs:logged", specs, tmp_path / "out", executor="serial", progress=False)
    assert calls(log) == [0, 1, 2, 3]  # the second run found every result


def test_a_failed_sweep_resumes_with_only_the_missing_jobs(tmp_path, capsys):
    log, flag = tmp_path / "calls.log", tmp_path / "fail"
    flag.touch()
    specs = [{"x": x, "log": str(log), "fail_flag": str(flag)} for x in range(5)]
    with pytest.raises(RuntimeError):
        run_sweep("sweep_jobs:logged", specs, tmp_path / "out", executor="serial", progress=False)
    assert calls(log) == [0, 1]
    flag.unlink()
    damaged = tmp_path / "out" / f"{job_id('sweep_jobs:logged', specs[0])}.json"
    damaged.write_text("{not json")
    records = run_sweep("sweep_jobs:logged", specs, tmp_path / "out", executor="serial", progress=False)
    assert len(records) == 5
    assert calls(log) == [0, 1, 0, 2, 3, 4]  # job 0 again (damaged), job 1 not, the rest once
    assert "damaged" in capsys.readouterr().out


def test_local_executor_runs_in_worker_processes_with_the_threads_asked(tmp_path):
    specs = [{"x": x} for x in range(4)]
    records = run_sweep("sweep_jobs:square", specs, tmp_path, executor="local", workers=2,
                        threads_per_job=1, progress=False)
    results = [r["result"] for r in records.values()]
    assert [r["y"] for r in results] == [0, 1, 4, 9]
    assert all(r["threads"] == 1 for r in results)
    assert os.getpid() not in {r["pid"] for r in results}


def test_kill_9_then_resume_skips_finished_jobs(tmp_path):
    log, out = tmp_path / "calls.log", tmp_path / "out"
    specs = [{"x": x, "log": str(log), "sleep": 0.4} for x in range(8)]
    code = (f"import sys; sys.path.insert(0, {str(HERE)!r}); from mstpn.sweep import run_sweep; "
            f"run_sweep('sweep_jobs:logged', {specs!r}, {str(out)!r}, executor='local', workers=1, "
            "progress=False)")
    proc = subprocess.Popen([sys.executable, "-c", code], start_new_session=True)
    deadline = time.time() + 60
    while time.time() < deadline and len(list(out.glob("*.json"))) < 2:
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    finished = {p.stem for p in out.glob("*.json")}
    assert 2 <= len(finished) < 8
    before = calls(log)
    records = run_sweep("sweep_jobs:logged", specs, out, executor="serial", progress=False)
    assert len(records) == 8
    redone = calls(log)[len(before):]
    assert not {job_id("sweep_jobs:logged", specs[x]) for x in redone} & finished


def test_bad_input_is_refused_before_any_work(tmp_path):
    with pytest.raises(UserError, match="--executor"):
        run_sweep("sweep_jobs:square", [{"x": 1}], tmp_path / "a", executor="ray-ish", progress=False)
    with pytest.raises(UserError, match="cannot import"):
        run_sweep("no_such_module:f", [{"x": 1}], tmp_path / "b", progress=False)
    with pytest.raises(UserError, match="JSON-able"):
        job_id("sweep_jobs:square", {"x": object()})
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_a_wrong_ray_address_is_refused_quickly(tmp_path, monkeypatch):
    import mstpn.sweep as sweep

    monkeypatch.setattr(sweep, "RAY_CONNECT_TIMEOUT_S", 0.5)
    start = time.time()
    with pytest.raises(UserError, match="nothing answers"):
        run_sweep("sweep_jobs:square", [{"x": 1}], tmp_path, executor="ray", ray_address="127.0.0.1:9",
                  progress=False)
    assert time.time() - start < 5


def test_ray_executor_when_ray_is_installed(tmp_path, monkeypatch):
    pytest.importorskip("ray")
    monkeypatch.setenv("PYTHONPATH", str(HERE))  # the local Ray's workers import the job module
    specs = [{"x": x} for x in range(3)]
    records = run_sweep("sweep_jobs:square", specs, tmp_path, executor="ray", threads_per_job=1,
                        progress=False)
    assert [r["result"]["y"] for r in records.values()] == [0, 1, 4]
    assert all(r["result"]["threads"] == 1 for r in records.values())
