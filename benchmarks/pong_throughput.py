"""Pong throughput: raw vectorised env steps/s, and A2C training env-steps/s with the m-STPN and the
LSTM core, in one run on this machine. Writes JSON (figures, ratios, machine).

    python benchmarks/pong_throughput.py [--updates 12] [--out benchmarks/results/pong_throughput.json]

Training speed is measured from the trainer's own metrics log after warm-up updates (which include
torch.compile of the m-STPN kernels), so it is what a real run sees.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np

from mstpn.atomic import atomic_write_json
from mstpn.rl import a2c
from mstpn.rl.agent import AgentConfig
from mstpn.rl.common import machine_info
from mstpn.tasks.pong import PongConfig, make_pong


def raw_env_steps_per_s(num_envs: int, seconds: float) -> float:
    env = make_pong(PongConfig(num_envs=num_envs))
    env.reset(seed=0)
    rng = np.random.default_rng(0)
    steps, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        env.step(rng.integers(0, 6, size=num_envs))
        steps += num_envs
    env.close()
    return steps / (time.perf_counter() - start)


def training_steps_per_s(core: str, updates: int, warmup: int, torch_threads: int) -> float:
    config = a2c.A2CConfig(frames=(warmup + updates) * 16 * 20 * 4, log_every=1,
                           torch_threads=torch_threads, agent=AgentConfig(core=core))
    with tempfile.TemporaryDirectory() as tmp:
        a2c.train(config, Path(tmp) / "run", progress=False)
        rows = [json.loads(line) for line in (Path(tmp) / "run" / "metrics.jsonl").read_text().splitlines()]
    first, last = rows[warmup - 1], rows[-1]
    return (last["update"] - first["update"]) * config.steps_per_update / (last["wall_s"] - first["wall_s"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--updates", type=int, default=12, help="timed updates per core (after warm-up)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed updates (compile, caches)")
    parser.add_argument("--torch-threads", type=int, default=2)
    parser.add_argument("--out", default="benchmarks/results/pong_throughput.json")
    args = parser.parse_args()
    raw = raw_env_steps_per_s(16, 10.0)
    mstpn = training_steps_per_s("mstpn", args.updates, args.warmup, args.torch_threads)
    lstm = training_steps_per_s("lstm", args.updates, args.warmup, args.torch_threads)
    result = {
        "raw_env_steps_per_s": round(raw, 1), "a2c_mstpn_env_steps_per_s": round(mstpn, 1),
        "a2c_lstm_env_steps_per_s": round(lstm, 1),
        "mstpn_frames_per_s": round(4 * mstpn, 1), "mstpn_vs_raw_env": round(mstpn / raw, 3),
        "mstpn_vs_lstm": round(mstpn / lstm, 3),
        "setup": {"num_envs": 16, "rollout": 20, "frame_skip": 4, "torch_threads": args.torch_threads,
                  "timed_updates": args.updates},
        "machine": machine_info(),
    }
    atomic_write_json(args.out, result)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
