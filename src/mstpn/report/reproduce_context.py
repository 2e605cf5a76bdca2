"""What every part of `mstpn reproduce` shares: its budget, its folders, and table helpers.

A :class:`Budget` names how much each part does: ``quick`` (seconds per part, for CI), ``default``
(the whole report within about 10 minutes on a 2-core CPU) and ``full`` (the README's ART seeds and
epochs, 10 Pong games). A :class:`Context` carries the budget, the output folder, the Pong checkpoint,
and what one part hands to a later one (the greedy games, reused by the energy part).
"""

from __future__ import annotations

import math
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mstpn.errors import UserError

ART_MODELS = ("stpn", "mstpn", "lstm", "rnn")
"""The ART comparison's models, in report order."""


@dataclass(frozen=True)
class Budget:
    """How much each part of the report runs."""

    name: str
    """quick, default or full."""
    art_train: int
    """ART training sequences."""
    art_val: int
    """ART validation sequences."""
    art_test: int
    """ART test sequences."""
    art_epochs: dict[str, tuple[int, int]]
    """Per model: (most epochs, early-stopping patience; 0 = none)."""
    art_seeds: tuple[int, ...]
    """Seeds per model."""
    art_reuse: bool
    """Reuse finished result JSONs of the same plan from the results folder (results/art)."""
    pong_episodes: int
    """Greedy Pong games."""
    gif_frames: int
    """GIF length: the first this many agent steps of game 0."""
    fit_noise: float = 0.01
    """Relative instrument noise on the simulated characterisation trace's current samples."""


def _same(epochs: int, patience: int = 0) -> dict[str, tuple[int, int]]:
    return {m: (epochs, patience) for m in ART_MODELS}


BUDGETS = {
    "quick": Budget("quick", art_train=512, art_val=256, art_test=256, art_epochs=_same(1),
                    art_seeds=(0,), art_reuse=False, pong_episodes=1, gif_frames=30),
    "default": Budget("default", art_train=40_000, art_val=2_000, art_test=5_000, art_epochs=_same(8),
                      art_seeds=(0,), art_reuse=False, pong_episodes=3, gif_frames=120),
    # the README's ART table (results/art/run_all.sh): seeds 0-2, the paper's 100k/10k/20k sets,
    # STPN and m-STPN at most 20 epochs (patience 5), LSTM and RNN at most 50 (patience 10)
    "full": Budget("full", art_train=100_000, art_val=10_000, art_test=20_000,
                   art_epochs={"stpn": (20, 5), "mstpn": (20, 5), "lstm": (50, 10), "rnn": (50, 10)},
                   art_seeds=(0, 1, 2), art_reuse=True, pong_episodes=10, gif_frames=120),
}


@dataclass
class Context:
    """The run's settings and the hand-over between parts."""

    out: Path
    """Report folder; each part writes into its own subfolder."""
    budget: Budget
    checkpoint: Path
    """The Pong agent to evaluate (and whose energy to report)."""
    art_results: Path = Path("results/art")
    """Where ``--full`` looks for finished ART result JSONs to reuse."""
    seed: int = 0
    shared: dict[str, Any] = field(default_factory=dict)
    """What a part leaves for a later one (e.g. ``pong_games`` for the energy part)."""
    status: Any = None
    """Callable(str) that shows what a part is doing right now (the progress display), or None."""

    def folder(self, name: str) -> Path:
        """``out/name``, created."""
        path = self.out / name
        path.mkdir(parents=True, exist_ok=True)
        return path

    def say(self, text: str) -> None:
        """Show ``text`` as the current activity, if there is a progress display."""
        if self.status is not None:
            self.status(text)


def sh(*args: object) -> str:
    """A shell command line, each argument quoted where needed."""
    return " ".join(shlex.quote(str(a)) for a in args)


def missing_checkpoint_message(path: Path) -> str:
    """What to do when the Pong checkpoint is not there."""
    return (f"{path}: no such checkpoint. The trained m-STPN agent is committed as "
            f"checkpoints/pong_mstpn.pt (restore it with `git checkout -- checkpoints/pong_mstpn.pt`); "
            f"or train one with `mstpn pong train --core mstpn --algo a2c --frames 20000000 "
            f"--out runs/pong_mstpn` (days on a 2-core CPU; resumable with --resume) and pass "
            f"`--checkpoint runs/pong_mstpn/checkpoint.pt`")


def require_checkpoint(path: Path) -> None:
    """Raise a :class:`UserError` with :func:`missing_checkpoint_message` if ``path`` is no file."""
    if not path.is_file():
        raise UserError(missing_checkpoint_message(path))


# ------------------------------------------------------------------------------------------ numbers
def fmt(value: float | None, digits: int = 3) -> str:
    """``value`` to ``digits`` significant digits, thousands separated, trailing zeros dropped.

    Very large or small magnitudes use exponent notation; None and NaN give '—'.
    """
    if value is None or not math.isfinite(value):
        return "—"
    if value == 0:
        return "0"
    if abs(value) >= 1e7 or abs(value) < 1e-3:
        return f"{value:.{digits}g}"
    decimals = max(0, digits - 1 - math.floor(math.log10(abs(value))))
    text = f"{value:,.{decimals}f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def rel_diff(ours: float | None, ref: float | None) -> str:
    """``ours`` against ``ref`` as a signed percentage; '—' when either is missing or ref is 0."""
    if ours is None or ref is None or ref == 0 or not (math.isfinite(ours) and math.isfinite(ref)):
        return "—"
    return f"{100.0 * (ours / ref - 1.0):+.1f} %"
