"""Benchmark: `fit_traces` on a 30,000-sample trace (target: a few tens of seconds at most).

The trace is the ``random_pulses`` protocol with 1,000 pulses and 28 jittered reads after each
(30,001 samples) on the preset device with its noise. Reported: wall time and the CPU time of this
process (on a machine shared with other work the wall time says more about the neighbours), the
samples, pulses used, residual and whether the fit reached its noise floor. Writes JSON.

    python benchmarks/device_fit.py [--out benchmarks/results/device_fit.json] [--pulses 1000]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent
DEFAULT_OUT = ROOT / "results" / "device_fit.json"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--pulses", type=int, default=1000)
    parser.add_argument("--reads", type=int, default=28)
    args = parser.parse_args()

    from mstpn.atomic import atomic_write_text
    from mstpn.devices.fit import fit_traces
    from mstpn.devices.params import srtio3_weilenmann2024
    from mstpn.devices.protocols import random_pulses

    params = srtio3_weilenmann2024()
    trace = random_pulses(params, seed=0, pulses=args.pulses, reads=args.reads).trace
    wall, cpu = time.perf_counter(), time.process_time()
    result = fit_traces([trace], base=params)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    report = {
        "samples": len(trace), "pulses_used": len(result.increments["v"]), "fit_wall_s": round(wall, 3),
        "fit_cpu_s": round(cpu, 3), "residual_rel_rms": result.residual_rel_rms,
        "noise_floor_reached": result.noise_floor.reached, "load_average_1min": os.getloadavg()[0],
        "cpus": os.cpu_count(), "torch_threads": __import__("torch").get_num_threads(),
        "python": platform.python_version(),
    }
    atomic_write_text(args.out, json.dumps(report, indent=2) + "\n")
    print(json.dumps(report))


if __name__ == "__main__":
    main()
