"""The recipe comparison of issue 13: 15 M-frame A2C runs of the m-STPN and the LSTM-48 with the new
recipe (orthogonal init, normalised advantages), the 10-step / lambda 0.95 variant, and the old
recipe's first 15 M frames, as one figure and one JSON.

    python results/pong/recipe/summarise.py [--copy-runs runs/pong]

``--copy-runs`` first copies each run's metrics.jsonl from its run folder (runs/ is not in git) to
results/pong/recipe/<run>_metrics.jsonl; without it the committed copies are used.
"""

from __future__ import annotations

import argparse
import io
import json
import shutil
from pathlib import Path

from mstpn.atomic import atomic_write_bytes, atomic_write_json

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[2]
LIMIT = 15_000_000
RUNS = {
    "mstpn_B": ("m-STPN, new recipe (20-step, lambda 1.0)", HERE / "mstpn_B_metrics.jsonl"),
    "mstpn_A": ("m-STPN, 10-step, lambda 0.95 (stopped)", HERE / "mstpn_A_metrics.jsonl"),
    "lstm_B": ("LSTM-48, new recipe", HERE / "lstm_B_metrics.jsonl"),
    "mstpn_old": ("m-STPN, old recipe", ROOT / "checkpoints" / "training" / "pong_mstpn" / "metrics.jsonl"),
    "lstm_old": ("LSTM-48, old recipe", ROOT / "checkpoints" / "training" / "pong_lstm" / "metrics.jsonl"),
}
"""Run name -> (label, metrics file). The old runs' budgets were raised during training, so their
learning rate decayed differently over these first 15 M frames."""


def rows_of(path: Path) -> list[dict]:
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return [r for r in rows if r["frames"] <= LIMIT]


def summary_of(rows: list[dict]) -> dict:
    train = [r for r in rows if r.get("score_mean20") == r.get("score_mean20") and "score_mean20" in r]
    checks = [r for r in rows if "validation_score" in r]
    best = max(checks, key=lambda r: r["validation_score"]) if checks else None
    return {"frames": train[-1]["frames"], "wall_s": train[-1]["wall_s"],
            "training_score_mean20": train[-1]["score_mean20"],
            "validation": [[r["frames"], r["validation_score"]] for r in checks],
            "best_validation": None if best is None else {"frames": best["frames"],
                                                          "score": best["validation_score"]},
            "training_at": {f"{m}M": next((r["score_mean20"] for r in train if r["frames"] >= m * 1e6), None)
                            for m in (5, 10, 15)}}


def plot(curves: dict[str, tuple[str, list[dict]]], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4.5))
    for index, (label, rows) in enumerate(curves.values()):
        train = [r for r in rows if "score_mean20" in r and r["score_mean20"] == r["score_mean20"]]
        ax.plot([r["frames"] / 1e6 for r in train], [r["score_mean20"] for r in train], color=f"C{index}",
                lw=1, label=label)
        checks = [r for r in rows if "validation_score" in r]
        ax.plot([r["frames"] / 1e6 for r in checks], [r["validation_score"] for r in checks], "o", ms=4,
                color=f"C{index}")
    ax.axhline(20, color="grey", lw=0.8, ls="--")
    ax.set_xlabel("emulator frames (millions)")
    ax.set_ylabel("score: training (line, sampled) / validation (dots, greedy)")
    ax.set_ylim(-21.5, 21.5)
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left", fontsize=8)
    ax.set_title("Pong A2C recipes, first 15 M frames (one seed each)")
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110)
    plt.close(fig)
    atomic_write_bytes(out, buffer.getvalue())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--copy-runs", help="folder holding the run folders mstpn_A, mstpn_B, lstm_B")
    args = parser.parse_args()
    if args.copy_runs:
        for name in ("mstpn_A", "mstpn_B", "lstm_B"):
            shutil.copyfile(Path(args.copy_runs) / name / "metrics.jsonl", RUNS[name][1])
    curves = {name: (label, rows_of(path)) for name, (label, path) in RUNS.items()}
    summary = {name: {"label": label, **summary_of(rows)} for name, (label, rows) in curves.items()}
    atomic_write_json(HERE / "recipe.json", summary)
    plot(curves, HERE / "recipe.png")
    for entry in summary.values():
        print(f"{entry['label']}: {entry['frames'] / 1e6:.1f} M frames, "
              f"training {entry['training_score_mean20']:+.1f}, best validation {entry['best_validation']}")


if __name__ == "__main__":
    main()
