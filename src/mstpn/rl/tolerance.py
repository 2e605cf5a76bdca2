"""Device tolerance map: how a trained m-STPN agent plays as each device property moves off the preset.

One property is swept at a time, the others stay as trained. Every point is scored with greedy games
on the test seeds over several device-to-device draws (each draw redraws the per-synapse devices);
the learned weights, biases, plasticity and bias voltages stay. Driver properties (bias range and
levels, pulses per step, write threshold) change the cell's configuration; a narrower bias range
clips each synapse's learned bias voltage into it. Points run as jobs of :mod:`mstpn.sweep`, so a
killed map resumes without replaying finished points.

With ``finetune_frames`` N > 0 every point (and draw) first fine-tunes the agent for N frames on its
device (:func:`mstpn.rl.finetune.finetune`: the agent's recipe, learning rate 1e-4 decaying to 0,
training seed = the draw, so it trains on the chip it is then scored on) and scores the fine-tuned
agent. That costs ~4 ms per frame per point on one core here (N = 100,000: ~7 min per point and
draw); N is part of each job's spec, so fine-tuned points never reuse points evaluated as trained.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import math
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from mstpn.atomic import atomic_write_bytes, atomic_write_json
from mstpn.devices.params import SrTiO3Params
from mstpn.errors import UserError
from mstpn.nn.mstpn import MSTPNConfig
from mstpn.rl.finetune import FINETUNE_LR, check_finetune_frames, finetune
from mstpn.sweep import run_sweep
from mstpn.tasks.pong import game_seed


@dataclass(frozen=True)
class Axis:
    """One swept property: where it lives, the values tried, how to label it."""

    name: str
    where: str
    """"device" (an SrTiO3Params field) or "driver" (an MSTPNConfig field; bias_range sets both ends)."""
    values: tuple[float, ...]
    label: str
    log: bool = False


AXES = (
    Axis("c2c_sigma", "device", (0.0, 0.025, 0.05, 0.1, 0.2, 0.4), "cycle-to-cycle sigma"),
    Axis("read_sigma", "device", (0.0, 0.005, 0.01, 0.02, 0.05, 0.1), "read-noise sigma"),
    Axis("d2d_sigma", "device", (0.0, 0.05, 0.1, 0.2, 0.4), "device-to-device sigma"),
    Axis("bias_range", "driver", (0.15, 0.3, 0.45, 0.6), "bias range +- (V)"),
    Axis("bias_levels", "driver", (2, 4, 8, 16, 0), "bias levels (0 = continuous)"),
    Axis("max_pulses", "driver", (1, 2, 4, 8, 16, 32), "most pulses per step", log=True),
    Axis("write_threshold", "driver", (0.0, 1.0, 2.0, 4.0, 8.0), "write threshold (pulses)"),
    Axis("g_max", "device", (25e-9, 50e-9, 100e-9, 200e-9, 400e-9), "g_max (S)", log=True),
    Axis("tau0", "device", (0.1, 0.3, 1.0, 3.0, 10.0), "tau0 (s)", log=True),
    Axis("v_tau", "device", (0.05, 0.09, 0.1303, 0.2, 0.3), "v_tau (V)"),
)
AXES_BY_NAME = {axis.name: axis for axis in AXES}
TARGET_SCORE = 18.0


def checkpoint_digest(path: str | os.PathLike) -> str:
    """16 hex digits of the checkpoint file's SHA-256: a changed agent never reuses old points."""
    with open(path, "rb") as handle:
        return hashlib.sha256(handle.read()).hexdigest()[:16]


def _clip_bias_voltages(agent, old: MSTPNConfig) -> None:
    """Keep each synapse's learned bias voltage, clipped into the (new) driver range of the cell."""
    from mstpn.rl.warmstart import carried_bias_logit

    cell = agent.core
    with torch.no_grad():
        cell.bias_logit.copy_(carried_bias_logit(cell.bias_logit, old, cell.config))


