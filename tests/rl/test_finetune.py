"""Fine-tuning from a trained agent: init_from copies the learned weights only (devices drawn anew for
the new device), refuses agents that do not fit, and feeds `pong tolerance` and `device assess`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from mstpn.cli import main
from mstpn.devices.params import srtio3_weilenmann2024
from mstpn.errors import UserError
from mstpn.rl import a2c
from mstpn.rl.agent import ActorCritic, AgentConfig
from mstpn.rl.checkpoint import load_checkpoint
from mstpn.rl.evaluate import DEVICE_BUFFERS, load_agent
from mstpn.rl.finetune import FINETUNE_LR, finetune
from mstpn.rl.tolerance import evaluate_point, tolerance_specs
from mstpn.rl.warmstart import copy_learned
from mstpn.sweep import job_id

ROOT = Path(__file__).resolve().parents[2]
TOLERANCE = ROOT / "results" / "pong" / "tolerance" / "tolerance.json"
TINY = {"num_envs": 2, "rollout": 8, "env_threads": 1, "torch_threads": 1, "log_every": 1,
        "validate_every": 0}
PER_UPDATE = 2 * 8 * 4  # emulator frames of one tiny update
LEARNED = ("trunk.0.weight", "core.weight", "core.bias", "core.bias_logit", "core.plasticity", "actor.weight",
           "critic.weight")


def tiny_config(hidden: int = 8, core: str = "mstpn", updates: int = 1, **extra) -> a2c.A2CConfig:
    return a2c.A2CConfig(frames=updates * PER_UPDATE, agent=AgentConfig(core=core, hidden_size=hidden),
                         **{**TINY, **extra})


@pytest.fixture(scope="module")
def base(tmp_path_factory) -> Path:
    """A tiny trained m-STPN agent (H = 8, one update) on the preset device."""
    out = tmp_path_factory.mktemp("base") / "run"
    a2c.train(tiny_config(), out, progress=False)
    return out / "checkpoint.pt"


def test_finetune_moves_the_weights_a_little_keeps_shapes_and_carries_the_new_device(base, tmp_path):
    device = srtio3_weilenmann2024().replace(tau0=2.0, d2d_sigma=0.3, c2c_sigma=0.1)
    path = finetune(base, tmp_path / "ft", frames=3 * PER_UPDATE, device_params=device, seed=3,
                    torch_threads=1)
    before, after = load_checkpoint(base)["model"], load_checkpoint(path)["model"]
    assert {k: v.shape for k, v in after.items() if k != "core._extra_state"} == \
        {k: v.shape for k, v in before.items() if k != "core._extra_state"}
    for key in LEARNED:  # started from the stored weights, moved by the small learning rate
        change = (after[key] - before[key]).abs().max().item()
        assert 0 < change < 30 * FINETUNE_LR, key
    saved = load_checkpoint(path)
    assert saved["agent_config"]["device_params"] == device.to_dict()
    assert saved["config"]["init_from"] == str(base) and saved["config"]["lr"] == FINETUNE_LR
    assert saved["frames"] == 3 * PER_UPDATE and saved["config"]["validate_every"] == 0
    assert saved["provenance"]["finetuned_from"] == str(base)
    # the devices are drawn from the new parameters: the chip load_agent draws for them (draw = seed)
    redrawn = load_agent(base, device, draw=3)[0].state_dict()
    for key in DEVICE_BUFFERS:
        assert torch.equal(after[f"core.{key}"], redrawn[f"core.{key}"]), key
        assert not torch.equal(after[f"core.{key}"], before[f"core.{key}"]), key
    agent, _ = load_agent(path)
    assert agent.core.params == device


def test_init_from_refuses_an_agent_of_another_shape_naming_the_field(base, tmp_path):
    for config, detail in [(tiny_config(hidden=16, init_from=str(base)), "hidden 8 there vs 16 here"),
                           (tiny_config(core="stpn", init_from=str(base)), "core 'mstpn' there vs 'stpn'")]:
        with pytest.raises(UserError) as info:
            a2c.train(config, tmp_path / "run", progress=False)
        message = str(info.value)
        assert message.startswith(f"init_from {base}: the stored agent does not fit") and detail in message
        assert "agent.device_params" in message and "\n" not in message
        assert not (tmp_path / "run").exists()  # refused before anything is written


def test_init_from_keeps_the_bias_voltages_in_a_narrower_bias_range(base):
    torch.manual_seed(0)
    narrow = ActorCritic(AgentConfig(core="mstpn", hidden_size=8, mstpn={"v_b_min": -0.3, "v_b_max": 0.3}))
    copy_learned(narrow, base)
    trained, _ = load_agent(base)
    want = trained.core.bias_voltage().clamp(-0.3, 0.3)
    assert torch.allclose(narrow.core.bias_voltage(), want, atol=1e-5)
    assert torch.equal(narrow.core.weight, trained.core.weight)


def test_pong_train_init_from_flag_starts_from_the_agent_and_is_kept_on_resume(base, tmp_path, capsys):
    run = tmp_path / "run"
    args = ["pong", "train", "--frames", str(PER_UPDATE), "--num-envs", "2", "--rollout", "8", "--lr", "1e-4",
            "--env-threads", "1", "--validate-every", "0", "--out", str(run), "--no-progress"]
    assert main([*args, "--init-from", str(base)]) == 2  # the flag's agent is H = 8, the default is 64
    assert "init_from" in capsys.readouterr().err and not run.exists()
    agent = ROOT / "checkpoints" / "pong_mstpn.pt"
    assert main([*args, "--init-from", str(agent)]) == 0
    assert f"init_from: learned weights of {agent}" in capsys.readouterr().out
    assert json.loads((run / "config.json").read_text())["init_from"] == str(agent)
    assert main(["pong", "train", "--out", str(run), "--resume", "--init-from", str(base)]) == 2
    assert "--init-from" in capsys.readouterr().err


def test_tolerance_job_ids_follow_the_finetune_budget(base):
    plain = tolerance_specs(base, ["c2c_sigma"], 1, 1, 0, 120)
    assert plain == tolerance_specs(base, ["c2c_sigma"], 1, 1, 0, 120, finetune_frames=0)
    assert "finetune_frames" not in plain[0]  # maps without fine-tuning keep the ids they had
    ids = [{job_id("mstpn.rl.tolerance:evaluate_point", s)
            for s in tolerance_specs(base, ["c2c_sigma"], 1, 1, 0, 120, finetune_frames=n)}
           for n in (0, 64, 128)]
    assert len(ids[0]) == 6 and not (ids[0] & ids[1]) and not (ids[1] & ids[2]) and not (ids[0] & ids[2])
    with pytest.raises(UserError, match="--finetune-frames: must be an integer >= 0"):
        tolerance_specs(base, ["c2c_sigma"], 1, 1, 0, 120, finetune_frames=-1)


def test_tolerance_point_fine_tunes_on_its_chip_then_plays(base):
    spec = tolerance_specs(base, ["bias_range"], 1, 1, 0, 120, finetune_frames=PER_UPDATE)[0]
    result = evaluate_point(spec)
    assert result["finetune"]["frames"] == PER_UPDATE and -21 <= result["mean_score"] <= 21
    assert len(result["scores"]) == 1


def test_tolerance_cli_refuses_negative_finetune_frames(base, tmp_path, capsys):
    out = tmp_path / "tol"
    assert main(["pong", "tolerance", str(base), "--out", str(out), "--finetune-frames", "-5",
                 "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "--finetune-frames" in err and len(err.strip().splitlines()) == 1
    assert not out.exists()


@pytest.fixture(scope="module")
def device_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("device") / "params.json"
    path.write_text(json.dumps(srtio3_weilenmann2024().replace(tau0=0.8).to_dict()))
    return path


def test_assess_finetune_reports_the_score_before_and_after(base, device_file, tmp_path):
    out = tmp_path / "assess"
    assert main(["device", "assess", str(device_file), "--out", str(out), "--games", "1", "--max-frames",
                 "120", "--finetune-frames", str(PER_UPDATE), "--checkpoint", str(base), "--tolerance",
                 str(TOLERANCE), "--no-progress"]) == 0
    summary = json.loads((out / "assess.json").read_text())
    assert summary["played"] is not None and summary["played_finetuned"] is not None
    assert summary["played_finetuned"]["finetune"]["frames"] == PER_UPDATE
    assert "after fine-tuning 64 frames" in summary["verdict"]
    md = (out / "report.md").read_text()
    assert "| as trained |" in md and "| fine-tuned 64 frames |" in md
    tuned = load_checkpoint(out / "finetuned_agent.pt")
    assert tuned["agent_config"]["device_params"]["tau0"] == 0.8


def test_assess_refuses_bad_finetune_frames_writing_nothing(device_file, tmp_path, capsys):
    for extra in (["--finetune-frames", "-1"], ["--finetune-frames", "64", "--games", "0"]):
        out = tmp_path / "assess"
        assert main(["device", "assess", str(device_file), "--out", str(out), "--tolerance", str(TOLERANCE),
                     "--no-progress", *extra]) == 2
        err = capsys.readouterr().err
        assert "--finetune-frames" in err and len(err.strip().splitlines()) == 1
        assert not out.exists()
