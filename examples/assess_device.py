"""Assess a device: is it good enough for the trained m-STPN Pong agent, and what would it save?

    python examples/assess_device.py --out out/assess_example             # 1 greedy game, ~1 min
    python examples/assess_device.py --out out/assess_example --games 3
    python examples/assess_device.py --out out/assess_example --quick     # no games (what CI runs)

It simulates a measurement of a device whose volatile memory fades three times faster than the
preset's (tau0 = 0.3 s), fits it, and calls :func:`mstpn.report.assess.assess_device`, the function
behind `mstpn device assess`: one report (report.html, report.md) with the device's six synaptic
functions, the fit and its uncertainties, where the device sits on the agent's tolerance map, the
agent's score on the device, the energy per game against GPUs, and a verdict naming the limiting
property. With your own data: `mstpn device assess your.csv --out DIR`, or pass your CSVs here.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from mstpn.devices import srtio3_weilenmann2024
from mstpn.devices.protocols import run_protocol
from mstpn.devices.trace import write_trace_csv
from mstpn.report.assess import assess_device

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="out/assess_example", help="report folder")
    parser.add_argument("--trace", action="append", help="your own trace CSV (repeat for several)")
    parser.add_argument("--games", type=int, default=1, help="greedy test games on the device (1)")
    parser.add_argument("--quick", action="store_true", help="no games: map and energy only")
    parser.add_argument("--checkpoint", default=str(ROOT / "checkpoints" / "pong_mstpn.pt"))
    parser.add_argument("--tolerance", default=str(ROOT / "results/pong/tolerance/tolerance.json"))
    args = parser.parse_args()
    out = Path(args.out)
    traces = args.trace
    if not traces:
        device = srtio3_weilenmann2024().replace(tau0=0.3)
        run = run_protocol("characterise", device, seed=0, current_noise=0.01)
        traces = [str(write_trace_csv(run.trace, out / "measured" / "trace.csv"))]
        print(f"simulated a measurement: {traces[0]}")
    summary = assess_device(traces, out, games=0 if args.quick else args.games, checkpoint=args.checkpoint,
                            tolerance=args.tolerance, progress=True)
    print(summary["verdict"])
    if summary["played"]:
        print(f"agent on this device: {summary['played']['mean_score']:+.1f} "
              f"(scores {summary['played']['scores']})")
    print(f"open {out / 'report.html'} ({summary['seconds']:.0f} s)")


if __name__ == "__main__":
    main()
