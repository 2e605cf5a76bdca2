"""Evaluation of a trained agent: scores and game lengths on a seed split, in greedy, sampled,
epsilon-greedy or sticky-action play, and a GIF with the synapses beside the game."""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from mstpn.atomic import atomic_write_bytes, atomic_write_json
from mstpn.devices.params import SrTiO3Params
from mstpn.errors import UserError
from mstpn.memory import reuse_freed_memory
from mstpn.rl.agent import ActorCritic, AgentConfig, mask_state
from mstpn.rl.checkpoint import load_checkpoint
from mstpn.rl.common import resolve_device, sample_actions
from mstpn.tasks.pong import PongConfig, game_seed, make_pong

DEVICE_BUFFERS = ("tau0", "g_min", "g_max", "a_st")
MODES = ("greedy", "sample", "epsilon", "sticky")


@dataclass(frozen=True)
class PlayMode:
    """How the agent picks its actions in evaluation games."""

    name: str = "greedy"
    """greedy: the most likely action (the paper's explore=False); sample: drawn from the policy;
    epsilon: greedy, but a uniformly random action with probability ``epsilon``; sticky: greedy, and
    the emulator repeats the previous action with probability ``sticky`` (as ALE/Pong-v5 does)."""
    epsilon: float = 0.01
    """Probability of a random action in epsilon mode (1)."""
    sticky: float = 0.25
    """Probability that the emulator repeats the previous action in sticky mode (1)."""

    def __post_init__(self) -> None:
        if self.name not in MODES:
            raise UserError(f"--mode: must be one of {', '.join(MODES)}, got {self.name!r}")
        if not 0.0 <= self.epsilon <= 1.0:
            raise UserError(f"--epsilon: must be in [0, 1], got {self.epsilon}")
        if not 0.0 <= self.sticky < 1.0:
            raise UserError(f"--sticky: must be in [0, 1), got {self.sticky}")

    def describe(self) -> dict:
        """The mode and the one parameter it uses, for result files."""
        extra = {"epsilon": {"epsilon": self.epsilon}, "sticky": {"sticky": self.sticky}}
        return {"mode": self.name, **extra.get(self.name, {})}

    def actions(self, logits: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """One action per game from the policy's ``logits``."""
        if self.name == "sample":
            return sample_actions(logits, generator)
        action = logits.argmax(-1)
        if self.name == "epsilon":
            shape, device = action.shape, action.device
            explore = torch.rand(shape, generator=generator, device=device) < self.epsilon
            random = torch.randint(0, logits.shape[-1], shape, generator=generator, device=device)
            action = torch.where(explore, random, action)
        return action


@contextmanager
def noise_seeded(agent: ActorCritic, seed: int) -> Iterator[None]:
    """Play with the m-STPN's device noise restarted from ``seed``; the agent's own stream is restored."""
    core = agent.core
    if not hasattr(core, "reseed_noise"):
        yield
        return
    own = core.noise
    core.reseed_noise(seed)
    try:
        yield
    finally:
        core.noise = own


def load_agent(path: str | os.PathLike, device_params: SrTiO3Params | None = None,
               device: str = "cpu", *, mstpn_overrides: dict | None = None, draw: int = 0
               ) -> tuple[ActorCritic, dict]:
    """Rebuild the agent stored in a checkpoint; optionally put another device under its m-STPN core.

    With ``device_params`` the learned weights, biases and plasticity are kept and the per-synapse
    device properties are drawn anew for the new device (draw number ``draw``: the same draw every
    time). ``mstpn_overrides`` changes MSTPNConfig fields of the core (driver settings).
    ``device`` is the torch device the agent is moved to (cpu, cuda, cuda:N), whatever device it
    was trained on.
    """
    torch_device = resolve_device(device)
    saved = load_checkpoint(path)
    try:
        agent_config = AgentConfig(**saved["agent_config"])
    except (KeyError, TypeError) as exc:
        raise UserError(f"{path}: checkpoint has no valid agent configuration ({exc})") from None
    state = saved["model"]
    if device_params is not None:
        if agent_config.core != "mstpn":
            raise UserError(f"--device-params: the checkpoint's core is {agent_config.core!r}, not mstpn")
        agent_config = AgentConfig(**{**agent_config.to_dict(), "device_params": device_params.to_dict()})
        state = {k: v for k, v in state.items() if k.split(".")[-1] not in DEVICE_BUFFERS}
    if mstpn_overrides:
        if agent_config.core != "mstpn":
            raise UserError(f"{path}: driver settings need an m-STPN core, not {agent_config.core!r}")
        agent_config = AgentConfig(**{**agent_config.to_dict(),
                                      "mstpn": {**agent_config.mstpn, **mstpn_overrides}})
    with torch.random.fork_rng(devices=[]):  # the global RNG of the caller stays as it was
        torch.manual_seed(draw)
        try:
            agent = ActorCritic(agent_config)
        except TypeError as exc:
            raise UserError(f"{path}: invalid m-STPN settings ({exc})") from None
    _, unexpected = agent.load_state_dict(state, strict=device_params is None)
    if unexpected:
        raise UserError(f"{path}: checkpoint does not match the agent (unexpected {unexpected[:3]})")
    agent.eval()
    return agent.to(torch_device), saved


def _frame_skip(saved: dict) -> int:
    return int(saved.get("config", {}).get("frame_skip", 4))


def _synapse_view(state: tuple, width: int) -> np.ndarray:
    """|F| of the recurrent synapses of game 0 (H x H), as an 8-bit image; or h for other cores."""
    if hasattr(state, "f"):
        f = state.f[0]
        view = f[:, -f.shape[0]:].abs()
    else:
        view = state[0][0].abs().reshape(1, -1)
    view = (view / (view.max() + 1e-12)).cpu().numpy()
    return np.kron((view * 255).astype(np.uint8), np.ones((width // view.shape[0],) * 2, np.uint8)
                   if view.shape[0] > 1 else np.ones((1, 1), np.uint8))


def _gif_frame(obs: np.ndarray, state: tuple, score: tuple[float, float]):
    import matplotlib
    from PIL import Image, ImageDraw

    game = Image.fromarray(obs).resize((252, 252), Image.NEAREST).convert("RGB")
    synapses = _synapse_view(state, 252)
    colored = (matplotlib.colormaps["magma"](synapses / 255.0)[..., :3] * 255).astype(np.uint8)
    syn = Image.fromarray(colored).resize((252, 252), Image.NEAREST)
    canvas = Image.new("RGB", (520, 290), "white")
    canvas.paste(game, (4, 34))
    canvas.paste(syn, (264, 34))
    draw = ImageDraw.Draw(canvas)
    draw.text((6, 8), f"Pong (agent = right paddle)   score {score[0]:+.0f}", fill="black")
    draw.text((266, 8), "|F| short-term weights, recurrent 64x64", fill="black")
    return canvas


@torch.no_grad()
def play(agent: ActorCritic, episodes: int, seed: int, frame_skip: int, *, mode: PlayMode | None = None,
         max_frames: int = PongConfig.max_episode_frames, gif_frames: list | None = None,
         gif_max_frames: int | None = None, progress: bool = True) -> dict:
    """Play ``episodes`` games in parallel from env seed ``seed``, each to its end; scores and lengths.

    The device noise and the action draws follow ``seed`` (one seed, one result), and the agent's
    own noise stream is left as it was, so games can be played in the middle of training.
    ``max_frames`` cuts games at that many emulator frames. With ``gif_frames``, the frames of game 0
    are appended to it: all of them, or its first ``gif_max_frames``.
    """
    if episodes < 1:
        raise UserError(f"--episodes: must be >= 1, got {episodes}")
    mode = mode or PlayMode()
    reuse_freed_memory()
    device = next(agent.parameters()).device
    generator = torch.Generator(device=device).manual_seed(seed)
    sticky = mode.sticky if mode.name == "sticky" else 0.0
    env = make_pong(PongConfig(num_envs=episodes, frame_skip=frame_skip, repeat_action_probability=sticky,
                               max_episode_frames=max_frames))
    obs, _ = env.reset(seed=seed)
    obs = torch.from_numpy(obs).to(device)
    state = agent.initial_state(episodes)
    scores = np.zeros(episodes)
    steps = np.zeros(episodes, dtype=np.int64)
    finished = np.zeros(episodes, dtype=bool)
    bar = tqdm(total=episodes, unit="game", disable=not progress, desc="playing")
    with noise_seeded(agent, seed + 1):  # + 1: the cells' convention (noise = seed + 1)
        while not finished.all():
            logits, _, state = agent(obs, state)
            action = mode.actions(logits, generator)
            next_obs, reward, terminated, truncated, _ = env.step(action.cpu().numpy())
            active = ~finished
            scores[active] += reward[active]
            steps[active] += 1
            done = np.logical_or(terminated, truncated)
            if (gif_frames is not None and not finished[0]
                    and (gif_max_frames is None or len(gif_frames) < gif_max_frames)):
                gif_frames.append(_gif_frame(obs[0, 0].cpu().numpy(), state, (scores[0], 0)))
            newly = done & active
            finished |= done
            bar.update(int(newly.sum()))
            if progress and steps.max() % 100 == 0:  # games end together, so show them while they run
                bar.set_postfix_str(f"step {int(steps.max())}, mean score so far {scores.mean():+.1f}")
            state = mask_state(state, torch.as_tensor(~done, dtype=torch.float32, device=device))
            obs = torch.from_numpy(next_obs).to(device)
    bar.close()
    env.close()
    return {"mean_score": float(scores.mean()), "scores": scores.tolist(),
            "episode_steps": steps.tolist(), "episode_frames": (steps * frame_skip).tolist(),
            "lost": int((scores < 0).sum()), **mode.describe()}


def save_gif(frames: list, path: str | os.PathLike, fps: int = 15) -> None:
    """Write frames as an animated GIF, atomically."""
    if not frames:
        raise UserError("no frames to write to the GIF")
    buffer = io.BytesIO()
    frames[0].save(buffer, format="GIF", save_all=True, append_images=frames[1:],
                   duration=int(1000 / fps), loop=0)
    atomic_write_bytes(path, buffer.getvalue())


def evaluate(checkpoint: str | os.PathLike, episodes: int = 10, seed: int = 0,
             gif: str | os.PathLike | None = None, progress: bool = True,
             gif_max_frames: int | None = None, device: str = "cpu", split: str = "test",
             mode: PlayMode | None = None, device_params: SrTiO3Params | None = None) -> dict:
    """Games with a checkpoint's agent on evaluation ``seed`` of ``split``: the eval JSON.

    ``split`` is test (default: the games our reported numbers come from), validation (the games
    checkpoints are chosen on) or raw (``seed`` is the env seed itself). ``mode`` says how actions are
    picked (default greedy). ``gif_max_frames`` caps the GIF at the first frames of the first game;
    ``device`` is the torch device the agent plays on (cpu, cuda, cuda:N). ``device_params`` puts
    another memristor (e.g. fitted by ``mstpn device fit``) under the m-STPN's learned weights.
    """
    start = game_seed(split, seed, episodes)
    agent, saved = load_agent(checkpoint, device_params, device=device)
    frames: list | None = [] if gif else None
    result = play(agent, episodes, start, _frame_skip(saved), mode=mode, gif_frames=frames,
                  gif_max_frames=gif_max_frames, progress=progress)
    if gif:
        save_gif(frames, gif)
    result.update({"checkpoint": str(checkpoint), "core": agent.config.core, "split": split, "seed": seed,
                   "game_seed": start, "episodes": episodes, "trained_frames": saved.get("frames"),
                   "torch_device": device,
                   "device_params": None if device_params is None else device_params.to_dict()})
    return result


def play_for_energy(checkpoint: str | os.PathLike, episodes: int, seed: int,
                    device_params: SrTiO3Params | None = None
                    ) -> tuple[list[dict], list[int], torch.nn.Module]:
    """Greedy games on test seed ``seed`` with the m-STPN's energy probe on: per-step records, steps
    per game, the cell."""
    agent, saved = load_agent(checkpoint, device_params)
    if agent.config.core != "mstpn":
        raise UserError(f"{checkpoint}: energy needs an m-STPN agent, "
                        f"this one's core is {agent.config.core!r}")
    agent.core.enable_energy_probe()
    result = play(agent, episodes, game_seed("test", seed, episodes), _frame_skip(saved))
    return agent.core.energy_log, result["episode_steps"], agent.core


def write_eval_json(result: dict, path: str | os.PathLike) -> None:
    atomic_write_json(Path(path), result)
