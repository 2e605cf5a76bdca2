"""Pong training: smoke run, exact resume after kill -9, done masks, checkpoint safety, eval schema."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from mstpn.cli import main
from mstpn.errors import UserError
from mstpn.nn.stpn_step import STPNState
from mstpn.rl import a2c, ppo
from mstpn.rl.agent import ActorCritic, AgentConfig, mask_state
from mstpn.rl.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from mstpn.rl.evaluate import evaluate

TINY = {"num_envs": 2, "rollout": 8, "env_threads": 1, "torch_threads": 1, "log_every": 1}


def tiny_a2c(core: str = "mstpn", updates: int = 3, **extra) -> a2c.A2CConfig:
    fields = {**TINY, **extra}
    frames = updates * fields["num_envs"] * fields["rollout"] * 4
    return a2c.A2CConfig(frames=frames, agent=AgentConfig(core=core), **fields)


def metric_rows(run: Path) -> list[dict]:
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    for row in rows:
        row.pop("wall_s")
    return rows


def test_a2c_smoke_loss_finite_and_parameters_move(tmp_path):
    config = tiny_a2c(updates=3)
    torch.manual_seed(config.seed)  # the trainer seeds the same way, so this is its initial agent
    before = ActorCritic(config.agent).state_dict()
    a2c.train(config, tmp_path / "run", progress=False)
    rows = metric_rows(tmp_path / "run")
    assert len(rows) == 3
    assert all(torch.isfinite(torch.tensor(r["loss"])) for r in rows)
    after = load_checkpoint(tmp_path / "run" / "checkpoint.pt")["model"]
    moved = [k for k in ("core.weight", "core.plasticity", "core.bias_logit", "actor.weight")
             if not torch.equal(before[k], after[k])]
    assert moved == ["core.weight", "core.plasticity", "core.bias_logit", "actor.weight"]


def test_ppo_smoke(tmp_path):
    config = ppo.PPOConfig(frames=2 * 8 * 4, num_envs=2, rollout=8, minibatches=2, epochs=2,
                           env_threads=1, log_every=1, agent=AgentConfig(core="stpn"))
    summary = ppo.train(config, tmp_path / "run", progress=False)
    rows = metric_rows(tmp_path / "run")
    assert summary["updates"] == 1 and len(rows) == 1
    assert torch.isfinite(torch.tensor([rows[0]["loss"], rows[0]["clip_frac"]])).all()


def test_kill_9_then_resume_matches_uninterrupted_run(tmp_path):
    args = ["pong", "train", "--core", "mstpn", "--frames", str(10 * 2 * 20 * 4), "--num-envs", "2",
            "--env-threads", "1", "--checkpoint-every", "3", "--seed", "5", "--no-progress"]
    assert main([*args, "--out", str(tmp_path / "full")]) == 0

    killed = tmp_path / "killed"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "mstpn.cli", *args, "--out", str(killed)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    deadline = time.time() + 120
    while time.time() < deadline and not (killed / "checkpoint.pt").exists():
        time.sleep(0.05)
    time.sleep(0.3)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    saved = load_checkpoint(killed / "checkpoint.pt")
    assert 3 <= saved["update"] < 10, "the kill must land mid-run"
    assert main(["pong", "train", "--out", str(killed), "--resume", "--no-progress"]) == 0
    assert metric_rows(killed) == metric_rows(tmp_path / "full")


def test_done_mask_resets_synaptic_and_neuronal_state():
    state = STPNState(torch.ones(3, 2), torch.ones(3, 2, 5))
    masked = mask_state(state, torch.tensor([1.0, 0.0, 1.0]))
    assert masked.h[1].abs().sum() == 0 and masked.f[1].abs().sum() == 0
    assert torch.equal(masked.f[0], state.f[0]) and torch.equal(masked.h[2], state.h[2])


def test_corrupt_truncated_and_foreign_checkpoints_are_refused(tmp_path):
    path = tmp_path / "ck.pt"
    save_checkpoint(path, {"model": {"w": torch.arange(1000.0)}})
    assert load_checkpoint(path)["model"]["w"].sum() == sum(range(1000))
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    (tmp_path / "flipped.pt").write_bytes(bytes(data))
    (tmp_path / "cut.pt").write_bytes(bytes(data[: len(data) // 3]))
    torch.save({"weights": torch.zeros(3)}, tmp_path / "foreign.pt")
    for name, message in [("flipped.pt", "corrupt"), ("cut.pt", "corrupt"), ("foreign.pt", "not an mstpn"),
                          ("missing.pt", "no such")]:
        with pytest.raises(CheckpointError, match=message):
            load_checkpoint(tmp_path / name)


def test_resume_with_a_different_configuration_is_refused(tmp_path):
    a2c.train(tiny_a2c(updates=1), tmp_path / "run", progress=False)
    with pytest.raises(CheckpointError, match="num_envs"):
        a2c.train(tiny_a2c(updates=1, num_envs=4), tmp_path / "run", resume=True, progress=False)


def test_resume_with_a_larger_budget_extends_the_run_and_replans_the_lr(tmp_path, capsys):
    run, per_update = tmp_path / "run", 2 * 8 * 4
    a2c.train(tiny_a2c(updates=2), run, progress=False)
    assert main(["pong", "train", "--out", str(run), "--resume", "--frames", str(per_update),
                 "--no-progress"]) == 2
    assert "frames: a new budget must exceed the 128 frames" in capsys.readouterr().err
    assert main(["pong", "train", "--out", str(run), "--resume", "--frames", str(4 * per_update),
                 "--no-progress"]) == 0
    rows = metric_rows(run)
    assert [r["update"] for r in rows] == [1, 2, 3, 4]
    lr0 = a2c.A2CConfig().lr
    assert [r["lr"] for r in rows] == pytest.approx([lr0, lr0 / 2, lr0 / 2, lr0 / 4])
    assert json.loads((run / "config.json").read_text())["frames"] == 4 * per_update


def test_cli_flags_reach_the_run_configuration(tmp_path):
    run = tmp_path / "run"
    assert main(["pong", "train", "--core", "lstm", "--frames", "64", "--num-envs", "2", "--rollout", "4",
                 "--lr", "0.001", "--env-threads", "1", "--out", str(run), "--no-progress"]) == 0
    config = json.loads((run / "config.json").read_text())
    assert (config["rollout"], config["lr"], config["agent"]["core"]) == (4, 0.001, "lstm")
    assert load_checkpoint(run / "checkpoint.pt")["update"] == 64 // (2 * 4 * 4)


def test_export_writes_a_smaller_agent_file_that_eval_plays_and_its_curve(tmp_path, capsys):
    a2c.train(tiny_a2c(core="lstm", updates=2), tmp_path / "run", progress=False)
    agent = tmp_path / "agents" / "pong_lstm.pt"
    assert main(["pong", "export", str(tmp_path / "run"), "--out", str(agent)]) == 0
    assert (tmp_path / "agents" / "pong_lstm_curve.png").stat().st_size > 1000
    saved = load_checkpoint(agent)
    assert "optimizer" not in saved and saved["frames"] == 2 * 2 * 8 * 4
    assert saved["provenance"]["resume"].endswith("--resume")
    assert agent.stat().st_size < (tmp_path / "run" / "checkpoint.pt").stat().st_size
    assert main(["pong", "eval", str(agent), "--episodes", "1", "--json", str(tmp_path / "e.json")]) == 0
    assert main(["pong", "export", str(tmp_path / "nothing"), "--out", str(tmp_path / "x.pt")]) == 2
    assert "no such checkpoint" in capsys.readouterr().err


def test_existing_run_is_not_overwritten_and_resume_needs_a_checkpoint(tmp_path, capsys):
    a2c.train(tiny_a2c(updates=1), tmp_path / "run", progress=False)
    assert main(["pong", "train", "--frames", "64", "--num-envs", "2", "--out", str(tmp_path / "run"),
                 "--no-progress"]) == 2
    assert "--resume" in capsys.readouterr().err
    assert main(["pong", "train", "--out", str(tmp_path / "none"), "--resume"]) == 2


def test_eval_json_schema_and_gif(tmp_path):
    a2c.train(tiny_a2c(core="lstm", updates=1), tmp_path / "run", progress=False)
    out = tmp_path / "eval.json"
    gif = tmp_path / "game.gif"
    code = main(["pong", "eval", str(tmp_path / "run" / "checkpoint.pt"), "--episodes", "1",
                 "--json", str(out), "--gif", str(gif), "--gif-max-frames", "20"])
    assert code == 0
    result = json.loads(out.read_text())
    assert set(result) >= {"mean_score", "scores", "episode_frames", "episode_steps"}
    assert len(result["scores"]) == 1 and -21 <= result["mean_score"] <= 21
    assert result["episode_frames"] == [4 * s for s in result["episode_steps"]]
    assert gif.read_bytes()[:6] == b"GIF89a"
    assert evaluate(tmp_path / "run" / "checkpoint.pt", 1, progress=False)["scores"] == result["scores"]


def test_mstpn_step_time_follows_the_frame_skip(tmp_path):
    with pytest.raises(UserError, match=r"agent\.mstpn\.dt_step"):
        tiny_a2c(frame_skip=1)  # the default dt_step is 4 frames at 60 Hz
    run = tmp_path / "run"
    assert main(["pong", "train", "--frames", "16", "--num-envs", "2", "--rollout", "8", "--frame-skip", "1",
                 "--env-threads", "1", "--out", str(run), "--no-progress"]) == 0
    config = json.loads((run / "config.json").read_text())
    assert config["agent"]["mstpn"]["dt_step"] == pytest.approx(1 / 60)
