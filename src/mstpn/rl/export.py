"""Export a trained agent from a run folder: the weights and what is needed to rebuild and cite them.

The exported file is a verified checkpoint (see :mod:`mstpn.rl.checkpoint`) without the optimizer
and RNG state, so it is a third of the size of a training checkpoint; ``mstpn pong eval`` and
``mstpn energy`` read either.
"""

from __future__ import annotations

import os
from pathlib import Path

from mstpn.rl.checkpoint import load_checkpoint, save_checkpoint

KEPT = ("kind", "config", "agent_config", "model", "update", "frames", "wall_s")


def export_agent(run: str | os.PathLike, out: str | os.PathLike) -> dict:
    """Write the agent of ``run``'s last checkpoint to ``out``; returns what was written (no weights)."""
    run = Path(run)
    saved = load_checkpoint(run / "checkpoint.pt")
    scores = saved.get("scores", [])
    agent = {key: saved[key] for key in KEPT if key in saved}
    agent["provenance"] = {
        "run": str(run),
        "training_games": len(scores),
        "score_mean20": sum(scores[-20:]) / len(scores[-20:]) if scores else None,
        "resume": f"mstpn pong train --out {run} --resume",
    }
    save_checkpoint(out, agent)
    return {k: v for k, v in agent.items() if k != "model"}
