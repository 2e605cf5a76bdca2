"""Aggregate ``mstpn art`` result files into a markdown table (mean ± spread over seeds per model)."""

from __future__ import annotations

import json
import os
import statistics
from collections.abc import Iterable, Sequence
from pathlib import Path

from mstpn.errors import UserError

MODEL_ORDER = ("stpn", "mstpn", "lstm", "rnn")
MODEL_NAMES = {"stpn": "STPN", "mstpn": "m-STPN", "lstm": "LSTM", "rnn": "RNN"}
THRESHOLD = 0.98
"""Accuracy level whose first epoch the table reports."""


def load_results(paths: Iterable[str | os.PathLike]) -> list[dict]:
    """Read result JSONs; a folder contributes every ``*.json`` inside it (sorted)."""
    files: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            files.extend(sorted(p.glob("*.json")))
        elif p.is_file():
            files.append(p)
        else:
            raise UserError(f"{p}: no such file or folder")
    if not files:
        raise UserError("no ART result files found")
    results = []
    for f in files:
        try:
            data = json.loads(f.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise UserError(f"{f}: not a readable JSON file ({exc})") from None
        if not isinstance(data, dict) or data.get("task") != "associative_retrieval":
            raise UserError(f"{f}: not an `mstpn art` result (no task 'associative_retrieval')")
        if "final_test_acc" not in data:
            raise UserError(f"{f}: run has no finished epoch yet")
        data["_path"] = str(f)
        results.append(data)
    return results


def _first_epoch_at(history: Sequence[dict], level: float) -> int | None:
    return next((row["epoch"] for row in history if row["test_acc"] >= level), None)


def _label(model: str, runs: Sequence[dict]) -> str:
    """Model name; for the m-STPN also its normalisation and whether device noise was on."""
    name = MODEL_NAMES.get(model, model)
    configs = [r.get("mstpn_config") for r in runs if r.get("mstpn_config")]
    if configs:
        cfg = configs[0]
        norm = "row norm" if cfg.get("row_norm") else "presynaptic norm"
        noise = all(cfg.get(k) for k in ("c2c_noise", "read_noise", "d2d_variability"))
        name += f" ({norm}, device noise {'on' if noise else 'off'})"
    return name


def _mean_std(values: Sequence[float]) -> tuple[float, float]:
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


def art_table(results: Sequence[dict]) -> str:
    """Markdown table: per model variant, final test accuracy mean ± sample std over seeds, and context.

    Runs are grouped by model and, for the m-STPN, by normalisation and noise (one row each).
    """
    groups: dict[tuple[str, str], list[dict]] = {}
    for r in results:
        groups.setdefault((r["model"], _label(r["model"], [r])), []).append(r)
    rank = {m: i for i, m in enumerate(MODEL_ORDER)}
    order = sorted(groups, key=lambda key: (rank.get(key[0], len(rank)), key))
    lines = [
        "| model | H | parameters | seeds | test accuracy % (mean ± std) | min – max % "
        f"| epochs run | first epoch with test ≥ {THRESHOLD:.0%} |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for model, label in order:
        runs = sorted(groups[model, label], key=lambda r: r["config"]["seed"])
        accs = [100 * r["final_test_acc"] for r in runs]
        mean, std = _mean_std(accs)
        hidden = sorted({r["hidden_size"] for r in runs})
        params = sorted({r["parameters"] for r in runs})
        epochs = ", ".join(str(r["epochs_run"]) for r in runs)
        firsts = [_first_epoch_at(r["history"], THRESHOLD) for r in runs]
        first = ", ".join("–" if f is None else str(f) for f in firsts)
        lines.append(
            f"| {label} | {'/'.join(map(str, hidden))} "
            f"| {'/'.join(map(str, params))} | {', '.join(str(r['config']['seed']) for r in runs)} "
            f"| {mean:.2f} ± {std:.2f} | {min(accs):.2f} – {max(accs):.2f} | {epochs} | {first} |")
    lines.append("")
    lines.append("Test accuracy: at the epoch with the best validation accuracy; std: sample standard "
                 "deviation over seeds. Epochs run and first epoch at the threshold are per seed.")
    return "\n".join(lines)
