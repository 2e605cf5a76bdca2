"""Pieces both trainers share: run folders, RNG state, metrics log, action sampling, returns."""

from __future__ import annotations

import json
import os
import platform
import random
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from mstpn.devices.noise import NoiseSource


def sample_actions(logits: Tensor, generator: torch.Generator) -> Tensor:
    """One action per row of ``logits``, drawn with ``generator`` (reproducible)."""
    probs = torch.softmax(logits.detach(), dim=-1)
    return torch.multinomial(probs, 1, generator=generator).squeeze(-1)


def discounted_advantages(rewards: Tensor, values: Tensor, dones: Tensor, next_value: Tensor,
                          gamma: float, lam: float) -> tuple[Tensor, Tensor]:
    """GAE(lambda) advantages and returns for a (T, B) rollout; ``dones[t]`` ends the game after step t."""
    advantages = torch.zeros_like(rewards)
    last = torch.zeros_like(next_value)
    for t in reversed(range(rewards.shape[0])):
        keep = 1.0 - dones[t]
        following = next_value if t == rewards.shape[0] - 1 else values[t + 1]
        delta = rewards[t] + gamma * following * keep - values[t]
        last = delta + gamma * lam * keep * last
        advantages[t] = last
    return advantages, advantages + values


def noise_sources(module: nn.Module) -> list[NoiseSource]:
    """Every :class:`NoiseSource` held by ``module`` or its children, in a fixed order."""
    return [m.noise for m in module.modules() if isinstance(getattr(m, "noise", None), NoiseSource)]


def rng_state(module: nn.Module, generator: torch.Generator) -> dict:
    """All random state a run depends on, for exact resume (the trainers draw from torch only)."""
    return {"torch": torch.get_rng_state(), "actions": generator.get_state(),
            "noise": [n.state_dict() for n in noise_sources(module)]}


def set_rng_state(state: dict, module: nn.Module, generator: torch.Generator) -> None:
    torch.set_rng_state(state["torch"])
    generator.set_state(state["actions"])
    for source, saved in zip(noise_sources(module), state["noise"], strict=True):
        source.load_state_dict(saved)


def seed_everything(seed: int) -> torch.Generator:
    """Seed python, numpy and torch; return the generator used for actions."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed + 7)


def machine_info() -> dict:
    return {"python": platform.python_version(), "torch": torch.__version__,
            "cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
            "torch_threads": torch.get_num_threads(), "load_average_1min": round(os.getloadavg()[0], 2)}


class MetricsLog:
    """Append-only JSON-lines log of training metrics; cut back to a checkpoint on resume."""

    def __init__(self, path: str | os.PathLike, resume_update: int | None) -> None:
        self.path = Path(path)
        if resume_update is None:
            self.path.write_text("")
        elif self.path.exists():
            kept = [line for line in self.path.read_text().splitlines()
                    if line.strip() and json.loads(line)["update"] <= resume_update]
            self.path.write_text("".join(line + "\n" for line in kept))

    def append(self, row: dict) -> None:
        with self.path.open("a") as handle:
            handle.write(json.dumps(row) + "\n")
