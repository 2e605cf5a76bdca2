"""A sweep on a Ray cluster: one job per spec, results back in out/ray_sweep/ (one JSON per job).

    ray start --head --num-cpus 2
    ray job submit --address http://127.0.0.1:8265 --working-dir . -- python -m examples.ray_sweep
    ray stop

`--working-dir .` ships this folder to the cluster, so its workers can import this file's job
function as `examples.ray_sweep:decay_after`. Without Ray: `python -m examples.ray_sweep --executor local`.
"""

from __future__ import annotations

import argparse

from mstpn.devices.params import srtio3_weilenmann2024
from mstpn.sweep import run_sweep


def decay_after(spec: dict) -> dict:
    """Fraction of the volatile conductance left after ``dt_s`` at bias ``v_b`` (the preset device)."""
    import math

    tau = srtio3_weilenmann2024().tau(spec["v_b"])
    return {"tau_s": tau, "left": math.exp(-spec["dt_s"] / tau)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--executor", default="ray", choices=("serial", "local", "ray"))
    parser.add_argument("--out", default="out/ray_sweep")
    args = parser.parse_args()
    specs = [{"v_b": v / 10, "dt_s": 1.0} for v in range(-6, 7, 2)]
    records = run_sweep("examples.ray_sweep:decay_after", specs, args.out, executor=args.executor,
                        progress=False)
    for record in records.values():
        print(f"V_b {record['spec']['v_b']:+.1f} V: tau {record['result']['tau_s']:.3g} s, "
              f"{100 * record['result']['left']:.1f} % left after 1 s")


if __name__ == "__main__":
    main()
