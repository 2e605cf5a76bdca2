"""Vectorised Atari Pong on ale-py's bundled ROM, with the reference observation (DESIGN.md, "Pong").

Observation: one grayscale 84x84 frame, no frame stack, so the recurrent memory has to supply the
ball's motion. The reference crops rows 25:-25 before resizing; here ale-py resizes the whole frame
inside its C++ vector environment (a documented near-equivalent that costs nothing in Python: the
score bar stays visible, the field is squeezed vertically by 17 %). Values are scaled to [-1, 1) by
(x - 128) / 128 inside the agent.

Every option whose ale-py default differs from ``ALE/Pong-v5`` is set explicitly: no sticky actions
(the reference's PongNoFrameskip-v4 has none), no reward clipping (Pong's rewards are already +-1, and
the score must stay the score), no fire-reset (Pong serves by itself), up to 30 no-op starts.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mstpn.errors import UserError

PONG_ACTIONS = 6
ATARI_HZ = 60.0
"""Emulator frames per second of game time (the Atari 2600's NTSC frame rate)."""


def step_duration_s(frame_skip: int) -> float:
    """Game time one agent step lasts (s): ``frame_skip`` frames at :data:`ATARI_HZ`.

    The one place this is computed: the m-STPN's synapses decay over it (``MSTPNConfig.dt_step``).
    """
    return frame_skip / ATARI_HZ


@dataclass(frozen=True)
class PongConfig:
    """How the Pong environments are built."""

    num_envs: int = 16
    """Parallel games."""
    frame_skip: int = 4
    """Emulator frames per agent step (action repeated, max over the last two); 1 = the reference."""
    repeat_action_probability: float = 0.0
    """Sticky-action probability; 0 as in PongNoFrameskip-v4 (ALE/Pong-v5 uses 0.25)."""
    noop_max: int = 30
    """Up to this many no-op frames after each reset, for varied starts."""
    num_threads: int = 0
    """Emulator threads; 0 = as many as cores. 1 makes runs bit-for-bit reproducible."""
    max_episode_frames: int = 108_000
    """Truncate an episode after this many emulator frames (30 minutes of play at 60 Hz)."""

    def __post_init__(self) -> None:
        if self.num_envs < 1:
            raise UserError(f"num_envs: must be >= 1, got {self.num_envs}")
        if not 1 <= self.frame_skip <= 16:
            raise UserError(f"frame_skip: must be in [1, 16], got {self.frame_skip}")
        if not 0.0 <= self.repeat_action_probability < 1.0:
            raise UserError("repeat_action_probability: must be in [0, 1), got "
                            f"{self.repeat_action_probability}")
        if self.noop_max < 0 or self.num_threads < 0:
            raise UserError("noop_max and num_threads: must be >= 0")


def make_pong(config: PongConfig):
    """The vectorised Pong environment (gymnasium 1.x vector API, same-step autoreset).

    ``step`` returns observations (num_envs, 1, 84, 84) uint8; at an episode's end the returned
    observation is already the next episode's first frame.
    """
    from ale_py.vector_env import AtariVectorEnv

    return AtariVectorEnv(
        "pong", num_envs=config.num_envs, num_threads=config.num_threads,
        batch_size=config.num_envs, frameskip=config.frame_skip, stack_num=1, grayscale=True,
        img_height=84, img_width=84, maxpool=config.frame_skip > 1,
        repeat_action_probability=config.repeat_action_probability,
        noop_max=config.noop_max, reward_clipping=False, use_fire_reset=False,
        episodic_life=False, max_num_frames_per_episode=config.max_episode_frames,
        autoreset_mode="SameStep",
    )


GAME_SPLITS = ("validation", "test", "raw")
"""Seed sets of evaluation games: ``validation`` (for choosing checkpoints), ``test`` (only for the
numbers we report), ``raw`` (the seed as given, as before the split existed)."""
SPLIT_BASE = {"validation": 1_000_000_000, "test": 2_000_000_000, "raw": 0}
"""First game seed of each split. Training games start from ``seed * 1_000_003 + update`` with
``seed <= MAX_TRAINING_SEED``, always below 1e9, so the three never share a game."""
SPLIT_STRIDE = 1_000
"""Game seeds between consecutive evaluation seeds of a split: up to 1,000 games per evaluation."""
MAX_TRAINING_SEED = 900
"""Largest training seed that keeps training games below the validation split's seeds."""


def game_seed(split: str, seed: int, games: int = 1) -> int:
    """The env reset seed of evaluation ``seed`` of ``split`` (the vector env gives game i seed + i)."""
    if split not in GAME_SPLITS:
        raise UserError(f"--split: must be one of {', '.join(GAME_SPLITS)}, got {split!r}")
    if split == "raw":
        return seed
    if not 0 <= seed < 1_000:
        raise UserError(f"--seed: must be in [0, 999] for the {split} split, got {seed}")
    if not 1 <= games <= SPLIT_STRIDE:
        raise UserError(f"--episodes: must be in [1, {SPLIT_STRIDE}] for the {split} split, got {games}")
    return SPLIT_BASE[split] + SPLIT_STRIDE * seed


class EpisodeTracker:
    """Running score and length of every game; collects finished episodes."""

    def __init__(self, num_envs: int) -> None:
        self.returns = np.zeros(num_envs)
        self.steps = np.zeros(num_envs, dtype=np.int64)
        self.finished: list[tuple[float, int]] = []

    def update(self, rewards: np.ndarray, done: np.ndarray) -> None:
        self.returns += rewards
        self.steps += 1
        for i in np.flatnonzero(done):
            self.finished.append((float(self.returns[i]), int(self.steps[i])))
        self.returns[done] = 0.0
        self.steps[done] = 0

    def reset(self) -> None:
        self.returns[:] = 0.0
        self.steps[:] = 0
