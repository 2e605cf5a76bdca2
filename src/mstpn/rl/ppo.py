"""PPO for recurrent Pong agents, readable top to bottom (in the manner of CleanRL's PPO-LSTM).

Rollouts are collected without gradients; each update then replays every game's rollout from the
state it started in, several epochs over minibatches of whole games (BPTT through the rollout), with
the clipped surrogate objective. The m-STPN's device noise is redrawn in the replay, so the replayed
policy is a fresh sample of the same noisy policy: the ratio's noise is part of what PPO clips.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch
from torch import nn

from mstpn.errors import UserError
from mstpn.rl.agent import mask_state
from mstpn.rl.common import discounted_advantages, normalized, sample_actions
from mstpn.rl.run import Run, TrainerConfig


@dataclass(frozen=True)
class PPOConfig(TrainerConfig):
    """A PPO run; shared fields are documented on :class:`TrainerConfig` (defaults differ here)."""

    LEGACY: ClassVar[dict] = {"normalize_advantages": True}

    rollout: int = 64
    """Agent steps per rollout; the replay runs BPTT through all of them."""
    lr: float = 2.5e-4
    """Adam learning rate at the start; decays linearly to 0."""
    gae_lambda: float = 0.95
    """GAE lambda."""
    epochs: int = 4
    """Passes over each rollout."""
    minibatches: int = 4
    """Minibatches per pass (split by game, so every minibatch holds whole sequences)."""
    normalize_advantages: bool = True
    """Scale each minibatch's advantages to zero mean and unit standard deviation."""
    clip_coef: float = 0.1
    """Clip range of the probability ratio."""
    checkpoint_every: int = 80
    """Updates between checkpoints (and fresh game starts)."""
    log_every: int = 2
    """Updates between log lines."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.num_envs % self.minibatches:
            raise UserError(f"minibatches: must divide num_envs ({self.num_envs}), got {self.minibatches}")


def train(config: PPOConfig, out: str | Path, *, resume: bool = False, progress: bool = True) -> dict:
    """Train (or resume) a PPO run in ``out``; returns the final summary."""
    run = Run(config, out, "ppo", resume=resume, progress=progress)
    agent, env, optimizer = run.agent, run.env, run.optimizer
    T, B = config.rollout, config.num_envs
    obs, state = run.fresh_games(run.start_update)
    for update in range(run.start_update, config.total_updates):
        obs, state, lr = run.begin_update(update, obs, state)

        # ---- rollout without gradients; remember where every game started
        start_state = type(state)(*(s.detach().clone() for s in state))
        on = {"device": run.device}
        obs_buf = torch.empty((T, *obs.shape), dtype=obs.dtype, **on)
        actions, old_log_probs = torch.empty(T, B, dtype=torch.long, **on), torch.empty(T, B, **on)
        values, rewards, dones = torch.empty(T, B, **on), torch.empty(T, B, **on), torch.empty(T, B, **on)
        with torch.no_grad():
            for t in range(T):
                obs_buf[t] = obs
                logits, values[t], state = agent(obs, state)
                actions[t] = sample_actions(logits, run.generator)
                old_log_probs[t] = torch.log_softmax(logits, -1).gather(1, actions[t, :, None]).squeeze(1)
                next_obs, reward, terminated, truncated, _ = env.step(actions[t].cpu().numpy())
                done = np.logical_or(terminated, truncated)
                run.tracker.update(reward, done)
                rewards[t] = run.as_tensor(reward)
                dones[t] = run.as_tensor(done)
                state = mask_state(state, 1.0 - dones[t])
                obs = run.observe(next_obs)
            _, next_value, _ = agent(obs, state)
        advantages, returns = discounted_advantages(rewards, values, dones, next_value,
                                                    config.gamma, config.gae_lambda)

        # ---- replay: epochs x minibatches of whole games, clipped surrogate
        stats = []
        for _ in range(config.epochs):
            order = torch.randperm(B, generator=run.generator, device=run.device)
            for games in order.chunk(config.minibatches):
                replay_state = type(start_state)(*(s[games] for s in start_state))
                log_probs, entropies, new_values = [], [], []
                for t in range(T):
                    logits, value, replay_state = agent(obs_buf[t, games], replay_state)
                    log_prob_all = torch.log_softmax(logits, -1)
                    log_probs.append(log_prob_all.gather(1, actions[t, games, None]).squeeze(1))
                    entropies.append(-(log_prob_all.exp() * log_prob_all).sum(-1))
                    new_values.append(value)
                    replay_state = mask_state(replay_state, 1.0 - dones[t, games])
                adv = advantages[:, games]
                if config.normalize_advantages:
                    adv = normalized(adv)
                ratio = torch.exp(torch.stack(log_probs) - old_log_probs[:, games])
                clipped = torch.clamp(ratio, 1 - config.clip_coef, 1 + config.clip_coef)
                policy_loss = torch.max(-adv * ratio, -adv * clipped).mean()
                value_loss = 0.5 * (torch.stack(new_values) - returns[:, games]).pow(2).mean()
                entropy = torch.stack(entropies).mean()
                loss = policy_loss + config.value_coef * value_loss - config.entropy_coef * entropy
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                grad_norm = nn.utils.clip_grad_norm_(agent.parameters(), config.max_grad_norm)
                optimizer.step()
                clip_frac = ((ratio - 1).abs() > config.clip_coef).float().mean()
                stats.append([loss.item(), policy_loss.item(), value_loss.item(), entropy.item(),
                              grad_norm.item(), clip_frac.item()])
        means = np.mean(stats, axis=0)
        run.end_update(update, {**dict(zip(("loss", "policy_loss", "value_loss", "entropy", "grad_norm",
                                            "clip_frac"), map(float, means), strict=True)), "lr": lr})
    return run.finish()
