"""What every training run needs around its algorithm: configuration, run folder, resume, checkpoints,
fresh games, TensorBoard and the metrics log. The algorithms (a2c.py, ppo.py) read top to bottom and
call into this for bookkeeping.

Exact resume: every ``checkpoint_every`` updates a run saves its whole state (weights, optimizer,
schedule, RNGs, noise sources, scores) and then starts all games afresh from a seed derived from the
update number. A resumed run does the same from the checkpoint, so it continues exactly as an
uninterrupted run would (bit for bit with one emulator thread).
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch
from torch.utils.tensorboard import SummaryWriter
from tqdm import tqdm

from mstpn.atomic import atomic_write_json
from mstpn.errors import UserError
from mstpn.memory import reuse_freed_memory
from mstpn.nn.mstpn import MSTPNConfig
from mstpn.rl.agent import ActorCritic, AgentConfig
from mstpn.rl.checkpoint import check_compatible, load_checkpoint, save_checkpoint
from mstpn.rl.common import (
    MetricsLog,
    check_device_name,
    machine_info,
    resolve_device,
    rng_state,
    seed_everything,
    set_rng_state,
)
from mstpn.tasks.pong import (
    ATARI_HZ,
    MAX_TRAINING_SEED,
    SPLIT_STRIDE,
    EpisodeTracker,
    PongConfig,
    game_seed,
    make_pong,
    step_duration_s,
)

SAFE_ON_RESUME = ("frames", "torch_threads", "env_threads", "device", "validate_every", "validation_games",
                  "validation_max_frames")
"""Configuration fields a resumed run may change: its budget, how and where it is computed, and how
often it is validated (validation games do not touch the training's random streams)."""


LEGACY_AGENT = {"init": "torch"}
"""Agent fields added after runs were stored, with the behaviour those runs had."""


@dataclass(frozen=True)
class TrainerConfig:
    """Fields shared by the trainers (each algorithm's config adds its own and sets its defaults)."""

    LEGACY: ClassVar[dict] = {"normalize_advantages": False, "init_from": ""}
    """Fields added after runs were stored, with the behaviour those runs had (an algorithm's own
    ``LEGACY`` adds to and overrides these)."""

    frames: int = 10_000_000
    """Training budget in emulator frames (agent steps x frame skip)."""
    seed: int = 0
    """Seed of weights, actions, device variation and noise, and the games."""
    num_envs: int = 16
    """Parallel games."""
    frame_skip: int = 4
    """Emulator frames per agent step; 1 = the reference's no-skip setting."""
    rollout: int = 20
    """Agent steps per rollout (and the truncated-BPTT window)."""
    gamma: float = 0.99
    """Discount per agent step."""
    gae_lambda: float = 1.0
    """GAE lambda (1.0 = n-step returns)."""
    lr: float = 7e-4
    """Adam learning rate at the start; decays linearly to 0 over the budget (a budget raised on
    resume re-plans the rest of the decay as if the run had started with it)."""
    adam_eps: float = 1e-5
    """Adam epsilon."""
    value_coef: float = 0.5
    """Weight of the value loss."""
    entropy_coef: float = 0.01
    """Weight of the entropy bonus."""
    max_grad_norm: float = 0.5
    """Gradient-norm clip (losses are batch means)."""
    normalize_advantages: bool = False
    """Scale the advantages of each update to zero mean and unit standard deviation, so the policy
    gradient's size (and the entropy bonus's weight against it) does not follow the value scale."""
    env_threads: int = 0
    """Emulator threads; 0 = all cores, 1 = bit-for-bit reproducible."""
    torch_threads: int = 1
    """Threads torch may use (leave room for the emulators and other work)."""
    device: str = "cpu"
    """Torch device of the agent and its tensors: cpu, cuda or cuda:N (the games stay on the CPU).
    May change on resume; a run continues bit for bit only on the kind of device it started on."""
    checkpoint_every: int = 250
    """Updates between checkpoints (and fresh game starts)."""
    validate_every: int = 2_000_000
    """Emulator frames between validations: greedy games on the validation seeds, scored into
    metrics.jsonl and TensorBoard; the best-scoring agent is kept as best.pt. 0 = never. Ten games
    take ~31 s on one core here, 2-7 % of the time the m-STPN trains 2 M frames."""
    validation_games: int = 10
    """Greedy games per validation (1-1000)."""
    validation_max_frames: int = 108_000
    """Emulator frames after which a validation game is cut (the full 30 minutes by default)."""
    log_every: int = 10
    """Updates between log lines."""
    init_from: str = ""
    """Path of a trained agent or checkpoint whose learned weights a new run starts from ("" = fresh
    weights); its devices are drawn anew for this run's ``agent.device_params`` (see
    :mod:`mstpn.rl.warmstart`). Ignored on resume, where the run's own checkpoint is loaded."""
    agent: AgentConfig = field(default_factory=AgentConfig)
    """The network."""

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                allowed_zero = f.name in ("seed", "env_threads", "gae_lambda", "entropy_coef",
                                          "value_coef", "validate_every")
                if value < 0 or (value == 0 and not allowed_zero):
                    raise UserError(f"{f.name}: must be {'>= 0' if allowed_zero else '> 0'}, got {value}")
        if self.gamma > 1 or self.gae_lambda > 1:
            raise UserError("gamma and gae_lambda: must be <= 1")
        if self.seed > MAX_TRAINING_SEED:
            raise UserError(f"seed: must be <= {MAX_TRAINING_SEED} (training games stay apart from the "
                            f"validation and test seeds), got {self.seed}")
        if self.validation_games > SPLIT_STRIDE:
            raise UserError(f"validation_games: must be <= {SPLIT_STRIDE}, got {self.validation_games}")
        check_device_name(self.device, "device")
        if not isinstance(self.init_from, str):
            raise UserError(f"init_from: must be a path (a string), got {self.init_from!r}")
        if self.agent.core == "mstpn":
            dt_step = self.agent.mstpn.get("dt_step", MSTPNConfig.dt_step)
            if abs(dt_step - step_duration_s(self.frame_skip)) > 1e-9:
                raise UserError(f"agent.mstpn.dt_step: must be frame_skip / {ATARI_HZ:g} Hz = "
                                f"{step_duration_s(self.frame_skip):.6g} s (the synapses' real time "
                                f"per step), got {dt_step:.6g}")

    @property
    def steps_per_update(self) -> int:
        return self.num_envs * self.rollout

    @property
    def frames_per_update(self) -> int:
        return self.steps_per_update * self.frame_skip

    @property
    def total_updates(self) -> int:
        return max(1, self.frames // self.frames_per_update)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict):
        """The configuration stored by :meth:`to_dict`; fields a run stored before they existed take
        the value that run trained with (``LEGACY``, ``LEGACY_AGENT``), not today's default."""
        data = {**TrainerConfig.LEGACY, **cls.LEGACY, **data}
        data["agent"] = AgentConfig(**{**LEGACY_AGENT, **data.get("agent", {})})
        return cls(**data)


def _print_changes(saved: dict, current: dict) -> None:
    """Say which of the safe fields (threads, torch device, validation) a resumed run changes; the
    budget is said apart."""
    for key in SAFE_ON_RESUME:
        if key != "frames" and key in saved and saved[key] != current[key]:
            print(f"{key}: {saved[key]} -> {current[key]}")


class Run:
    """A run folder with its agent, optimizer, games and logs; resumes from its checkpoint."""

    def __init__(self, config: TrainerConfig, out: str | Path, algo: str, *, resume: bool,
                 progress: bool) -> None:
        self.config, self.out, self.algo = config, Path(out), algo
        self.ckpt_path = self.out / "checkpoint.pt"
        self.device = resolve_device(config.device)
        reuse_freed_memory()
        torch.set_num_threads(config.torch_threads)
        self.generator = seed_everything(config.seed, self.device)
        self.agent = ActorCritic(config.agent).to(self.device)  # initialised on the CPU: same weights
        self.optimizer = torch.optim.Adam(self.agent.parameters(), lr=config.lr, eps=config.adam_eps)
        self.tracker = EpisodeTracker(config.num_envs)
        self.start_update, self.wall_before, self.scores = 0, 0.0, []
        self.best: dict | None = None
        """The best validation so far: score, update, frames (its agent is best.pt)."""
        if resume:
            self._restore()
        elif self.ckpt_path.exists():
            raise UserError(f"{self.out}: already holds a run; pass --resume to continue it "
                            "or choose another --out")
        if config.init_from and not resume:
            self._init_from(config.init_from)
        self.out.mkdir(parents=True, exist_ok=True)
        atomic_write_json(self.out / "config.json", {"algo": algo, **config.to_dict()})
        self.metrics = MetricsLog(self.out / "metrics.jsonl", self.start_update if resume else None)
        self.writer = SummaryWriter(str(self.out / "tb"),
                                    purge_step=self.start_update * config.steps_per_update)
        print(self.agent.describe())
        self.env = make_pong(PongConfig(num_envs=config.num_envs, frame_skip=config.frame_skip,
                                        num_threads=config.env_threads))
        self.t_start = time.time()
        self.bar = tqdm(total=config.total_updates * config.frames_per_update,
                        initial=self.start_update * config.frames_per_update, unit="frame",
                        unit_scale=True, disable=not progress, dynamic_ncols=True)

    def _restore(self) -> None:
        if not self.ckpt_path.exists():
            raise UserError(f"--resume: no checkpoint at {self.ckpt_path}")
        saved = load_checkpoint(self.ckpt_path)
        if saved.get("kind") != self.algo:
            raise UserError(f"{self.ckpt_path}: a {saved.get('kind')} checkpoint, not {self.algo}")
        current = json.loads(json.dumps(self.config.to_dict()))
        stored = json.loads(json.dumps(type(self.config).from_dict(saved["config"]).to_dict()))
        free = dict.fromkeys(SAFE_ON_RESUME)
        check_compatible({**stored, **free}, {**current, **free}, "the run configuration",
                         self.ckpt_path)
        _print_changes(saved["config"], current)
        if current["frames"] != saved["config"].get("frames"):
            # A larger budget re-plans the learning-rate decay from here on exactly as if the run had
            # been started with it.
            if self.config.total_updates <= saved["update"]:
                raise UserError(f"frames: a new budget must exceed the {saved['frames']:,} frames "
                                f"already trained, got {self.config.frames:,}")
            print(f"budget: {saved['config'].get('frames'):,} -> {self.config.frames:,} frames")
        self.agent.load_state_dict(saved["model"])  # copied into the parameters, on self.device
        self.optimizer.load_state_dict(saved["optimizer"])  # Adam's moments follow the parameters
        if not set_rng_state(saved["rng"], self.generator):
            self.generator.manual_seed(self.config.seed * 1_000_003 + saved["update"] + 7)
            print(f"device: the run moved between CPU and CUDA ({self.config.device} now); the action "
                  "sampler is reseeded from the update number, so the run goes on reproducibly but "
                  "not bit for bit as it would have on its old device")
        self.start_update, self.wall_before, self.scores = saved["update"], saved["wall_s"], saved["scores"]
        legacy_noise = saved["rng"].get("noise")  # runs saved before the noise state was in the model's
        if legacy_noise and hasattr(self.agent.core, "noise"):
            self.agent.core.noise.load_state_dict(legacy_noise[0], device=self.device)
        self.best = saved.get("best_validation")
        best_path = self.out / "best.pt"
        if best_path.exists():  # best.pt may be newer than the checkpoint (a stop between the two)
            kept = load_checkpoint(best_path).get("best_validation")
            if kept and (self.best is None or kept["score"] > self.best["score"]):
                self.best = kept

    def _init_from(self, path: str) -> None:
        """Start from the learned weights of the agent at ``path`` (devices drawn for this run)."""
        from mstpn.rl.warmstart import copy_learned

        saved = copy_learned(self.agent, path)
        trained = saved.get("frames")
        print(f"init_from: learned weights of {path}"
              + (f" ({trained:,} frames trained)" if isinstance(trained, int) else "")
              + ("; devices drawn for this run's device parameters" if self.config.agent.core == "mstpn"
                 else ""))

    @property
    def wall_s(self) -> float:
        return self.wall_before + time.time() - self.t_start

    def fresh_games(self, update: int) -> tuple[torch.Tensor, tuple]:
        """Start every game anew (seeded by the update number) with a zero agent state."""
        obs, _ = self.env.reset(seed=self.config.seed * 1_000_003 + update)
        self.tracker.reset()
        return self.observe(obs), self.agent.initial_state(self.config.num_envs)

    def observe(self, obs: np.ndarray) -> torch.Tensor:
        """The games' frames as a tensor on the run's device."""
        return torch.from_numpy(obs).to(self.device)

    def as_tensor(self, values: np.ndarray) -> torch.Tensor:
        """Per-game rewards or done flags as float32 on the run's device."""
        return torch.as_tensor(values, dtype=torch.float32, device=self.device)

    def checkpoint(self, update: int, path: Path | None = None) -> None:
        """The whole run state after ``update`` updates, to checkpoint.pt (or ``path``), atomically."""
        save_checkpoint(path or self.ckpt_path, {
            "kind": self.algo, "config": self.config.to_dict(),
            "agent_config": self.config.agent.to_dict(), "model": self.agent.state_dict(),
            "optimizer": self.optimizer.state_dict(), "rng": rng_state(self.generator),
            "update": update, "frames": update * self.config.frames_per_update,
            "wall_s": self.wall_s, "scores": self.scores, "best_validation": self.best,
        })

    def validate(self, update: int) -> None:
        """Greedy games on the validation seeds; log the score, keep the best agent as best.pt."""
        from mstpn.rl.evaluate import play

        cfg = self.config
        games = cfg.validation_games
        result = play(self.agent, games, game_seed("validation", 0, games), cfg.frame_skip,
                      max_frames=cfg.validation_max_frames, progress=False)
        frames, score = update * cfg.frames_per_update, result["mean_score"]
        self.metrics.append({"update": update, "frames": frames, "wall_s": round(self.wall_s, 2),
                             "validation_score": score, "validation_lost": result["lost"],
                             "validation_games": games})
        self.writer.add_scalar("validation/greedy_score", score, update * cfg.steps_per_update)
        if self.best is None or score > self.best["score"]:
            self.best = {"score": score, "lost": result["lost"], "update": update, "frames": frames}
            self.checkpoint(update, self.out / "best.pt")

    def begin_update(self, update: int, obs: torch.Tensor, state: tuple) -> tuple[torch.Tensor, tuple, float]:
        """Checkpoint and restart the games when due; set the decayed learning rate."""
        if update > self.start_update and update % self.config.checkpoint_every == 0:
            self.checkpoint(update)
            obs, state = self.fresh_games(update)
        lr = self.config.lr * (1.0 - update / self.config.total_updates)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        return obs, state, lr

    def end_update(self, update: int, losses: dict[str, float]) -> None:
        """Collect finished games, advance the progress bar, log every ``log_every`` updates."""
        self.scores.extend(score for score, _ in self.tracker.finished)
        self.tracker.finished.clear()
        self.bar.update(self.config.frames_per_update)
        done = update + 1
        every, fpu = self.config.validate_every, self.config.frames_per_update
        if every and done * fpu // every > update * fpu // every:
            self.validate(done)
        if done % self.config.log_every and done != self.config.total_updates:
            return
        recent = float(np.mean(self.scores[-20:])) if self.scores else float("nan")
        row = {"update": done, "frames": done * self.config.frames_per_update,
               "wall_s": round(self.wall_s, 2), "episodes": len(self.scores), "score_mean20": recent,
               **losses}
        self.metrics.append(row)
        step = done * self.config.steps_per_update
        for key, value in losses.items():
            self.writer.add_scalar(f"train/{key}", value, step)
        if self.scores:
            self.writer.add_scalar("train/score_mean20", recent, step)
        self.bar.set_postfix(score=f"{recent:+.1f}", eps=len(self.scores))

    def finish(self) -> dict:
        """Final checkpoint and summary."""
        self.bar.close()
        self.checkpoint(self.config.total_updates)
        self.env.close()
        self.writer.close()
        summary = {"updates": self.config.total_updates,
                   "frames": self.config.total_updates * self.config.frames_per_update,
                   "episodes": len(self.scores),
                   "score_mean20": float(np.mean(self.scores[-20:])) if self.scores else None,
                   "wall_s": self.wall_s, "machine": machine_info()}
        atomic_write_json(self.out / "summary.json", summary)
        return summary
