"""The shipped m-STPN's losing rally: replay its +10 test game greedily and draw how the points are lost.

    python results/pong/trap.py      # writes results/pong/trap.png and trap.json

Game 9 of test seed 2 (`mstpn pong eval checkpoints/pong_mstpn.pt --seed 2`) ends 21-11. Played
alone from its env seed (so with another draw of the device noise than in the batch of 10) it ends
21-11 as well. The script records every point and the agent's paddle
height (rows of the paddle's colour in the paddle's columns of the 84 x 84 frame) before each lost
point, and draws the frames of the last lost rally.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import torch

from mstpn.atomic import atomic_write_bytes, atomic_write_json
from mstpn.rl.evaluate import load_agent, noise_seeded
from mstpn.tasks.pong import PongConfig, game_seed, make_pong

HERE = Path(__file__).resolve().parent
AGENT = HERE.parents[1] / "checkpoints" / "pong_mstpn.pt"
SEED = game_seed("test", 2, 10) + 9  # game 9 of test seed 2
PADDLE_VALUE, PADDLE_COLUMNS = 147, slice(70, 80)  # the agent's (right) paddle in the grey frame
ACTION_NAMES = ("noop", "fire", "up", "down", "up+fire", "down+fire")


@torch.no_grad()
def replay() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Frames (T, 84, 84), rewards (T,) and actions (T,) of the greedy game."""
    agent, _ = load_agent(AGENT)
    env = make_pong(PongConfig(num_envs=1))
    obs, _ = env.reset(seed=SEED)
    state = agent.initial_state(1)
    frames, rewards, actions = [], [], []
    with noise_seeded(agent, SEED + 1):  # one game alone: its noise differs from the batch's, the game not
        while True:
            logits, _, state = agent(torch.from_numpy(obs), state)
            action = logits.argmax(-1)
            frames.append(obs[0, 0].copy())
            actions.append(int(action))
            obs, reward, terminated, truncated, _ = env.step(action.numpy())
            rewards.append(float(reward[0]))
            if terminated[0] or truncated[0]:
                break
    env.close()
    return np.array(frames), np.array(rewards), np.array(actions)


def paddle_height(frame: np.ndarray) -> float:
    rows, _ = np.nonzero(frame[15:77, PADDLE_COLUMNS] == PADDLE_VALUE)
    return float(rows.mean() + 15) if len(rows) else float("nan")


def main() -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    frames, rewards, actions = replay()
    points = np.flatnonzero(rewards)
    lost = np.flatnonzero(rewards < 0)
    gaps = np.diff(lost)
    last = int(lost[-1])
    window = range(last - 24, last + 1)
    result = {
        "env_seed": SEED, "steps": len(rewards), "score": float(rewards.sum()),
        "points": [[int(i), int(rewards[i])] for i in points],
        "lost_every_steps": sorted({int(g) for g in gaps}),
        "paddle_height_before_each_loss": [
            [round(paddle_height(frames[i]), 1) for i in range(p - 24, p + 1, 4)] for p in lost],
        "actions_last_lost_rally": [ACTION_NAMES[a] for a in actions[list(window)]],
    }
    atomic_write_json(HERE / "trap.json", result)
    shown = list(range(last - 28, last + 1, 4))
    fig, axes = plt.subplots(1, len(shown) + 1, figsize=(2.0 * (len(shown) + 1), 2.6),
                             gridspec_kw={"width_ratios": [1] * len(shown) + [1.6]})
    for ax, step in zip(axes, shown, strict=False):
        ax.imshow(frames[step], cmap="gray", vmin=0, vmax=255)
        ax.set_title(f"step {step}\n{ACTION_NAMES[actions[step]]}", fontsize=8)
        ax.axis("off")
    ax = axes[-1]
    for p in lost:
        heights = [paddle_height(frames[i]) for i in range(p - 24, p + 1)]
        ax.plot(range(-24, 1), heights, color="C3", alpha=0.4)
    ax.invert_yaxis()
    ax.set_xlabel("steps before the lost point", fontsize=8)
    ax.set_ylabel("agent paddle row (0 = top)", fontsize=8)
    ax.set_title(f"all {len(lost)} lost points", fontsize=8)
    ax.tick_params(labelsize=7)
    fig.suptitle(f"Greedy m-STPN, test game ending {21:d}-{len(lost)}: the same rally lost every "
                 f"{', '.join(map(str, result['lost_every_steps']))} steps", fontsize=9)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110)
    plt.close(fig)
    atomic_write_bytes(HERE / "trap.png", buffer.getvalue())
    print({k: v for k, v in result.items() if k != "points"})


if __name__ == "__main__":
    main()
