"""Fit round trip over several seeds: the README's "Fit round trip" figures come from here.

For the preset and for a parameter set far from it, simulate a noisy ``characterise`` trace per seed,
fit it, and record the relative errors of ``tau0`` and ``v_tau`` and the largest relative errors of
the volatile and long-term increments of pulses that are not in the trace (amplitudes between the
protocol's, widths 0.3 and 3 ms), at conductances the trace visited. Writes round_trip.json beside
this file.

    python results/fit/round_trip.py [--seeds 5]
"""

from __future__ import annotations

import argparse
import itertools
from pathlib import Path

from mstpn.atomic import atomic_write_json
from mstpn.devices import SrTiO3Params
from mstpn.devices.fit import fit_traces
from mstpn.devices.fit_check import increment_errors, visited_range
from mstpn.devices.protocols import characterise_amplitudes, simulate_protocol, simulated_device_params

PARAMETER_SETS = {
    "preset": SrTiO3Params(),
    # tau0 10x, other v_tau, a_st, v0, beta, v_th and conductance range (as tests/devices/test_fit.py)
    "far": SrTiO3Params(g_min=2e-9, g_max=40e-9, a_st=0.5e-9, a_lt=2e-9, v0=0.6, beta=0.7, v_th=1.0,
                        tau0=10.0, v_tau=0.25),
}
UNSEEN_WIDTHS_S = (3e-4, 3e-3)


def round_trip(params: SrTiO3Params, seed: int) -> dict:
    """Relative errors (fractions) of one simulate-then-fit round trip."""
    trace = simulate_protocol("characterise", params, seed=seed)
    true = simulated_device_params(params, seed=seed)  # the simulated device, with its d2d draw
    result = fit_traces([trace], base=params)
    amplitudes = sorted(characterise_amplitudes(params))
    unseen = [(a + b) / 2 for a, b in itertools.pairwise(amplitudes)]
    err_st, err_lt = increment_errors(true, result.params, visited_range(result, 1.0),
                                      visited_range(result, -1.0), amplitudes=unseen, widths=UNSEEN_WIDTHS_S)
    return {"seed": seed, "tau0": abs(result.params.tau0 / true.tau0 - 1),
            "v_tau": abs(result.params.v_tau / true.v_tau - 1), "unseen_dg_st": err_st,
            "unseen_dg_lt": err_lt, "residual_rel_rms": result.residual_rel_rms}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=5, help="seeds 0..N-1 per parameter set (5)")
    args = parser.parse_args()
    report = {"tolerances": {"tau0": 0.10, "v_tau": 0.10, "unseen_dg_st": 0.15, "unseen_dg_lt": 0.15},
              "unseen_widths_s": UNSEEN_WIDTHS_S}
    for name, params in PARAMETER_SETS.items():
        runs = [round_trip(params, seed) for seed in range(args.seeds)]
        worst = {k: max(r[k] for r in runs) for k in ("tau0", "v_tau", "unseen_dg_st", "unseen_dg_lt")}
        report[name] = {"params": params.to_dict(), "runs": runs, "worst": worst}
        print(name, ", ".join(f"{k} {100 * v:.1f} %" for k, v in worst.items()))
    atomic_write_json(Path(__file__).with_name("round_trip.json"), report)


if __name__ == "__main__":
    main()
