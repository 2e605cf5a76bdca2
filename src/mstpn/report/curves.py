"""Learning curves of Pong runs: score against emulator frames and against wall-clock time."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import numpy as np

from mstpn.atomic import atomic_write_bytes
from mstpn.errors import UserError


def read_metrics(run: str | os.PathLike) -> list[dict]:
    """The metrics rows of a run folder (or a metrics.jsonl file)."""
    path = Path(run)
    path = path / "metrics.jsonl" if path.is_dir() else path
    if not path.is_file():
        raise UserError(f"{run}: no metrics.jsonl (is it a run folder made by `mstpn pong train`?)")
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _has_score(row: dict) -> bool:
    score = row.get("score_mean20")
    return score is not None and score == score  # NaN (no finished game yet) != NaN


def plot_learning_curves(runs: dict[str, str | os.PathLike], out: str | os.PathLike,
                         title: str = "Pong learning curves") -> None:
    """One PNG, two panels: mean score of the last 20 training games vs frames and vs hours, and the
    greedy score on the validation games (dots) where the run was validated."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_f, ax_t) = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
    for index, (label, run) in enumerate(runs.items()):
        color = f"C{index}"  # one colour per run in both panels, even when a run has no curve
        metrics = read_metrics(run)
        checks = [r for r in metrics if "validation_score" in r]
        if checks:
            for ax, key, scale in ((ax_f, "frames", 1e6), (ax_t, "wall_s", 3600)):
                ax.plot([r[key] / scale for r in checks], [r["validation_score"] for r in checks], "o",
                        ms=3.5, color=color, label=f"{label}, validation (greedy)" if ax is ax_f else None)
        rows = [r for r in metrics if _has_score(r)]
        if not rows:  # still in the legend, so a missing curve is explained, not silently absent
            ax_f.plot([], [], color=color, label=f"{label} (no finished games yet)")
            continue
        frames = np.array([r["frames"] for r in rows]) / 1e6
        hours = np.array([r["wall_s"] for r in rows]) / 3600
        score = np.array([r["score_mean20"] for r in rows])
        ax_f.plot(frames, score, color=color, label=f"{label}, training (sampled)")
        ax_t.plot(hours, score, color=color)
    for ax, xlabel in ((ax_f, "emulator frames (millions)"), (ax_t, "wall-clock (hours, this 2-core CPU)")):
        ax.axhline(18, color="grey", lw=0.8, ls="--")
        ax.set_xlabel(xlabel)
        ax.grid(alpha=0.3)
    ax_f.set_ylabel("score (training: mean of last 20 games)")
    ax_f.set_ylim(-21.5, 21.5)
    ax_f.legend(loc="upper left")
    ax_t.text(0.01, 18.4, "+18: target of the greedy evaluation", color="grey",
              transform=ax_t.get_yaxis_transform())
    fig.suptitle(title)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110)
    plt.close(fig)
    atomic_write_bytes(out, buffer.getvalue())
