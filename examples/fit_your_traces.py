"""Fit your traces: simulate a measurement of a device you choose, write it as a CSV, fit the model to it.

    python examples/fit_your_traces.py --out out/fit_example                 # a simulated device
    python examples/fit_your_traces.py --out out/mine --trace a.csv --trace b.csv   # your measurements
    python examples/fit_your_traces.py --out out/fit_example --quick         # no figure (what CI runs)

A trace is a CSV with header time_s,voltage_v,current_a, as a source-measure unit records it: samples
with |V| >= 0.5 V are pulses, the others reads at the bias held, G = I / V. The fit needs pulses at
>= 3 amplitudes and >= 2 widths and decays at >= 2 bias levels (the `characterise` protocol has them).
It writes params.json, which every command takes (`--params`, `--device-params`).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from mstpn.devices import srtio3_weilenmann2024
from mstpn.devices.fit import fit_traces, write_fit_json
from mstpn.devices.protocols import run_protocol
from mstpn.devices.trace import read_trace_csv, write_trace_csv

SHOWN = (("tau0", "s", 1.0), ("v_tau", "V", 1.0), ("g_max", "nS", 1e9), ("a_st", "nS", 1e9),
         ("a_lt", "nS", 1e9), ("v_th", "V", 1.0), ("read_sigma", "", 1.0))


def simulate(out: Path) -> tuple[Path, object]:
    """A device with a faster decay and a smaller range than the preset, measured with 1 % noise."""
    device = srtio3_weilenmann2024().replace(tau0=0.4, v_tau=0.11, g_max=60e-9)
    run = run_protocol("characterise", device, seed=0, current_noise=0.01)
    path = write_trace_csv(run.trace, out / "trace.csv")
    print(f"simulated {path}: {len(run.trace)} samples over {run.trace.time_s[-1]:.0f} s")
    return path, run.device_params  # the device's own values (its device-to-device draw)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="out/fit_example", help="folder for trace.csv, params.json, fit.png")
    parser.add_argument("--trace", action="append", help="your own trace CSV (repeat for several)")
    parser.add_argument("--quick", action="store_true", help="skip the figure")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if args.trace:
        paths, truth = [Path(p) for p in args.trace], None
    else:
        path, truth = simulate(out)
        paths = [path]

    result = fit_traces([read_trace_csv(p) for p in paths])  # raises a one-line error if a trace is unfit
    write_fit_json(result, out / "params.json")
    print(f"residual {100 * result.residual_rel_rms:.2f} % RMS; wrote {out / 'params.json'}")
    print(f"{'parameter':12s} {'fitted':>10s} {'95 % interval':>22s}" + (f" {'true':>10s}" if truth else ""))
    for name, unit, scale in SHOWN:
        lo, hi = result.intervals.get(name, (float("nan"), float("nan")))
        line = (f"{name + (f' ({unit})' if unit else ''):12s} {getattr(result.params, name) * scale:10.4g} "
                f"{lo * scale:10.4g} .. {hi * scale:<10.4g}")
        if truth is not None:
            line += f" {getattr(truth, name) * scale:10.4g}"
        print(line)
    if truth is not None:
        print("(the fitted read_sigma also holds the 1 % instrument noise: expect ~0.014)")
    if result.not_identified:
        print("not identified by these traces: " + ", ".join(result.not_identified))
    if not args.quick:
        from mstpn.devices.fit_plot import plot_fit

        print(f"wrote {plot_fit(result, out / 'fit.png')}")


if __name__ == "__main__":
    main()
