"""Report parts 1 and 2: the six synaptic functions of one device, and a fit of a simulated trace."""

from __future__ import annotations

import math

from mstpn.devices.params import SrTiO3Params, srtio3_weilenmann2024
from mstpn.report.document import Section
from mstpn.report.reproduce_context import Context, fmt, rel_diff, sh

FIT_PARAMS = (("tau0", "s", 1.0), ("v_tau", "V", 1.0), ("a_st", "nS", 1e9), ("v0", "V", 1.0),
              ("beta", "", 1.0), ("a_lt", "nS", 1e9), ("v_th", "V", 1.0), ("g_min", "nS", 1e9),
              ("g_max", "nS", 1e9), ("read_sigma", "", 1.0))
"""Parameters compared after the fit: name, display unit, factor from SI to that unit."""
FIT_CRITERIA = {"tau0": 0.10, "v_tau": 0.10}
"""Round-trip tolerances the fit must meet (issue 2): tau0 and v_tau within 10 %."""


def _leak_nw(params: SrTiO3Params, v_b: float) -> float:
    from mstpn.devices.physics import leak_power

    return float(leak_power(v_b, params)) * 1e9


def device_part(ctx: Context, sec: Section) -> None:
    """Run the six function protocols on one simulated device; figure, figures of merit, paper facts."""
    from mstpn.devices.demo import run_device_demo

    out = ctx.folder("device")
    sec.command(sh("mstpn", "device", "demo", "--out", out, "--seed", ctx.seed))
    params = srtio3_weilenmann2024()
    r = run_device_demo(out, params, seed=ctx.seed)
    sec.figure(out / "device_functions.png",
               "The six synaptic functions of one simulated SrTiO3 memristor (default preset, "
               "device-to-device, cycle-to-cycle and read noise on), each measured from its own "
               "protocol's trace.")
    ltm, tr, lp = r["long_term_memory"], r["transmission"], r["long_term_plasticity"]
    stm, ppf, meta = r["short_term_memory"], r["short_term_facilitation"], r["meta_plasticity"]
    levels = meta["levels"]
    sec.table(["#", "synaptic function", "figure of merit (this run)"], [
        ["1", "long-term memory", f"retained level drifts at most {100 * ltm['max_abs_drift_rel']:.2f} % "
                                  f"over {fmt(ltm['levels'][0]['window_s'][0])}–"
                                  f"{fmt(ltm['levels'][0]['window_s'][1])} s"],
        ["2", "synaptic transmission", f"linear read I = G V, R² ≥ {tr['min_r2']:.5f} at "
                                       f"{len(tr['levels'])} conductance levels"],
        ["3", "long-term plasticity", f"{lp['ltp']['pulses']} LTP + {lp['ltd']['pulses']} LTD pulses of "
                                      f"±{lp['ltp']['v']:.2f} V: {1e9 * lp['ltp']['g_start_S']:.1f} → "
                                      f"{1e9 * lp['ltp']['g_end_S']:.1f} → "
                                      f"{1e9 * lp['ltd']['g_end_S']:.1f} nS; "
                                      f"nonlinearity {lp['ltp']['nonlinearity']:.2f} / "
                                      f"{lp['ltd']['nonlinearity']:.2f} (soft bounds)"],
        ["4", "short-term memory", f"volatile ΔG {1e9 * stm['dg_volatile_S']:.2f} nS decays with τ = "
                                   f"{fmt(stm['tau_fit_s'])} s at {stm['v_b']:+.2f} V "
                                   f"(model {fmt(stm['tau_model_s'])} s)"],
        ["5", "short-term Hebbian plasticity", f"paired-pulse facilitation up to "
                                               f"{max(ppf['ppf_index_percent']):.0f} %, fading with "
                                               f"τ = {fmt(ppf['fit_tau_s'])} s"],
        ["6", "meta-plasticity", f"bias sets τ from {fmt(levels[0]['tau_fit_s'])} s at "
                                 f"{levels[0]['v_b']:+.2f} V to {fmt(levels[-1]['tau_fit_s'])} s at "
                                 f"{levels[-1]['v_b']:+.2f} V ({meta['tau_span_decades']:.1f} decades)"],
    ], caption="Every function is read off the simulated measurement trace, not from the model's "
               "internals (device_functions.json holds all numbers).")

    dev = srtio3_weilenmann2024()
    tau_lo, tau_hi = dev.tau(-0.6), dev.tau(0.6)
    later_span = math.log10(3.7e4 / 41.0)
    ours_span = math.log10(tau_hi / tau_lo)
    sec.table(["quantity", "paper (PAPER.md)", "ours", "difference", "note"], [
        ["idle power per synapse at G = 0, V_b = 0.6 V", "4.3 nW (measured)",
         f"{_leak_nw(dev, 0.6):.2f} nW", rel_diff(_leak_nw(dev, 0.6), 4.3), "model input (p_leak_ref)"],
        ["conductance range", "low, tens of nS", f"{1e9 * dev.g_min:.0f}–{1e9 * dev.g_max:.0f} nS", "—",
         "assumption of the preset"],
        ["decay τ across the bias range", "41 s → 3.7e4 s over −0.6…+0.6 V (a later paper's slow "
         f"component: {later_span:.1f} decades)", f"{fmt(tau_lo)} s → {fmt(tau_hi)} s "
         f"({ours_span:.1f} decades)", f"{ours_span - later_span:+.1f} decades",
         "orientation only: a different paper and component"],
        ["short decays", "1–10 s", f"τ = {fmt(dev.tau(0.0))} s at 0 V, {fmt(dev.tau(0.2))} s at +0.2 V",
         "—", "in range"],
        ["six functions in one device", "all six", f"all six demonstrated ({len(r['samples'])} protocols)",
         "—", ""],
    ], caption="The device facts PAPER.md states, beside the default preset of the model.")
    sec.summary = (f"six functions shown; τ {fmt(levels[0]['tau_fit_s'])} s → "
                   f"{fmt(levels[-1]['tau_fit_s'])} s over "
                   f"{levels[0]['v_b']:+.2f}…{levels[-1]['v_b']:+.2f} V, "
                   f"PPF up to {max(ppf['ppf_index_percent']):.0f} %")


