"""Pieces both trainers share: torch device, RNG state, metrics log, action sampling, returns."""

from __future__ import annotations

import json
import os
import platform
import random
import re
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from mstpn.errors import UserError

DEVICE_NAME = re.compile(r"cpu|cuda(:\d+)?")
"""Torch devices a run or an evaluation may use: cpu, cuda (the current GPU) or cuda:N."""


def check_device_name(name: str, what: str = "--device") -> None:
    """Refuse a device name other than cpu, cuda or cuda:N (``what`` names the flag or field)."""
    if not isinstance(name, str) or not DEVICE_NAME.fullmatch(name):
        raise UserError(f"{what}: must be cpu, cuda or cuda:N (N = GPU index), got {name!r}")


def _torch_build() -> str:
    version = torch.__version__.split("+")[0]
    build = "CPU build" if torch.version.cuda is None else f"CUDA {torch.version.cuda} build"
    return f"torch {version}, {build}"


def resolve_device(name: str, what: str = "--device") -> torch.device:
    """The torch device for ``name`` (cpu, cuda, cuda:N), refused clearly when this machine lacks it."""
    check_device_name(name, what)
    if name == "cpu":
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise UserError(f"{what} {name}: CUDA is not available on this machine ({_torch_build()}); "
                        f"use {what} cpu")
    device = torch.device(name)
    count = torch.cuda.device_count()
    if device.index is not None and device.index >= count:
        raise UserError(f"{what} {name}: this machine has {count} CUDA device(s), "
                        f"cuda:0 to cuda:{count - 1}")
    return device


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


def normalized(advantages: Tensor) -> Tensor:
    """Advantages scaled to zero mean and unit standard deviation (over all their elements)."""
    return (advantages - advantages.mean()) / (advantages.std() + 1e-8)


def rng_state(generator: torch.Generator) -> dict:
    """All random state a run depends on beside the model's own (the m-STPN's noise state is part of
    its ``state_dict``), for exact resume.

    On CUDA the GPUs' generators are kept too, and ``actions_device`` says which kind of generator
    drew the actions (a CUDA generator's state does not fit a CPU one).
    """
    state = {"torch": torch.get_rng_state(), "actions": generator.get_state(),
             "actions_device": generator.device.type}
    if generator.device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict, generator: torch.Generator) -> bool:
    """Restore :func:`rng_state`; False when the action stream cannot continue exactly.

    That happens when a run moves between CPU and CUDA: ``generator`` then keeps its own state.
    """
    torch.set_rng_state(state["torch"])
    if generator.device.type == "cuda":
        for index, cuda_state in enumerate(state.get("cuda", [])[:torch.cuda.device_count()]):
            torch.cuda.set_rng_state(cuda_state, index)
    if state.get("actions_device", "cpu") != generator.device.type:
        return False
    generator.set_state(state["actions"])
    return True


def seed_everything(seed: int, device: torch.device | str = "cpu") -> torch.Generator:
    """Seed python, numpy and torch (CPU and CUDA); return the generator used for actions, on ``device``."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    return torch.Generator(device=device).manual_seed(seed + 7)


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
