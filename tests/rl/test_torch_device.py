"""`--device` for Pong training and evaluation: names checked, CUDA refused clearly where there is none,
the device free to change on resume. Runs on the CPU; the CUDA test at the end runs only with a GPU."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from mstpn.cli import main
from mstpn.errors import UserError
from mstpn.rl import a2c
from mstpn.rl.agent import AgentConfig
from mstpn.rl.checkpoint import load_checkpoint, save_checkpoint
from mstpn.rl.common import resolve_device
from mstpn.rl.evaluate import evaluate
from mstpn.tasks.pong import ATARI_HZ, step_duration_s

PER_UPDATE = 2 * 8 * 4
TRAIN = ["pong", "train", "--core", "lstm", "--num-envs", "2", "--rollout", "8", "--env-threads", "1",
         "--no-progress"]


@pytest.fixture
def no_cuda(monkeypatch):
    """This machine without CUDA, whatever it has."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)


def test_device_names(monkeypatch):
    assert resolve_device("cpu") == torch.device("cpu")
    for bad in ("tpu", "gpu", "CPU", "cuda:", "cuda:x", "cuda:-1", ""):
        with pytest.raises(UserError, match=r"--device: must be cpu, cuda or cuda:N"):
            resolve_device(bad)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    with pytest.raises(UserError, match=r"--device cuda:3: this machine has 1 CUDA device\(s\)"):
        resolve_device("cuda:3")
    with pytest.raises(UserError, match=r"^device: must be cpu, cuda or cuda:N"):
        a2c.A2CConfig(device="tpu")


def test_cuda_without_cuda_is_a_clear_error(no_cuda):
    for name in ("cuda", "cuda:0"):
        with pytest.raises(UserError, match=rf"^--device {name}: CUDA is not available on this machine "
                                            r"\(torch [\d.]+, .*build\); use --device cpu$"):
            resolve_device(name)


def test_step_duration_is_frames_at_60_hz():
    assert step_duration_s(4) == 4 / ATARI_HZ == pytest.approx(1 / 15)
    assert step_duration_s(1) == pytest.approx(1 / 60)


@pytest.mark.parametrize("device", ["cuda", "tpu"])
def test_cli_train_refuses_a_device_it_cannot_use_and_writes_nothing(tmp_path, capsys, no_cuda, device):
    run = tmp_path / "run"
    assert main([*TRAIN, "--frames", str(PER_UPDATE), "--device", device, "--out", str(run)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("mstpn: error: ") and err.count("\n") == 1
    assert ("--device cuda: CUDA is not available" if device == "cuda"
            else "--device: must be cpu, cuda or cuda:N") in err
    assert not run.exists()


def test_explicit_cpu_trains_evaluates_and_eval_refuses_cuda(tmp_path, capsys, no_cuda):
    run, out = tmp_path / "run", tmp_path / "eval.json"
    assert main([*TRAIN, "--frames", str(PER_UPDATE), "--device", "cpu", "--out", str(run)]) == 0
    assert json.loads((run / "config.json").read_text())["device"] == "cpu"
    ckpt = run / "checkpoint.pt"
    assert load_checkpoint(ckpt)["rng"]["actions_device"] == "cpu"
    assert main(["pong", "eval", str(ckpt), "--episodes", "1", "--device", "cuda", "--json", str(out)]) == 2
    assert "--device cuda: CUDA is not available" in capsys.readouterr().err and not out.exists()
    assert main(["pong", "eval", str(ckpt), "--episodes", "1", "--device", "cpu", "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    assert result["torch_device"] == "cpu" and len(result["scores"]) == 1


def tiny_mstpn(frames: int) -> a2c.A2CConfig:
    """A small eager m-STPN run that checkpoints (and restarts its games) every update."""
    agent = AgentConfig(core="mstpn", hidden_size=8, mstpn={"compile": "never"})
    return a2c.A2CConfig(frames=frames, num_envs=2, rollout=8, env_threads=1, log_every=1,
                         checkpoint_every=1, agent=agent)


def metric_rows(run: Path) -> list[dict]:
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    return [{k: v for k, v in row.items() if k != "wall_s"} for row in rows]


def test_a_run_stored_for_cuda_resumes_on_cpu_exactly(tmp_path, capsys, no_cuda):
    """The device is excluded from the compatibility check, and the m-STPN's noise pools (drawn on the
    CPU, kept on the run's device) follow the run to its new device without changing the noise."""
    full, moved = tmp_path / "full", tmp_path / "moved"
    a2c.train(tiny_mstpn(2 * PER_UPDATE), full, progress=False)
    a2c.train(tiny_mstpn(PER_UPDATE), moved, progress=False)
    saved = load_checkpoint(moved / "checkpoint.pt")
    saved["config"]["device"] = "cuda:1"  # as if it had been trained on a second GPU
    noise = saved["model"]["core._extra_state"]["noise"]  # the m-STPN saves its noise with its weights
    assert noise["pool_origin"] is not None
    noise["pool_origin"]["device"] = "cuda:1"
    save_checkpoint(moved / "checkpoint.pt", saved)
    resume = ["pong", "train", "--out", str(moved), "--resume", "--frames", str(2 * PER_UPDATE),
              "--no-progress"]
    assert main(resume) == 2  # the stored device, and this machine has none
    assert "--device cuda:1: CUDA is not available" in capsys.readouterr().err
    assert main([*resume, "--device", "cpu"]) == 0
    assert "device: cuda:1 -> cpu" in capsys.readouterr().out
    assert json.loads((moved / "config.json").read_text())["device"] == "cpu"
    assert metric_rows(moved) == metric_rows(full)


def test_a_cuda_action_sampler_is_reseeded_on_cpu(tmp_path, capsys):
    """A CUDA generator's state does not fit a CPU one: the sampler is reseeded and the run says so."""
    run = tmp_path / "run"
    a2c.train(a2c.A2CConfig(frames=PER_UPDATE, num_envs=2, rollout=8, env_threads=1, log_every=1,
                            agent=AgentConfig(core="lstm")), run, progress=False)
    saved = load_checkpoint(run / "checkpoint.pt")
    saved["rng"]["actions_device"] = "cuda"
    save_checkpoint(run / "checkpoint.pt", saved)
    assert main(["pong", "train", "--out", str(run), "--resume", "--frames", str(2 * PER_UPDATE),
                 "--device", "cpu", "--no-progress"]) == 0
    assert "the action sampler is reseeded" in capsys.readouterr().out
    assert load_checkpoint(run / "checkpoint.pt")["update"] == 2


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_run_resumes_on_cpu_and_plays_on_cuda(tmp_path: Path):
    run = tmp_path / "run"
    assert main([*TRAIN, "--core", "mstpn", "--frames", str(PER_UPDATE), "--device", "cuda",
                 "--out", str(run)]) == 0
    saved = load_checkpoint(run / "checkpoint.pt")
    assert saved["rng"]["actions_device"] == "cuda" and "cuda" in saved["rng"]
    assert main(["pong", "train", "--out", str(run), "--resume", "--frames", str(2 * PER_UPDATE),
                 "--device", "cpu", "--no-progress"]) == 0
    assert main(["pong", "train", "--out", str(run), "--resume", "--frames", str(3 * PER_UPDATE),
                 "--device", "cuda", "--no-progress"]) == 0
    assert evaluate(run / "checkpoint.pt", 1, progress=False, device="cuda")["torch_device"] == "cuda"
