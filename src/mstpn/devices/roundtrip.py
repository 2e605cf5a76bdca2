"""Round trips over the parameter space a user may bring: draw a device, simulate, fit, score.

:data:`USER_RANGES` documents the ranges (SI units). :func:`draw_params` draws one parameter set from
them; :func:`round_trip` runs one protocol on the simulated device (with its own device-to-device
draw, cycle-to-cycle and read noise), fits the trace starting from the preset (the user's device is
unknown to the fitter), and scores the fit against the device actually simulated:

- ``tau0`` and ``v_tau``: relative errors;
- ``dg_st`` / ``dg_lt``: the largest relative error of the fitted model's volatile / long-term
  increments (:func:`mstpn.devices.fit_check.increment_errors`) for pulses the trace did not have,
  at amplitudes and widths between the extremes it used, from conductances it visited;
- ``covered``: for every parameter with a 95 % interval, whether the interval holds the truth.

``results/fit/roundtrip.py`` runs the whole family; ``tests/devices/test_fit_family.py`` a subset.
"""

from __future__ import annotations

import math
import time

import numpy as np

from mstpn.devices.fit import fit_traces
from mstpn.devices.fit_check import increment_errors, visited_range
from mstpn.devices.params import SrTiO3Params
from mstpn.devices.protocols import run_protocol

USER_RANGES: dict[str, tuple[float, float, str]] = {
    "g_min": (1e-10, 1e-6, "log"),
    "g_ratio": (5.0, 100.0, "log"),
    "tau0": (1e-3, 100.0, "log"),
    "v_tau": (0.08, 0.3, "lin"),
    "v0": (0.2, 0.8, "lin"),
    "beta": (0.2, 1.0, "lin"),
    "v_th": (0.8, 2.0, "lin"),
    "frac_st": (0.02, 0.2, "log"),
    "frac_lt": (0.01, 0.08, "log"),
    "read_sigma": (0.002, 0.03, "log"),
    "c2c_sigma": (0.0, 0.1, "lin"),
}
"""(low, high, spacing) of each drawn quantity. ``g_min`` 0.1 nS - 1 uS and ``g_max = g_ratio g_min``
(at most 10 uS), so the range spans 0.1 nS to 10 uS; ``tau0`` 1 ms - 100 s (s); ``v_tau``, ``v0``,
``v_th`` (V); ``beta`` (1). ``a_st`` and ``a_lt`` are set from the fraction of the range one pulse of
width t0 moves: ``frac_st`` the volatile change of a pulse at v_th, ``frac_lt`` the long-term change of
one at v_th + v0. Noise: ``read_sigma`` 0.2 - 3 %, ``c2c_sigma`` 0 - 10 %; ``d2d_sigma`` stays the
preset's 10 % (each simulated device draws its own variation, and the fit is scored against it)."""
G_MAX_LIMIT = 1e-5
"""Largest g_max drawn (S)."""
ROUND_TRIP_PROTOCOLS = ("pulse_trains", "random_pulses", "width_sweep")
"""Protocols of the family, all different from ``characterise`` (see :mod:`mstpn.devices.protocols`)."""
TOLERANCES = {"tau0": 0.10, "v_tau": 0.10, "dg_st": 0.15, "dg_lt": 0.15}
"""Largest relative errors a round trip may have (fractions)."""


def _draw(rng: np.random.Generator, name: str) -> float:
    lo, hi, spacing = USER_RANGES[name]
    if spacing == "log":
        return float(math.exp(rng.uniform(math.log(lo), math.log(hi))))
    return float(rng.uniform(lo, hi))


def draw_params(seed: int) -> SrTiO3Params:
    """One parameter set drawn from :data:`USER_RANGES` (same seed, same set)."""
    rng = np.random.default_rng([int(seed), 2024])
    x = {name: _draw(rng, name) for name in USER_RANGES}
    g_min = x["g_min"]
    g_max = min(g_min * x["g_ratio"], G_MAX_LIMIT)
    span = g_max - g_min
    return SrTiO3Params(g_min=g_min, g_max=g_max, a_st=x["frac_st"] * span / math.expm1(x["v_th"] / x["v0"]),
                        a_lt=x["frac_lt"] * span, v0=x["v0"], beta=x["beta"], v_th=x["v_th"], tau0=x["tau0"],
                        v_tau=x["v_tau"], read_sigma=x["read_sigma"], c2c_sigma=x["c2c_sigma"])


def unseen_pulses(result) -> tuple[list[float], list[float]]:
    """Amplitudes (V) and widths (s) between the extremes of a fit's pulses, not at its own settings:
    the 0.2, 0.4, 0.6, 0.8 and 0.9 points of the amplitude range (the last ones above v_th when the
    trace's top pulses are), the 1/3 and 2/3 points of the log width range."""
    amps = np.abs(result.increments["v"])
    widths = result.increments["t_p"]
    lo, hi = float(amps.min()), float(amps.max())
    wl, wh = math.log(float(widths.min())), math.log(float(widths.max()))
    return ([lo + f * (hi - lo) for f in (0.2, 0.4, 0.6, 0.8, 0.9)],
            [math.exp(wl + f * (wh - wl)) for f in (1 / 3, 2 / 3)])


def round_trip(params: SrTiO3Params, protocol: str, seed: int = 0,
               base: SrTiO3Params | None = None) -> dict:
    """Simulate ``protocol`` on a device drawn around ``params``, fit it from ``base`` (default the
    preset), and score the fit (see the module docstring). Returns a JSON-able dict; a fit that
    refuses the trace gives ``{"error": message}`` with the rest missing."""
    run = run_protocol(protocol, params, seed=seed)
    true = run.device_params.replace(read_sigma=params.read_sigma, c2c_sigma=params.c2c_sigma)
    out: dict = {"protocol": protocol, "seed": seed, "samples": len(run.trace)}
    start, cpu = time.perf_counter(), time.process_time()
    try:
        result = fit_traces([run.trace], base=base or SrTiO3Params())
    except Exception as exc:  # a refusal is a result of the round trip too
        out.update(error=str(exc), passed=False)
        return out
    out["fit_wall_s"], out["fit_cpu_s"] = time.perf_counter() - start, time.process_time() - cpu
    amplitudes, widths = unseen_pulses(result)
    err_st, err_lt = increment_errors(true, result.params, visited_range(result, 1.0),
                                      visited_range(result, -1.0), amplitudes=amplitudes, widths=widths)
    fitted = result.params
    out.update(tau0=abs(fitted.tau0 / true.tau0 - 1), v_tau=abs(fitted.v_tau / true.v_tau - 1),
               dg_st=err_st, dg_lt=err_lt, residual_rel_rms=result.residual_rel_rms,
               noise_floor=result.noise_floor.to_json(),
               read_sigma=[fitted.read_sigma, true.read_sigma],
               c2c_sigma=[fitted.c2c_sigma, true.c2c_sigma, "c2c_sigma" in result.fitted],
               c2c_estimate=result.noise["c2c_sigma"].to_json(),
               not_identified=list(result.not_identified))
    out["covered"] = {name: bool(lo <= getattr(true, name) <= hi)
                      for name, (lo, hi) in result.intervals.items()}
    out["passed"] = all(out[k] <= tol for k, tol in TOLERANCES.items())
    return out