def evaluate_point(spec: dict) -> dict:
    """Sweep job: the agent at one value of one property, one device draw, greedy test games (after a
    fine-tuning on that chip when the spec has ``finetune_frames``)."""
    from mstpn.rl.agent import AgentConfig
    from mstpn.rl.checkpoint import load_checkpoint
    from mstpn.rl.evaluate import _frame_skip, load_agent, play

    axis = AXES_BY_NAME[spec["property"]]
    value = spec["value"]
    # the trained device and driver, read from the checkpoint's configuration (no agent built for it)
    stored = AgentConfig(**load_checkpoint(spec["checkpoint"])["agent_config"])
    params = SrTiO3Params.from_dict(stored.device_params) if stored.device_params else SrTiO3Params()
    trained = MSTPNConfig(**stored.mstpn)
    if axis.where == "device":
        params = params.replace(**{axis.name: value})
    overrides = {}
    if axis.name == "bias_range":
        overrides = {"v_b_min": -value, "v_b_max": value}
    elif axis.where == "driver":
        overrides = {axis.name: type(getattr(trained, axis.name))(value)}
    games, tuned = spec["games"], {}
    with tempfile.TemporaryDirectory() as tmp:
        if spec.get("finetune_frames"):
            # the fine-tuning run draws its chip from the draw number as load_agent does (training seed
            # = draw), carries the bias voltages into a new bias range itself, and is scored on its chip
            with contextlib.redirect_stdout(io.StringIO()):  # the run's log lines, one set per point
                path = finetune(spec["checkpoint"], Path(tmp) / "finetune", frames=spec["finetune_frames"],
                                device_params=params, mstpn_overrides=overrides, seed=spec["draw"],
                                lr=spec["finetune_lr"], torch_threads=torch.get_num_threads())
            summary = json.loads((Path(tmp) / "finetune" / "summary.json").read_text())
            tuned = {"finetune": {k: summary[k] for k in ("frames", "wall_s", "score_mean20")}}
            agent, saved = load_agent(path)
        else:
            # every point, the trained value included, runs on freshly drawn devices: draw k is the
            # same chip
            agent, saved = load_agent(spec["checkpoint"], params, mstpn_overrides=overrides,
                                      draw=spec["draw"])
            if axis.name == "bias_range":
                _clip_bias_voltages(agent, trained)
        result = play(agent, games, game_seed("test", spec["seed"], games), _frame_skip(saved),
                      max_frames=spec["max_frames"], progress=False)
    return {"mean_score": result["mean_score"], "scores": result["scores"], "lost": result["lost"], **tuned}


def tolerance_specs(checkpoint: str | os.PathLike, properties: list[str], draws: int, games: int,
                    seed: int, max_frames: int, finetune_frames: int = 0) -> list[dict]:
    """Every job of a map: property x value x draw (fine-tuned first when ``finetune_frames`` > 0;
    the fields are only in the spec then, so maps without fine-tuning keep their job ids)."""
    unknown = [p for p in properties if p not in AXES_BY_NAME]
    if unknown:
        raise UserError(f"--properties: unknown {', '.join(unknown)}; choose from {', '.join(AXES_BY_NAME)}")
    if draws < 1 or games < 1 or max_frames < 1:
        raise UserError("--draws, --games and --max-frames: must be >= 1")
    game_seed("test", seed, games)  # validates seed and games
    tuning = ({"finetune_frames": finetune_frames, "finetune_lr": FINETUNE_LR}
              if check_finetune_frames(finetune_frames) else {})
    # the path as given (relative paths keep job ids the same in another clone); the digest says which
    # agent it is
    path = str(checkpoint)
    digest = checkpoint_digest(path)
    return [{"checkpoint": path, "checkpoint_sha256": digest, "property": name, "value": value,
             "draw": draw, "games": games, "seed": seed, "max_frames": max_frames, **tuning}
            for name in properties for value in AXES_BY_NAME[name].values for draw in range(draws)]


