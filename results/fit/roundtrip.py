"""Fit round trips over the parameter space: the README's device-fitting table comes from here.

Family: ``--sets`` parameter sets drawn by :func:`mstpn.devices.roundtrip.draw_params` across the
documented user ranges (:data:`mstpn.devices.roundtrip.USER_RANGES`), each simulated with every
protocol of :data:`~mstpn.devices.roundtrip.ROUND_TRIP_PROTOCOLS` (none of them ``characterise``)
and fitted from the preset. Reference: the preset and a set far from it through ``characterise``,
``--seeds`` devices each. Per round trip: relative errors of tau0 and v_tau, the largest relative
errors of the volatile / long-term increments of pulses not in the trace, whether every 95 %
interval covers the simulated device's value, the noise estimates and the noise-floor verdict.

Writes roundtrip.json (every round trip) and roundtrip.md (worst cases and coverage) beside this file.

    python results/fit/roundtrip.py [--sets 24] [--seeds 5]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from mstpn.atomic import atomic_write_json, atomic_write_text
from mstpn.devices import SrTiO3Params
from mstpn.devices.roundtrip import (
    ROUND_TRIP_PROTOCOLS,
    TOLERANCES,
    USER_RANGES,
    draw_params,
    round_trip,
)

HERE = Path(__file__).resolve().parent
REFERENCE = {
    "preset": SrTiO3Params(),
    # tau0 10x, other v_tau, a_st, v0, beta, v_th and conductance range (as tests/devices/test_fit.py)
    "far": SrTiO3Params(g_min=2e-9, g_max=40e-9, a_st=0.5e-9, a_lt=2e-9, v0=0.6, beta=0.7, v_th=1.0,
                        tau0=10.0, v_tau=0.25),
}
METRICS = ("tau0", "v_tau", "dg_st", "dg_lt")


def _timed(params: SrTiO3Params, protocol: str, seed: int, label: str) -> dict:
    start = time.process_time()
    row = round_trip(params, protocol, seed=seed)
    row.update(label=label, cpu_s=time.process_time() - start, params=params.to_dict())
    status = "refused" if "error" in row else ("ok" if row["passed"] else "FAIL")
    detail = row.get("error", "") or ", ".join(f"{k} {100 * row[k]:.1f} %" for k in METRICS)
    print(f"{label:10s} {protocol:14s} {status:7s} {detail}", flush=True)
    return row


def summarise(rows: list[dict]) -> dict:
    """Worst cases, passes, coverage and noise figures of a list of round trips."""
    done = [r for r in rows if "error" not in r]
    covered = [v for r in done for v in r["covered"].values()]
    per_param: dict[str, list[bool]] = {}
    for r in done:
        for name, ok in r["covered"].items():
            per_param.setdefault(name, []).append(ok)
    c2c = [r for r in done if r["c2c_sigma"][2]]
    return {
        "round_trips": len(rows), "refused": len(rows) - len(done), "passed": sum(r["passed"] for r in done),
        "worst": {k: max(r[k] for r in done) for k in METRICS} if done else {},
        "coverage": float(np.mean(covered)) if covered else None, "intervals": len(covered),
        "coverage_by_parameter": {k: [int(sum(v)), len(v)] for k, v in sorted(per_param.items())},
        "noise_floor_reached": sum(r["noise_floor"]["reached"] for r in done),
        "read_sigma_worst_rel_error": max(abs(r["read_sigma"][0] / r["read_sigma"][1] - 1) for r in done)
        if done else None,
        "c2c_identified": len(c2c),
        "c2c_worst_abs_error": max(abs(r["c2c_sigma"][0] - r["c2c_sigma"][1]) for r in c2c) if c2c else None,
        "cpu_s_per_fit": float(np.mean([r["fit_cpu_s"] for r in done])) if done else None,
        "cpu_s_max": float(max(r["fit_cpu_s"] for r in done)) if done else None,
    }


def _pct(x: float | None) -> str:
    return "–" if x is None else f"{100 * x:.1f} %"


def markdown(report: dict) -> str:
    """The tables of roundtrip.md (and the README)."""
    tol = report["tolerances"]
    lines = [f"Round trips: {report['sets']} parameter sets drawn across the user ranges x "
             f"{len(report['protocols'])} protocols (fitted from the preset), and `characterise` on the "
             f"preset and a far set ({report['seeds']} devices each). Worst case over the round trips; "
             f"targets tau0, v_tau <= {100 * tol['tau0']:.0f} %, increments of unseen pulses <= "
             f"{100 * tol['dg_st']:.0f} %.", "",
             "| protocol | round trips | within all targets | worst tau0 | worst v_tau | worst dg_st | "
             "worst dg_lt | 95 % intervals covering the truth | noise floor reached | c2c identified |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for name, s in report["summary"].items():
        w = s["worst"]
        lines.append(f"| {name} | {s['round_trips']} | {s['passed']} | {_pct(w.get('tau0'))} | "
                     f"{_pct(w.get('v_tau'))} | {_pct(w.get('dg_st'))} | {_pct(w.get('dg_lt'))} | "
                     f"{_pct(s['coverage'])} ({s['intervals']}) | {s['noise_floor_reached']} | "
                     f"{s['c2c_identified']} |")
    every = report["summary"]["family (all)"]
    lines += ["", "Coverage of the 95 % intervals by parameter (family): "
              + ", ".join(f"{k} {a}/{b}" for k, (a, b) in every["coverage_by_parameter"].items()) + ".",
              f"read_sigma from the trace: worst relative error {_pct(every['read_sigma_worst_rel_error'])}; "
              f"c2c_sigma identified in {every['c2c_identified']} of {every['round_trips']} round trips, "
              f"worst absolute error there {_pct(every['c2c_worst_abs_error'])}; "
              f"fit time {every['cpu_s_per_fit']:.2f} s on average, {every['cpu_s_max']:.2f} s at most "
              "(process CPU time, one thread)."]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sets", type=int, default=24, help="parameter sets in the family (24)")
    parser.add_argument("--seeds", type=int, default=5, help="devices per reference set (5)")
    args = parser.parse_args()
    family = [_timed(draw_params(s), protocol, s, f"set {s}")
              for s in range(args.sets) for protocol in ROUND_TRIP_PROTOCOLS]
    reference = [_timed(params, "characterise", seed, name)
                 for name, params in REFERENCE.items() for seed in range(args.seeds)]
    summary = {p: summarise([r for r in family if r["protocol"] == p]) for p in ROUND_TRIP_PROTOCOLS}
    summary["family (all)"] = summarise(family)
    for name in REFERENCE:
        summary[f"characterise, {name}"] = summarise([r for r in reference if r["label"] == name])
    report = {"tolerances": TOLERANCES, "user_ranges": USER_RANGES, "sets": args.sets, "seeds": args.seeds,
              "protocols": list(ROUND_TRIP_PROTOCOLS), "summary": summary, "family": family,
              "reference": reference}
    atomic_write_json(HERE / "roundtrip.json", report)
    atomic_write_text(HERE / "roundtrip.md", markdown(report))
    print(markdown(report))


if __name__ == "__main__":
    main()
