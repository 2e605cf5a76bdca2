"""Short hardware-aware fine-tuning: a trained agent trains a few frames more on another device.

:func:`finetune` starts a new run of the agent's own algorithm and recipe (its stored configuration:
games, rollout, frame skip, losses) from its learned weights (``TrainerConfig.init_from``), with the
m-STPN's synapses drawn from the new device parameters and, optionally, other driver settings. What
changes for fine-tuning:

- Learning rate ``FINETUNE_LR`` = 1e-4 at the start, decaying linearly to 0 over the fine-tuning
  budget (the trainers' own schedule). The agent ended its training at a rate near 0, and Adam starts
  with fresh moments, whose first steps move every parameter by about the rate whatever its gradient;
  1e-4 is a seventh of the training's starting 7e-4, small enough not to undo the policy in the first
  updates, large enough to move it within a few hundred.
- No validation games (``validate_every`` 0): the caller evaluates the fine-tuned agent itself.
- The budget is whole updates of the recipe, at least one: 1,280 frames each for the shipped agent
  (16 games x 20 steps x frame skip 4). The m-STPN trains at ~4 ms per frame on one core here, so
  100,000 frames cost ~7 minutes per device.
- ``seed`` seeds the run as a training seed: its device draw is the one ``load_agent(...,
  draw=seed)`` makes for the same parameters, so a fine-tuned agent can be compared with the agent as
  trained on the very same chip.
"""

from __future__ import annotations

import dataclasses
import importlib
import os
from pathlib import Path

from mstpn.devices.params import SrTiO3Params
from mstpn.errors import UserError

FINETUNE_LR = 1e-4
"""Starting learning rate of a fine-tuning run (decays linearly to 0 over its frames)."""


def check_finetune_frames(frames: object, flag: str = "--finetune-frames") -> int:
    """``frames`` as a fine-tuning budget (0 = none), refused with a one-line :class:`UserError`."""
    if isinstance(frames, bool) or not isinstance(frames, int) or frames < 0:
        raise UserError(f"{flag}: must be an integer >= 0 (emulator frames; 0 = no fine-tuning), "
                        f"got {frames!r}")
    return frames


def finetune(checkpoint: str | os.PathLike, out: str | os.PathLike, *, frames: int,
             device_params: SrTiO3Params | None = None, mstpn_overrides: dict | None = None,
             seed: int = 0, lr: float = FINETUNE_LR, num_envs: int | None = None,
             rollout: int | None = None, torch_threads: int = 1, env_threads: int = 1,
             progress: bool = False) -> Path:
    """Fine-tune the agent in ``checkpoint`` for ``frames`` emulator frames; returns the agent file.

    The run is written to ``out`` (a new folder: config, checkpoint, metrics) and its agent exported
    to ``out/agent.pt`` (loadable by ``load_agent`` and ``mstpn pong eval``). ``device_params`` and
    ``mstpn_overrides`` (MSTPNConfig fields: driver settings) give the device it is fine-tuned on
    (default: the agent's own, freshly drawn). ``num_envs`` and ``rollout`` default to the agent's
    recipe. Raises :class:`UserError` for a bad budget or an agent that cannot be fine-tuned.
    """
    from mstpn.rl.agent import AgentConfig
    from mstpn.rl.checkpoint import load_checkpoint, save_checkpoint
    from mstpn.rl.export import export_agent

    if check_finetune_frames(frames) < 1:
        raise UserError(f"--finetune-frames: a fine-tuning needs >= 1 frame, got {frames}")
    saved = load_checkpoint(checkpoint)
    algo = saved.get("kind")
    if algo not in ("a2c", "ppo"):
        raise UserError(f"{checkpoint}: fine-tuning needs an A2C or PPO agent (kind {algo!r})")
    try:
        agent = AgentConfig(**saved["agent_config"])
        module = importlib.import_module(f"mstpn.rl.{algo}")
        config_cls = module.A2CConfig if algo == "a2c" else module.PPOConfig
        stored = config_cls.from_dict(saved["config"])
    except (KeyError, TypeError) as exc:
        raise UserError(f"{checkpoint}: no valid training configuration to fine-tune with ({exc})") from None
    if (device_params is not None or mstpn_overrides) and agent.core != "mstpn":
        raise UserError(f"{checkpoint}: device parameters need an m-STPN agent, not {agent.core!r}")
    agent = AgentConfig(**{
        **agent.to_dict(),
        "device_params": agent.device_params if device_params is None else device_params.to_dict(),
        "mstpn": {**agent.mstpn, **(mstpn_overrides or {})}})
    config = dataclasses.replace(
        stored, frames=frames, lr=lr, seed=seed, init_from=str(checkpoint), validate_every=0,
        num_envs=num_envs or stored.num_envs, rollout=rollout or stored.rollout,
        torch_threads=torch_threads, env_threads=env_threads, device="cpu", agent=agent)
    out = Path(out)
    module.train(config, out, progress=progress)
    path = out / "agent.pt"
    export_agent(out, path)
    agent_file = load_checkpoint(path)
    agent_file["provenance"]["finetuned_from"] = str(checkpoint)
    save_checkpoint(path, agent_file)
    return path