def tolerance_map(checkpoint: str | os.PathLike, out: str | os.PathLike, *,
                  properties: list[str] | None = None, draws: int = 2, games: int = 10, seed: int = 0,
                  max_frames: int = 108_000, executor: str = "local", threads_per_job: int = 1,
                  ray_address: str | None = None, progress: bool = True, finetune_frames: int = 0) -> dict:
    """Run (or resume) the map in ``out``: jobs/ (one file per point and draw), tolerance.json, .png.

    ``finetune_frames`` > 0 fine-tunes the agent on every point's chip for that many frames before
    its games (see the module's docstring for the cost)."""
    from mstpn.rl.evaluate import load_agent

    agent, _ = load_agent(checkpoint)
    if agent.config.core != "mstpn":
        raise UserError(f"{checkpoint}: a tolerance map needs an m-STPN agent, not {agent.config.core!r}")
    properties = properties or [axis.name for axis in AXES]
    specs = tolerance_specs(checkpoint, properties, draws, games, seed, max_frames, finetune_frames)
    records = run_sweep("mstpn.rl.tolerance:evaluate_point", specs, Path(out) / "jobs", executor=executor,
                        threads_per_job=threads_per_job, ray_address=ray_address, progress=progress)
    preset = _preset_values(agent.core.params, agent.core.config)
    summary = {"checkpoint": str(checkpoint), "draws": draws, "games": games, "test_seed": seed,
               "max_frames": max_frames, "finetune_frames": finetune_frames, "target_score": TARGET_SCORE,
               "properties": {}}
    for name in properties:
        points = []
        for value in AXES_BY_NAME[name].values:
            scores = [r["result"]["mean_score"] for r in records.values()
                      if r["spec"]["property"] == name and r["spec"]["value"] == value]
            points.append({"value": value, "mean_score": float(np.mean(scores)),
                           "std_over_draws": float(np.std(scores)), "draws": len(scores)})
        summary["properties"][name] = {"preset": preset[name], "points": points}
    atomic_write_json(Path(out) / "tolerance.json", summary)
    atomic_write_bytes(Path(out) / "tolerance.png", render_tolerance_png(summary))
    return summary


def _preset_values(params: SrTiO3Params, config: MSTPNConfig) -> dict[str, float]:
    values = {axis.name: getattr(params if axis.where == "device" else config, axis.name, None)
              for axis in AXES}
    values["bias_range"] = config.v_b_max
    return values


def render_tolerance_png(summary: dict) -> bytes:
    """A panel per property: score against value, the agent's own value marked, the +18 line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(summary["properties"])
    cols = min(5, len(names))
    rows = math.ceil(len(names) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 2.7 * rows), squeeze=False, sharey=True)
    for ax, name in zip(axes.flat, names, strict=False):
        axis, entry = AXES_BY_NAME[name], summary["properties"][name]
        xs = [p["value"] for p in entry["points"]]
        ys = [p["mean_score"] for p in entry["points"]]
        ax.errorbar(xs, ys, yerr=[p["std_over_draws"] for p in entry["points"]], fmt="o-", ms=4)
        ax.axhline(summary["target_score"], color="grey", ls="--", lw=0.8)
        if entry["preset"] is not None:
            ax.axvline(entry["preset"], color="C3", lw=0.8)
        if axis.log:
            ax.set_xscale("log", base=2)
        ax.set_xlabel(axis.label, fontsize=8)
        ax.tick_params(labelsize=7)
        ax.set_ylim(-21.5, 21.5)
    for ax in axes.flat[len(names):]:
        ax.axis("off")
    for ax in axes[:, 0]:
        ax.set_ylabel("greedy score (test games)", fontsize=8)
    fig.suptitle(f"Tolerance of {summary['checkpoint']}: one property at a time (red: the agent's own "
                 f"value, dashed: +{summary['target_score']:g}); {summary['draws']} device draw(s) x "
                 f"{summary['games']} games per point"
                 + (f", fine-tuned {summary['finetune_frames']:,} frames on each"
                    if summary.get("finetune_frames") else ""), fontsize=9)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    plt.close(fig)
    return buffer.getvalue()
