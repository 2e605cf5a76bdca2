"""`mstpn pong train --resume`: every flag given either applies or is refused, never silently ignored."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mstpn.cli import _new_run_config, build_parser, main
from mstpn.devices.params import srtio3_weilenmann2024
from mstpn.errors import UserError
from mstpn.rl import a2c, ppo
from mstpn.rl.agent import AgentConfig
from mstpn.rl.checkpoint import load_checkpoint
from mstpn.rl.resume import RESUME_FLAGS, resume_changes

PER_UPDATE = 2 * 8 * 4  # frames of one update of the tiny runs: 2 games x 8 steps x frame skip 4
STORED = {**a2c.A2CConfig(num_envs=2, rollout=8).to_dict(), "algo": "a2c"}


def tiny_run(out: Path, core: str = "lstm", updates: int = 1, **extra) -> Path:
    """Train a tiny A2C run (one thread, a few updates) in ``out``; returns ``out``."""
    fields = {"num_envs": 2, "rollout": 8, "env_threads": 1, "torch_threads": 1, "log_every": 1, **extra}
    a2c.train(a2c.A2CConfig(frames=updates * PER_UPDATE, agent=AgentConfig(core=core), **fields), out,
              progress=False)
    return out


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` with its bytes."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_every_configuration_flag_of_pong_train_is_known_to_resume_and_defaults_to_none():
    args = vars(build_parser().parse_args(["pong", "train", "--out", "x"]))
    not_config = {"command", "pong_command", "handler", "out", "resume", "no_progress"}
    config_flags = {name: value for name, value in args.items() if name not in not_config}
    assert set(config_flags) == {flag.dest for flag in RESUME_FLAGS}
    assert set(config_flags.values()) == {None}


def test_safe_flags_apply():
    given = {"--frames": 999, "--torch-threads": 2, "--env-threads": 1, "--device": "cpu"}
    assert resume_changes(STORED, given) == {"frames": 999, "torch_threads": 2, "env_threads": 1,
                                             "device": "cpu"}


def test_run_changing_flags_are_refused_naming_each_and_its_stored_value():
    with pytest.raises(UserError) as info:
        resume_changes(STORED, {"--lr": 0.001, "--seed": 3, "--frames": 999})
    assert str(info.value) == ("--resume: --lr 0.001 and --seed 3 would change the stored run "
                               "(lr 0.0007, seed 0); drop them or start a new --out")
    with pytest.raises(UserError, match=r"--core stpn would change the stored run \(core mstpn\); drop it"):
        resume_changes(STORED, {"--core": "stpn"})
    with pytest.raises(UserError, match=r"--algo ppo .*\(algo a2c\)"):
        resume_changes(STORED, {"--algo": "ppo"})


def test_flags_that_repeat_the_stored_value_are_accepted():
    given = {"--lr": 7e-4, "--seed": 0, "--num-envs": 2, "--rollout": 8, "--frame-skip": 4,
             "--core": "mstpn", "--algo": "a2c", "--checkpoint-every": 250}
    assert resume_changes(STORED, given) == {}


def test_device_params_compare_by_value_and_the_preset_is_the_empty_default(tmp_path):
    preset = srtio3_weilenmann2024().to_dict()
    (tmp_path / "preset.json").write_text(json.dumps(preset))
    (tmp_path / "other.json").write_text(json.dumps({**preset, "tau0": 2 * preset["tau0"]}))
    assert resume_changes(STORED, {"--device-params": str(tmp_path / "preset.json")}) == {}
    with pytest.raises(UserError, match=r"--device-params .*other\.json would change the stored run "
                                        r"\(device_params of the SrTiO3 preset\)"):
        resume_changes(STORED, {"--device-params": str(tmp_path / "other.json")})


def test_new_run_defaults_are_the_configuration_defaults():
    def config(*extra: str):
        return _new_run_config(build_parser().parse_args(["pong", "train", "--out", "x", *extra]))[1]

    assert config() == a2c.A2CConfig()
    assert config("--algo", "ppo", "--core", "stpn") == ppo.PPOConfig(agent=AgentConfig(core="stpn"))
    assert config("--seed", "3", "--lr", "0.001").seed == 3


def test_cli_refuses_with_exit_2_and_writes_nothing(tmp_path, capsys):
    run = tiny_run(tmp_path / "run")
    before = snapshot(run)
    code = main(["pong", "train", "--out", str(run), "--resume", "--frames", str(3 * PER_UPDATE),
                 "--lr", "0.001", "--seed", "3", "--no-progress"])
    assert code == 2
    err = capsys.readouterr().err
    assert "--seed 3 and --lr 0.001 would change the stored run (seed 0, lr 0.0007)" in err
    assert err.count("\n") == 1
    assert snapshot(run) == before


def test_cli_applies_safe_flags_and_accepts_repeated_ones(tmp_path):
    run = tiny_run(tmp_path / "run")
    assert main(["pong", "train", "--out", str(run), "--resume", "--frames", str(2 * PER_UPDATE),
                 "--env-threads", "2", "--torch-threads", "1", "--device", "cpu", "--lr", "0.0007",
                 "--num-envs", "2", "--core", "lstm", "--no-progress"]) == 0
    config = json.loads((run / "config.json").read_text())
    assert (config["frames"], config["env_threads"], config["device"]) == (2 * PER_UPDATE, 2, "cpu")
    assert load_checkpoint(run / "checkpoint.pt")["update"] == 2


def test_a_ppo_run_resumes_without_repeating_algo(tmp_path, capsys):
    run = tmp_path / "run"
    ppo.train(ppo.PPOConfig(frames=PER_UPDATE, num_envs=2, rollout=8, minibatches=2, epochs=1,
                            env_threads=1, log_every=1, agent=AgentConfig(core="lstm")), run, progress=False)
    assert main(["pong", "train", "--out", str(run), "--resume", "--algo", "a2c", "--no-progress"]) == 2
    assert "--algo a2c would change the stored run (algo ppo)" in capsys.readouterr().err
    assert main(["pong", "train", "--out", str(run), "--resume", "--frames", str(2 * PER_UPDATE),
                 "--no-progress"]) == 0
    assert load_checkpoint(run / "checkpoint.pt")["update"] == 2
