"""Export a trained agent from a run folder: the weights and what is needed to rebuild and cite them.

The exported file is a verified checkpoint (see :mod:`mstpn.rl.checkpoint`) without the optimizer
and RNG state, so it is a third of the size of a training checkpoint; ``mstpn pong eval`` and
``mstpn energy`` read either.
"""

from __future__ import annotations

import os
from pathlib import Path

from mstpn.errors import UserError
from mstpn.rl.checkpoint import load_checkpoint, save_checkpoint

KEPT = ("kind", "config", "agent_config", "model", "update", "frames", "wall_s", "best_validation")
WHICH = {"latest": "checkpoint.pt", "best": "best.pt"}
"""The checkpoints of a run folder an export can take: the latest, or the best on validation."""


def export_agent(run: str | os.PathLike, out: str | os.PathLike, which: str = "latest") -> dict:
    """Write the agent of ``run``'s latest (or best-on-validation) checkpoint to ``out``.

    Returns what was written (no weights).
    """
    if which not in WHICH:
        raise UserError(f"--which: must be latest or best, got {which!r}")
    run = Path(run)
    path = run / WHICH[which]
    if which == "best" and not path.exists():
        raise UserError(f"{run}: no best.pt yet (it is written at the first validation of the run)")
    saved = load_checkpoint(path)
    scores = saved.get("scores", [])
    agent = {key: saved[key] for key in KEPT if key in saved}
    agent["provenance"] = {
        "run": str(run), "checkpoint": which,
        "training_games": len(scores),
        "score_mean20": sum(scores[-20:]) / len(scores[-20:]) if scores else None,
        "resume": f"mstpn pong train --out {run} --resume",
    }
    save_checkpoint(out, agent)
    return {k: v for k, v in agent.items() if k != "model"}
