"""A2C for recurrent Pong agents, readable top to bottom (in the manner of CleanRL).

Reference (PAPER.md): RLlib A2C, 64 envs x 50-step rollouts, truncated BPTT 20, discount 0.99, GAE
lambda 1.0, value coef 0.5, entropy 0.01, Adam lr 7e-4 linearly decayed, grad-norm clip 40 on summed
losses. The recipe here, for a 2-core CPU with frame skip 4 (README, "Training recipe", says how each
choice was measured):

- 16 envs x 20-step rollouts, one update each (BPTT through the rollout), GAE lambda 1.0 (n-step
  returns). 10-step rollouts with lambda 0.95 (twice the updates per frame at nearly the same
  env-steps/s) learned slower in a side-by-side run; 5-step rollouts cost 40 % of the speed.
- Advantages normalised per update, so the policy gradient's size does not follow the value scale
  and the entropy bonus (0.01) keeps its weight against it.
- Orthogonal initialisation of trunk and heads (``AgentConfig.init``), actor gain 0.01: the first
  policy is uniform.
- Losses averaged over the batch instead of summed, so the gradient clip is 0.5 instead of 40 (40 on
  a sum over 64 x 50 samples is ~0.0125 per sample; 0.5 on a mean is the common A2C choice).

The rollout's own forward pass is the graph BPTT runs through: no second forward.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from mstpn.rl.agent import mask_state
from mstpn.rl.common import discounted_advantages, normalized, sample_actions
from mstpn.rl.run import Run, TrainerConfig


@dataclass(frozen=True)
class A2CConfig(TrainerConfig):
    """An A2C run; the shared fields are documented on :class:`TrainerConfig` (defaults differ here)."""

    normalize_advantages: bool = True
    """Scale each update's advantages to zero mean and unit standard deviation."""


def train(config: A2CConfig, out: str | Path, *, resume: bool = False, progress: bool = True) -> dict:
    """Train (or resume) an A2C run in ``out``; returns the final summary."""
    run = Run(config, out, "a2c", resume=resume, progress=progress)
    agent, env, optimizer = run.agent, run.env, run.optimizer
    obs, state = run.fresh_games(run.start_update)
    for update in range(run.start_update, config.total_updates):
        obs, state, lr = run.begin_update(update, obs, state)

        # ---- rollout: T steps of all games, keeping the graph for BPTT
        state = type(state)(*(s.detach() for s in state))
        log_probs, values, entropies, rewards, dones = [], [], [], [], []
        for _ in range(config.rollout):
            logits, value, state = agent(obs, state)
            action = sample_actions(logits, run.generator)
            log_prob_all = torch.log_softmax(logits, dim=-1)
            log_probs.append(log_prob_all.gather(1, action[:, None]).squeeze(1))
            entropies.append(-(log_prob_all.exp() * log_prob_all).sum(-1))
            values.append(value)
            next_obs, reward, terminated, truncated, _ = env.step(action.cpu().numpy())
            done = np.logical_or(terminated, truncated)
            run.tracker.update(reward, done)
            rewards.append(run.as_tensor(reward))
            dones.append(run.as_tensor(done))
            state = mask_state(state, 1.0 - dones[-1])
            obs = run.observe(next_obs)
        with torch.no_grad():
            _, next_value, _ = agent(obs, state)

        # ---- loss: policy gradient with GAE advantages, value regression, entropy bonus
        values_t = torch.stack(values)
        advantages, returns = discounted_advantages(
            torch.stack(rewards), values_t.detach(), torch.stack(dones), next_value,
            config.gamma, config.gae_lambda)
        if config.normalize_advantages:
            advantages = normalized(advantages)
        policy_loss = -(advantages * torch.stack(log_probs)).mean()
        value_loss = 0.5 * (returns - values_t).pow(2).mean()
        entropy = torch.stack(entropies).mean()
        loss = policy_loss + config.value_coef * value_loss - config.entropy_coef * entropy
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        grad_norm = nn.utils.clip_grad_norm_(agent.parameters(), config.max_grad_norm)
        optimizer.step()

        run.end_update(update, {"loss": loss.item(), "policy_loss": policy_loss.item(),
                                "value_loss": value_loss.item(), "entropy": entropy.item(),
                                "grad_norm": grad_norm.item(), "lr": lr})
    return run.finish()
