"""The training recipe's choices: orthogonal initialisation, normalised advantages, GAE lambda and the
entropy weight from the command line, and runs stored before these existed resuming as they trained."""

from __future__ import annotations

import json

import pytest
import torch

from mstpn.cli import main
from mstpn.errors import UserError
from mstpn.rl import a2c, ppo
from mstpn.rl.agent import ActorCritic, AgentConfig
from mstpn.rl.checkpoint import load_checkpoint, save_checkpoint
from mstpn.rl.common import normalized
from mstpn.rl.resume import resumed_config

PER_UPDATE = 2 * 8 * 4


def first_logits(init: str) -> torch.Tensor:
    torch.manual_seed(0)
    agent = ActorCritic(AgentConfig(core="lstm", init=init))
    obs = torch.randint(0, 256, (4, 1, 84, 84), dtype=torch.uint8)
    logits, _, _ = agent(obs, agent.initial_state(4))
    return logits.detach()


def test_orthogonal_init_starts_from_a_uniform_policy_and_torch_init_does_not():
    assert first_logits("orthogonal").abs().max() < 0.05
    assert first_logits("torch").abs().max() > 0.05


def test_orthogonal_init_gives_orthogonal_trunk_filters_and_zero_biases():
    agent = ActorCritic(AgentConfig(core="lstm", init="orthogonal"))
    conv = agent.trunk[0]
    w = conv.weight.detach().reshape(conv.weight.shape[0], -1)
    assert torch.allclose(w @ w.T, 2.0 * torch.eye(w.shape[0]), atol=1e-4)  # gain sqrt(2)
    assert all(float(m.bias.detach().abs().max()) == 0.0 for m in (conv, agent.actor, agent.critic))


def test_unknown_init_is_refused():
    with pytest.raises(UserError, match="init: must be one of torch, orthogonal"):
        AgentConfig(init="xavier")


def test_normalized_advantages_have_zero_mean_and_unit_spread_whatever_the_scale():
    adv = torch.randn(10, 16) * 37.0 + 5.0
    out = normalized(adv)
    assert float(out.mean()) == pytest.approx(0.0, abs=1e-5)
    assert float(out.std()) == pytest.approx(1.0, abs=1e-4)
    assert torch.allclose(normalized(adv * 100), out, atol=1e-4)


def test_a2c_defaults_are_the_recipe_and_stored_runs_keep_what_they_trained_with():
    config = a2c.A2CConfig()
    assert (config.rollout, config.gae_lambda, config.normalize_advantages, config.agent.init) == (
        20, 1.0, True, "orthogonal")
    old = config.to_dict()
    del old["normalize_advantages"], old["agent"]["init"]
    restored = a2c.A2CConfig.from_dict(old)
    assert (restored.normalize_advantages, restored.agent.init) == (False, "torch")
    old_ppo = ppo.PPOConfig().to_dict()
    del old_ppo["normalize_advantages"]
    assert ppo.PPOConfig.from_dict(old_ppo).normalize_advantages is True  # PPO always normalised


def test_a_run_stored_before_the_recipe_fields_existed_resumes(tmp_path):
    run = tmp_path / "run"
    a2c.train(a2c.A2CConfig(frames=PER_UPDATE, num_envs=2, rollout=8, env_threads=1, log_every=1,
                            normalize_advantages=False, agent=AgentConfig(core="lstm", init="torch")),
              run, progress=False)
    saved = load_checkpoint(run / "checkpoint.pt")
    del saved["config"]["normalize_advantages"], saved["config"]["agent"]["init"]
    save_checkpoint(run / "checkpoint.pt", saved)
    module, config = resumed_config(run, {"--frames": 2 * PER_UPDATE})
    assert (config.normalize_advantages, config.agent.init) == (False, "torch")
    summary = module.train(config, run, resume=True, progress=False)
    assert summary["frames"] == 2 * PER_UPDATE


@pytest.mark.parametrize(("flag", "field", "value", "other"), [
    ("--gae-lambda", "gae_lambda", 1.0, 0.9), ("--entropy-coef", "entropy_coef", 0.005, 0.01)])
def test_recipe_flag_reaches_the_run_and_is_refused_on_resume_when_it_differs(
        tmp_path, capsys, flag, field, value, other):
    run = tmp_path / "run"
    common = ["--core", "lstm", "--num-envs", "2", "--rollout", "8", "--env-threads", "1", "--no-progress"]
    assert main(["pong", "train", "--frames", str(PER_UPDATE), flag, str(value), "--out", str(run),
                 *common]) == 0
    assert json.loads((run / "config.json").read_text())[field] == value
    assert main(["pong", "train", "--out", str(run), "--resume", flag, str(other),
                 "--frames", str(2 * PER_UPDATE), "--no-progress"]) == 2
    assert f"{flag} {other} would change the stored run ({field} {value})" in capsys.readouterr().err
