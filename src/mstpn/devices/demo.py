"""The six synaptic functions of one memristor, demonstrated on a simulated device.

:func:`run_device_demo` runs one protocol per function (:mod:`mstpn.devices.protocols`) on the same
simulated device (one seed, one device-to-device draw), measures each function's figure of merit from
the recorded traces alone (:mod:`mstpn.devices.merit`), and writes a multi-panel figure and a JSON
summary. The functions (PAPER.md): long-term memory, transmission, long-term plasticity, short-term
memory, short-term Hebbian facilitation (paired pulses), meta-plasticity (bias-controlled forgetting).
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mstpn.atomic import atomic_write_text
from mstpn.devices.array import DeviceArray
from mstpn.devices.merit import fit_decay, fit_ppf, linear_read, log_drift, nonlinearity, ppf_index
from mstpn.devices.params import SrTiO3Params, srtio3_weilenmann2024
from mstpn.devices.protocols import ProtocolRun, run_protocol
from mstpn.devices.trace import Trace

ENERGY_AMPLITUDES_V = (0.6, 1.0, 1.5, 2.0)
"""Pulse amplitudes of the energy table (V)."""
ENERGY_WIDTHS_S = (1e-4, 1e-3, 1e-2)
"""Pulse widths of the energy table (s)."""
ENERGY_BIASES_V = (-0.45, -0.3, -0.15, 0.15, 0.3, 0.45, 0.6)
"""Bias levels of the hold-power table (V)."""


def _g(trace: Trace, sl: slice | list[int]) -> np.ndarray:
    """Conductance G = I / V of the given samples (S)."""
    return trace.current_a[sl] / trace.voltage_v[sl]


def _long_term_memory(run: ProtocolRun, dev: SrTiO3Params) -> tuple[dict, dict]:
    tr, levels, curves = run.trace, [], []
    settle = 20 * dev.tau(run.events[0]["v_r"])
    for ev in run.events:
        sl = slice(ev["start"], ev["stop"])
        t, g = tr.time_s[sl] - ev["t_pulse_end"], _g(tr, sl)
        late = t >= settle
        drift, per_decade = log_drift(t[late], g[late])
        levels.append({"g_first_read_S": float(g[0]), "g_retained_S": float(g[late].mean()),
                       "window_s": [float(t[late][0]), float(t[late][-1])], "drift_rel": drift,
                       "drift_per_decade_rel": per_decade})
        curves.append((t, g))
    merit = {"read_v": run.events[0]["v_r"], "levels": levels,
             "max_abs_drift_rel": max(abs(lv["drift_rel"]) for lv in levels),
             "note": "drift of the long-term level after the volatile part has decayed (t >= 20 tau); "
                     "fitted line vs log t; the compact model has no long-term drift, so this is read noise"}
    return merit, {"curves": curves, "settle": settle}


def _transmission(run: ProtocolRun) -> tuple[dict, dict]:
    tr, levels, sweeps = run.trace, [], []
    for ev in run.events:
        sl = slice(ev["start"], ev["stop"])
        v, i = tr.voltage_v[sl], tr.current_a[sl]
        g, r2 = linear_read(v, i)
        levels.append({"g_fit_S": g, "g_true_S": ev["g"], "r2": r2})
        sweeps.append((v, i, g))
    return {"levels": levels, "min_r2": min(lv["r2"] for lv in levels)}, {"sweeps": sweeps}


def _ltp_ltd(run: ProtocolRun) -> tuple[dict, dict]:
    tr = run.trace
    base = next(ev for ev in run.events if ev["kind"] == "baseline")
    merit: dict[str, Any] = {}
    plot: dict[str, Any] = {}
    g_prev = float(_g(tr, [base["read"]])[0])
    for phase in ("ltp", "ltd"):
        evs = [ev for ev in run.events if ev.get("phase") == phase]
        settled = np.concatenate([[g_prev], _g(tr, [ev["settled_read"] for ev in evs])])
        steps = np.diff(settled)
        merit[phase] = {"pulses": len(evs), "v": evs[0]["v"], "t_p_s": evs[0]["t_p"],
                        "nonlinearity": nonlinearity(settled),
                        "first_step_S": float(steps[0]), "last_step_S": float(steps[-1]),
                        "last_over_first_step": float(steps[-1] / steps[0]),
                        "g_start_S": float(settled[0]), "g_end_S": float(settled[-1])}
        plot[phase] = {"settled": settled, "first": _g(tr, [ev["first_read"] for ev in evs])}
        g_prev = float(settled[-1])
    merit["note"] = ("nonlinearity = max |(G_n-G_0)/(G_N-G_0) - n/N| of the long-term level after each "
                     "pulse; soft bounds make the steps shrink towards the bound (last/first < 1)")
    return merit, plot


def _short_term_memory(run: ProtocolRun, dev: SrTiO3Params) -> tuple[dict, dict]:
    tr, ev = run.trace, run.events[0]
    g0 = float(_g(tr, slice(*ev["baseline"])).mean())
    sl = slice(ev["start"], ev["stop"])
    t, g = tr.time_s[sl] - ev["t_pulse_end"], _g(tr, sl)
    fit = fit_decay(t, g)
    merit = {"v": ev["v"], "t_p_s": ev["t_p"], "v_b": ev["v_b"], "g_baseline_S": g0,
             "dg_volatile_S": fit.amplitude, "dg_remaining_S": fit.g_inf - g0,
             "tau_fit_s": fit.tau, "tau_model_s": dev.tau(ev["v_b"]), "fit_r2": fit.r2}
    return merit, {"t": t, "dg": g - g0, "fit": fit, "g0": g0}


def _facilitation(run: ProtocolRun, dev: SrTiO3Params) -> tuple[dict, dict]:
    tr, dts, index = run.trace, [], []
    for ev in run.events:
        g_base = float(_g(tr, slice(*ev["baseline"])).mean())
        g1, g2 = _g(tr, [ev["after_first"], ev["after_second"]])
        dts.append(ev["interval_s"])
        index.append(ppf_index(g_base, float(g1), float(g2)))
    c, tau = fit_ppf(np.array(dts), np.array(index))
    v_b = run.events[0]["v_b"]
    merit = {"v": run.events[0]["v"], "t_p_s": run.events[0]["t_p"], "v_b": v_b,
             "interval_s": dts, "ppf_index_percent": index, "fit_amplitude_percent": c,
             "fit_tau_s": tau, "tau_model_s": dev.tau(v_b),
             "note": "PPF index = A2/A1 x 100 %, A = conductance read shortly after a pulse minus the "
                     "baseline; fit PPF = 100 + c exp(-dt/tau)"}
    return merit, {"dt": np.array(dts), "index": np.array(index), "c": c, "tau": tau}


def _metaplasticity(run: ProtocolRun, dev: SrTiO3Params, nominal: SrTiO3Params) -> tuple[dict, dict]:
    tr, rows, curves = run.trace, [], []
    for ev in run.events:
        sl = slice(ev["start"], ev["stop"])
        t, g = tr.time_s[sl] - ev["t_pulse_end"], _g(tr, sl)
        fit = fit_decay(t, g)
        rows.append({"v_b": ev["v_b"], "tau_fit_s": fit.tau, "tau_model_s": dev.tau(ev["v_b"]),
                     "tau_nominal_s": nominal.tau(ev["v_b"]),
                     "rel_error": fit.tau / dev.tau(ev["v_b"]) - 1.0, "fit_r2": fit.r2})
        curves.append((ev["v_b"], t, (g - fit.g_inf) / fit.amplitude))
    v_b = np.array([r["v_b"] for r in rows])
    slope, icpt = np.polyfit(v_b, np.log([r["tau_fit_s"] for r in rows]), 1)
    merit = {"levels": rows, "v_tau_fit_V": float(1.0 / slope), "tau0_fit_s": float(math.exp(icpt)),
             "v_tau_model_V": dev.v_tau, "tau0_model_s": dev.tau0,
             "tau_span_decades": float(math.log10(max(r["tau_fit_s"] for r in rows)
                                                  / min(r["tau_fit_s"] for r in rows))),
             "max_abs_rel_error": max(abs(r["rel_error"]) for r in rows)}
    return merit, {"rows": rows, "curves": curves}


def _energy(params: SrTiO3Params) -> tuple[dict, dict]:
    """Energy per pulse over amplitudes x widths, hold power per bias, one read; all at G_ref."""
    p = params.ideal()
    g_ref = p.g_min + 0.3 * (p.g_max - p.g_min)
    amps, widths = torch.tensor(ENERGY_AMPLITUDES_V), torch.tensor(ENERGY_WIDTHS_S)
    grid = DeviceArray(p, (len(amps), len(widths)), noise=False, variability=False, g_init=g_ref)
    e_pulse = grid.pulse(amps[:, None], widths[None, :]).numpy()
    biases = DeviceArray(p, (len(ENERGY_BIASES_V),), noise=False, variability=False, g_init=g_ref)
    p_hold = biases.hold(torch.tensor(ENERGY_BIASES_V), 1.0).numpy()
    one = DeviceArray(p, (1,), noise=False, variability=False, g_init=g_ref)
    _, e_read = one.read(0.1, 1e-6)
    merit = {"g_ref_S": g_ref,
             "pulse_J": [{"v": float(a), "t_p_s": float(w), "energy_J": float(e_pulse[i, j])}
                         for i, a in enumerate(ENERGY_AMPLITUDES_V) for j, w in enumerate(ENERGY_WIDTHS_S)],
             "hold_power_W": [{"v_b": v, "power_W": float(pw)} for v, pw in zip(ENERGY_BIASES_V, p_hold,
                                                                                strict=True)],
             "read_J": {"v_r": 0.1, "t_read_s": 1e-6, "energy_J": float(e_read.reshape(-1)[0])},
             "note": "pulse V^2 G t_p (G averaged over the pulse), hold V_b^2 G + P_leak(V_b) over 1 s, "
                     "read V_r^2 G t_read; all starting from G_ref"}
    return merit, {"e_pulse": e_pulse, "amps": ENERGY_AMPLITUDES_V, "widths": ENERGY_WIDTHS_S,
                   "g_ref": g_ref}


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (np.floating, np.integer)):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def run_device_demo(out_dir: str | os.PathLike, params: SrTiO3Params | None = None,
                    seed: int = 0) -> dict:
    """Run the six function protocols on one simulated device; write PNG and JSON into ``out_dir``.

    Writes ``device_functions.png`` (one multi-panel figure) and ``device_functions.json`` (the
    figures of merit), each atomically. Returns the JSON content as a dict.
    """
    from mstpn.devices.demo_figure import plot_device_functions  # matplotlib loads slowly: import on use

    params = srtio3_weilenmann2024() if params is None else params
    runs = {name: run_protocol(name, params, seed=seed)
            for name in ("retention", "transmission", "ltp_ltd", "stm", "ppf", "metaplasticity")}
    dev = runs["stm"].device_params
    parts = {
        "long_term_memory": _long_term_memory(runs["retention"], dev),
        "transmission": _transmission(runs["transmission"]),
        "long_term_plasticity": _ltp_ltd(runs["ltp_ltd"]),
        "short_term_memory": _short_term_memory(runs["stm"], dev),
        "short_term_facilitation": _facilitation(runs["ppf"], dev),
        "meta_plasticity": _metaplasticity(runs["metaplasticity"], dev, params),
        "energy": _energy(params),
    }
    result = {"seed": int(seed), "params": params.to_dict(), "device_params": dev.to_dict(),
              "samples": {name: len(run.trace) for name, run in runs.items()},
              **{name: merit for name, (merit, _) in parts.items()}}
    result = _jsonable(result)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    plot_device_functions({name: data for name, (_, data) in parts.items()}, result,
                          out / "device_functions.png")
    atomic_write_text(out / "device_functions.json", json.dumps(result, indent=1) + "\n")
    return result
