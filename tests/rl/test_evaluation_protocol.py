"""The evaluation protocol: disjoint seed splits, play modes, validation during training and best.pt."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from mstpn.cli import main
from mstpn.errors import UserError
from mstpn.report.curves import plot_learning_curves
from mstpn.rl import a2c
from mstpn.rl.agent import ActorCritic, AgentConfig
from mstpn.rl.checkpoint import load_checkpoint
from mstpn.rl.evaluate import PlayMode, play
from mstpn.rl.export import export_agent
from mstpn.tasks.pong import MAX_TRAINING_SEED, SPLIT_STRIDE, game_seed

TINY = {"num_envs": 2, "rollout": 8, "env_threads": 1, "torch_threads": 1, "log_every": 1}
PER_UPDATE = 2 * 8 * 4  # frames of one tiny update


def tiny(updates: int, **extra) -> a2c.A2CConfig:
    return a2c.A2CConfig(frames=updates * PER_UPDATE, agent=AgentConfig(core="mstpn", hidden_size=8),
                         **{**TINY, **extra})


def rows(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def test_seed_splits_never_share_a_game():
    def games(split, seed, n=SPLIT_STRIDE):
        start = game_seed(split, seed, n)
        return set(range(start, start + n))

    validation = set().union(*(games("validation", s) for s in range(3)))
    test = set().union(*(games("test", s) for s in range(3)))
    assert not validation & test
    assert len(validation) == len(test) == 3 * SPLIT_STRIDE
    # training games: seed * 1_000_003 + update, for every allowed seed and up to 10 M updates
    assert min(validation | test) > MAX_TRAINING_SEED * 1_000_003 + 10**7
    assert game_seed("raw", 5) == 5
    for bad in (lambda: game_seed("train", 0), lambda: game_seed("test", 1000),
                lambda: game_seed("test", 0, SPLIT_STRIDE + 1)):
        with pytest.raises(UserError):
            bad()
    with pytest.raises(UserError, match="seed: must be <= 900"):
        tiny(1, seed=MAX_TRAINING_SEED + 1)


def test_play_modes_pick_actions_as_they_say():
    logits = torch.tensor([[0.0, 3.0, 0.0], [2.0, 0.0, 0.0]]).repeat(500, 1)
    greedy = logits.argmax(-1)
    gen = torch.Generator().manual_seed(0)
    assert torch.equal(PlayMode("greedy").actions(logits, gen), greedy)
    assert torch.equal(PlayMode("sticky").actions(logits, gen), greedy)  # the emulator makes it sticky
    assert torch.equal(PlayMode("epsilon", epsilon=0.0).actions(logits, gen), greedy)
    random = PlayMode("epsilon", epsilon=1.0).actions(logits, gen)
    assert set(random.tolist()) == {0, 1, 2}
    sampled = PlayMode("sample").actions(logits, gen)
    assert 0.75 < (sampled == greedy).float().mean() < 0.95  # softmax of (3, 0, 0): 0.87
    for bad in ({"name": "boltzmann"}, {"name": "epsilon", "epsilon": 1.5},
                {"name": "sticky", "sticky": 1.0}):
        with pytest.raises(UserError):
            PlayMode(**bad)


def test_play_says_its_mode_and_restores_the_agents_noise():
    torch.manual_seed(0)
    agent = ActorCritic(AgentConfig(core="mstpn", hidden_size=8))
    before = agent.core.noise.state_dict()
    results = [play(agent, 2, game_seed("validation", 0, 2), 4, mode=PlayMode(name), max_frames=120,
                    progress=False) for name in ("greedy", "sticky", "greedy")]
    assert results[0]["mode"] == "greedy" and "sticky" not in results[0]
    assert results[1]["mode"] == "sticky" and results[1]["sticky"] == 0.25
    assert results[0] == results[2]  # one seed, one result
    assert torch.equal(agent.core.noise.state_dict()["generator"], before["generator"])


def test_validation_during_training_keeps_best_and_does_not_touch_training(tmp_path):
    validated = tiny(4, validate_every=2 * PER_UPDATE, validation_games=2, validation_max_frames=120)
    a2c.train(validated, tmp_path / "val", progress=False)
    a2c.train(tiny(4, validate_every=0), tmp_path / "plain", progress=False)
    val_rows = rows(tmp_path / "val")
    checks = [r for r in val_rows if "validation_score" in r]
    assert [r["update"] for r in checks] == [2, 4]
    training = [{k: v for k, v in r.items() if k != "wall_s"} for r in val_rows if "loss" in r]
    plain = [{k: v for k, v in r.items() if k != "wall_s"} for r in rows(tmp_path / "plain")]
    assert training == plain  # validation games leave the training's random streams alone
    best = load_checkpoint(tmp_path / "val" / "best.pt")["best_validation"]
    assert best["score"] == max(r["validation_score"] for r in checks)
    assert load_checkpoint(tmp_path / "val" / "checkpoint.pt")["best_validation"] == best
    info = export_agent(tmp_path / "val", tmp_path / "best_agent.pt", which="best")
    assert info["provenance"]["checkpoint"] == "best" and info["update"] == best["update"]
    with pytest.raises(UserError, match=r"no best\.pt"):
        export_agent(tmp_path / "plain", tmp_path / "none.pt", which="best")
    plot_learning_curves({"m-STPN": tmp_path / "val"}, tmp_path / "curve.png")
    assert (tmp_path / "curve.png").stat().st_size > 1000


def test_validation_settings_may_change_on_resume(tmp_path, capsys):
    run = tmp_path / "run"
    a2c.train(tiny(1, validate_every=0), run, progress=False)
    assert main(["pong", "train", "--out", str(run), "--resume", "--frames", str(2 * PER_UPDATE),
                 "--validate-every", str(PER_UPDATE), "--validation-games", "1", "--no-progress"]) == 0
    saved = load_checkpoint(run / "checkpoint.pt")
    assert saved["config"]["validate_every"] == PER_UPDATE and saved["config"]["validation_games"] == 1
    assert (run / "best.pt").exists()


AGENT = Path(__file__).resolve().parents[2] / "checkpoints" / "pong_mstpn.pt"


@pytest.mark.parametrize("flags", [["--mode", "epsilon", "--epsilon", "2"], ["--seed", "1000"],
                                   ["--mode", "sticky", "--sticky", "1"], ["--episodes", "1001"]])
def test_eval_refuses_bad_protocol_flags_and_writes_nothing(tmp_path, capsys, flags):
    out = tmp_path / "eval.json"
    assert main(["pong", "eval", str(AGENT), "--json", str(out), *flags]) == 2
    assert not out.exists()
    assert capsys.readouterr().err.count("\n") == 1  # one clear line


def test_another_device_under_the_agent_is_drawn_the_same_way_every_time(tmp_path, capsys):
    from mstpn.devices.params import srtio3_weilenmann2024
    from mstpn.rl.evaluate import load_agent

    mine = srtio3_weilenmann2024().replace(g_max=150e-9, tau0=2.0)
    own, _ = load_agent(AGENT)
    first, _ = load_agent(AGENT, mine)
    second, _ = load_agent(AGENT, mine)
    assert torch.equal(first.core.tau0, second.core.tau0)
    assert not torch.equal(first.core.tau0, own.core.tau0)
    assert torch.equal(first.core.weight, own.core.weight)  # the learned weights stay
    bad = tmp_path / "bad.json"
    bad.write_text('{"tau0": -1}')
    out = tmp_path / "eval.json"
    assert main(["pong", "eval", str(AGENT), "--device-params", str(bad), "--json", str(out)]) == 2
    assert "tau0" in capsys.readouterr().err and not out.exists()
