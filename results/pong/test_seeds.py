"""Test-seed scores of the shipped Pong agents in every play mode: the README's Pong table.

    python results/pong/test_seeds.py            # plays what is missing, then writes test_seeds.json

Each (agent, mode, test seed) is one `mstpn pong eval --split test` of 10 games, kept as
results/pong/evals/<agent>_<mode>_s<seed>.json; a rerun plays only the missing ones. The test seeds
were never used to train or choose an agent.
"""

from __future__ import annotations

import json
from pathlib import Path

from mstpn.atomic import atomic_write_json
from mstpn.rl.evaluate import PlayMode, evaluate, write_eval_json

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
RECIPE = HERE / "recipe"
AGENTS = {"mstpn": ROOT / "checkpoints" / "pong_mstpn.pt",
          "lstm": ROOT / "checkpoints" / "training" / "pong_lstm" / "checkpoint.pt",
          "mstpn_15M": RECIPE / "pong_mstpn_15M_best.pt", "lstm_15M": RECIPE / "pong_lstm_15M_best.pt"}
"""The shipped agents (41.6 M frames, old recipe) and the best-on-validation agents of the 15 M-frame
runs of the new recipe (recipe/summarise.py)."""
MODES = {"mstpn": ("greedy", "sample", "sticky", "epsilon"), "lstm": ("greedy", "sticky"),
         "mstpn_15M": ("greedy", "sample", "sticky"), "lstm_15M": ("greedy", "sample", "sticky")}
SEEDS, GAMES = (0, 1, 2), 10


def main() -> None:
    summary: dict = {"split": "test", "seeds": list(SEEDS), "games_per_seed": GAMES, "agents": {}}
    for agent, path in AGENTS.items():
        if not path.exists():
            print(f"{agent}: no {path.relative_to(ROOT)}, skipped")
            continue
        for mode in MODES[agent]:
            scores: list[float] = []
            for seed in SEEDS:
                out = HERE / "evals" / f"{agent}_{mode}_s{seed}.json"
                if not out.exists():
                    write_eval_json(evaluate(path, GAMES, seed, split="test", mode=PlayMode(mode),
                                             progress=False), out)
                scores += json.loads(out.read_text())["scores"]
            summary["agents"].setdefault(agent, {"checkpoint": str(path.relative_to(ROOT))})[mode] = {
                "mean_score": round(sum(scores) / len(scores), 2), "games": len(scores),
                "lost": sum(s < 0 for s in scores), "at_most_11": sum(s <= 11 for s in scores),
                "min": min(scores)}
            print(agent, mode, summary["agents"][agent][mode])
    atomic_write_json(HERE / "test_seeds.json", summary)


if __name__ == "__main__":
    main()