def fit_part(ctx: Context, sec: Section) -> None:
    """Simulate a noisy ``characterise`` trace, write it as CSV, fit it back; true vs recovered."""
    from mstpn.atomic import atomic_write_bytes
    from mstpn.devices.fit import fit_traces, write_fit_json
    from mstpn.devices.fit_plot import render_fit_png
    from mstpn.devices.protocols import run_protocol
    from mstpn.devices.trace import read_trace_csv, write_trace_csv

    out = ctx.folder("fit")
    csv, params_json, png = out / "trace.csv", out / "params.json", out / "fit.png"
    noise = ctx.budget.fit_noise
    sec.command(sh("mstpn", "device", "simulate", "--protocol", "characterise", "--seed", ctx.seed,
                   "--noise", noise, "--out", csv),
                sh("mstpn", "device", "fit", csv, "--out", params_json, "--plot", png))
    ctx.say("simulate characterise")
    run = run_protocol("characterise", srtio3_weilenmann2024(), seed=ctx.seed, current_noise=noise)
    write_trace_csv(run.trace, csv)
    ctx.say("fit")
    result = fit_traces([read_trace_csv(csv)], base=srtio3_weilenmann2024())
    write_fit_json(result, params_json)
    atomic_write_bytes(png, render_fit_png(result))
    sec.figure(png, f"Fit of the model to a simulated `characterise` trace ({len(run.trace)} samples, "
                    f"{len(result.increments['v'])} pulses used; device-to-device, cycle-to-cycle and "
                    f"read noise plus {100 * noise:g} % instrument noise).")
    true, got = run.device_params, result.params
    reads = [float(g) for tr in result.traces for g in (tr.read_g.min(), tr.read_g.max())]
    visited = f"the trace reads {1e9 * min(reads):.3g}–{1e9 * max(reads):.3g} nS"
    expected_sigma = math.hypot(true.read_sigma, noise)
    notes = {"g_min": f"bound; {visited}", "g_max": f"bound; {visited}",
             "read_sigma": f"includes the {100 * noise:g} % instrument noise: expect "
                           f"√(σ_read² + σ_instr²) = {expected_sigma:.4g} "
                           f"({rel_diff(got.read_sigma, expected_sigma)})"}
    rows = []
    for name, unit, scale in FIT_PARAMS:
        t, f = getattr(true, name) * scale, getattr(got, name) * scale
        tol = FIT_CRITERIA.get(name)
        check = (notes.get(name, "—") if tol is None
                 else ("within" if abs(f / t - 1) <= tol else "OUTSIDE") + f" ±{tol:.0%}")
        label = f"`{name}`" + (f" ({unit})" if unit else "")
        rows.append([label, fmt(t, 4), fmt(f, 4), rel_diff(f, t), check])
    rows.append(["residual (relative RMS of G)", "—", f"{100 * result.residual_rel_rms:.2f} %", "—",
                 f"read-noise floor {100 * result.phase_rel_rms:.2f} %"])
    sec.table(["parameter", "true (simulated device)", "fitted", "difference", "criterion / note"], rows,
              caption="True values are the simulated device's own (the preset with its device-to-device "
                      "draw). Parameters that trade off against each other (a_st with v0 and beta; a_lt "
                      "with v_th) need not match one by one: what matters is that the fitted model "
                      "predicts the conductance changes (right-hand panel of the figure). PAPER.md has "
                      "no fit to compare with; the criterion is the project's round-trip test.")
    for note in result.notes:
        sec.text(f"Fit note: {note}")
    misses = [n for n, tol in FIT_CRITERIA.items()
              if abs(getattr(got, n) / getattr(true, n) - 1) > tol]
    sec.summary = (f"τ0 {rel_diff(got.tau0, true.tau0)}, v_τ {rel_diff(got.v_tau, true.v_tau)} from the "
                   f"truth; residual {100 * result.residual_rel_rms:.2f} % RMS"
                   + (f"; {', '.join(misses)} outside tolerance" if misses else ""))
