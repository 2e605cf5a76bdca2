"""The multi-panel figure of :func:`mstpn.devices.demo.run_device_demo` (matplotlib, Agg backend)."""

from __future__ import annotations

import io
import os
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from mstpn.atomic import atomic_write_bytes

NS = 1e9  # S -> nS


def _note(ax: Any, text: str, loc: str = "upper right") -> None:
    x, ha = (0.97, "right") if "right" in loc else (0.03, "left")
    y, va = (0.95, "top") if "upper" in loc else (0.05, "bottom")
    ax.text(x, y, text, transform=ax.transAxes, ha=ha, va=va, fontsize=8.5,
            bbox={"boxstyle": "round", "fc": "white", "ec": "0.7", "alpha": 0.9})


def _retention(ax: Any, data: dict, merit: dict) -> None:
    for k, ((t, g), lv) in enumerate(zip(data["curves"], merit["levels"], strict=True)):
        ax.plot(t, g * NS, "o-", ms=3, lw=1, label=f"level {k + 1}: {lv['g_retained_S'] * NS:.1f} nS")
    ax.axvline(data["settle"], color="0.5", ls="--", lw=1)
    ax.set(xscale="log", xlabel="time after programming (s)", ylabel="conductance G (nS)",
           title=f"1 Long-term memory: retention (read at {merit['read_v']} V)")
    top = max(float(g.max()) for _, g in data["curves"]) * NS
    ax.set_ylim(0, 1.15 * top)
    ax.text(data["settle"], 0.03 * top, " volatile part gone →", va="bottom", fontsize=8, color="0.4")
    ax.legend(fontsize=8, loc="lower left")
    _note(ax, "drift of the retained level (fit vs log t):\n"
              f"max {100 * merit['max_abs_drift_rel']:.2f} % over the window", "upper right")


def _transmission(ax: Any, data: dict, merit: dict) -> None:
    for (v, i, g), lv in zip(data["sweeps"], merit["levels"], strict=True):
        line = ax.plot(v, i * NS, "o", ms=4)[0]
        vv = np.linspace(v.min(), v.max(), 2)
        ax.plot(vv, g * vv * NS, "-", color=line.get_color(), lw=1,
                label=f"G = {g * NS:.1f} nS, R² = {lv['r2']:.5f}")
    ax.axhline(0, color="0.8", lw=0.8)
    ax.axvline(0, color="0.8", lw=0.8)
    ax.set(xlabel="read voltage V (V)", ylabel="current I (nA)",
           title="2 Transmission: linear read I = G·V")
    ax.legend(fontsize=8, loc="upper left")


def _plasticity(ax: Any, data: dict, merit: dict) -> None:
    ltp, ltd = data["ltp"], data["ltd"]
    n_ltp, n_ltd = len(ltp["first"]), len(ltd["first"])
    x_ltp, x_ltd = np.arange(0, n_ltp + 1), np.arange(n_ltp, n_ltp + n_ltd + 1)
    ax.plot(x_ltp, ltp["settled"] * NS, "o-", ms=3, color="tab:red",
            label=f"potentiation ({merit['ltp']['v']:+.2f} V, 1 ms)")
    ax.plot(x_ltd, ltd["settled"] * NS, "o-", ms=3, color="tab:blue",
            label=f"depression ({merit['ltd']['v']:+.2f} V, 1 ms)")
    ax.plot(x_ltp[1:], ltp["first"] * NS, ".", color="tab:red", alpha=0.35, label="just after pulse")
    ax.plot(x_ltd[1:], ltd["first"] * NS, ".", color="tab:blue", alpha=0.35)
    ax.axvline(n_ltp, color="0.6", ls=":", lw=1)
    ax.set(xlabel="pulse number", ylabel="long-term conductance G (nS)",
           title="3 Long-term plasticity: LTP / LTD trains")
    ax.legend(fontsize=8, loc="lower center")
    _note(ax, f"nonlinearity LTP {merit['ltp']['nonlinearity']:.2f}, LTD {merit['ltd']['nonlinearity']:.2f}\n"
              f"last/first step LTP {merit['ltp']['last_over_first_step']:.2f}, "
              f"LTD {merit['ltd']['last_over_first_step']:.2f}\n(soft bounds: steps shrink)", "upper right")


def _stm(ax: Any, data: dict, merit: dict) -> None:
    t, fit = data["t"], data["fit"]
    ax.plot(t, data["dg"] * NS, "o", ms=3, label="reads")
    tt = np.geomspace(t.min(), t.max(), 200)
    ax.plot(tt, (fit(tt) - data["g0"]) * NS, "-", color="k", lw=1, label="exponential fit")
    ax.set(xscale="log", xlabel="time after pulse (s)", ylabel="conductance change ΔG (nS)",
           title=f"4 Short-term memory: volatile decay at {merit['v_b']} V")
    ax.legend(fontsize=8, loc="lower left")
    _note(ax, f"pulse {merit['v']:.2f} V, {1e3 * merit['t_p_s']:.0f} ms (below v_th)\n"
              f"τ fit {merit['tau_fit_s']:.3g} s, model {merit['tau_model_s']:.3g} s\n"
              f"ΔG left: {merit['dg_remaining_S'] * NS:.2f} nS", "upper right")


def _ppf(ax: Any, data: dict, merit: dict) -> None:
    dt = data["dt"]
    ax.plot(dt, data["index"], "o", label="measured pairs")
    tt = np.geomspace(dt.min(), dt.max(), 200)
    ax.plot(tt, 100 + data["c"] * np.exp(-tt / data["tau"]), "k-", lw=1, label="100 + c·exp(-Δt/τ)")
    ax.axhline(100, color="0.6", ls="--", lw=1)
    ax.set(xscale="log", xlabel="pulse interval Δt (s)", ylabel="PPF index A2/A1 (%)",
           title="5 Short-term facilitation: paired pulses")
    ax.legend(fontsize=8, loc="lower left")
    _note(ax, f"τ fit {merit['fit_tau_s']:.3g} s, model {merit['tau_model_s']:.3g} s", "upper right")


def _decays(ax: Any, data: dict) -> None:
    curves = data["curves"]
    colors = plt.cm.coolwarm(np.linspace(0, 1, len(curves)))
    for (v_b, t, frac), color in zip(curves, colors, strict=True):
        ax.plot(t, frac, "o-", ms=2, lw=1, color=color, label=f"{v_b:+.2f} V")
    ax.set(xscale="log", xlabel="time after pulse (s)", ylabel="volatile part left (fraction)",
           title="6a Meta-plasticity: decay at each bias")
    ax.legend(title="bias V_b", fontsize=7, title_fontsize=8, loc="lower left")


def _taus(ax: Any, data: dict, merit: dict) -> None:
    rows = data["rows"]
    v_b = np.array([r["v_b"] for r in rows])
    ax.plot(v_b, [r["tau_fit_s"] for r in rows], "o", ms=6, label="fitted to decays")
    vv = np.linspace(v_b.min(), v_b.max(), 100)
    dev_tau0, dev_vtau = merit["tau0_model_s"], merit["v_tau_model_V"]
    ax.plot(vv, dev_tau0 * np.exp(vv / dev_vtau), "k-", lw=1, label="model of this device")
    ax.plot(v_b, [r["tau_nominal_s"] for r in rows], "x", color="0.5", label="nominal parameters")
    ax.set(yscale="log", xlabel="bias voltage V_b (V)", ylabel="decay time constant τ (s)",
           title="6b Meta-plasticity: τ set by the bias")
    ax.legend(fontsize=8, loc="upper left")
    _note(ax, f"τ spans {merit['tau_span_decades']:.1f} decades\n"
              f"max |error| {100 * merit['max_abs_rel_error']:.1f} %", "lower right")


def _energy(ax: Any, data: dict) -> None:
    widths = np.array(data["widths"])
    for i, amp in enumerate(data["amps"]):
        ax.plot(widths, data["e_pulse"][i], "o-", label=f"{amp:.1f} V")
    ax.set(xscale="log", yscale="log", xlabel="pulse width t_p (s)", ylabel="energy per pulse (J)",
           title=f"Energy per pulse (from G = {data['g_ref'] * NS:.0f} nS)")
    ax.legend(title="amplitude", fontsize=8, title_fontsize=8, loc="upper left")


def plot_device_functions(data: dict[str, dict], merit: dict[str, Any], path: str | os.PathLike) -> None:
    """Draw the 2 x 4 panel figure of the six functions (and pulse energy) and write it atomically."""
    fig, axes = plt.subplots(2, 4, figsize=(22, 10), constrained_layout=True)
    a = axes.ravel()
    _retention(a[0], data["long_term_memory"], merit["long_term_memory"])
    _transmission(a[1], data["transmission"], merit["transmission"])
    _plasticity(a[2], data["long_term_plasticity"], merit["long_term_plasticity"])
    _stm(a[3], data["short_term_memory"], merit["short_term_memory"])
    _ppf(a[4], data["short_term_facilitation"], merit["short_term_facilitation"])
    _decays(a[5], data["meta_plasticity"])
    _taus(a[6], data["meta_plasticity"], merit["meta_plasticity"])
    _energy(a[7], data["energy"])
    for ax in a:
        ax.grid(True, which="major", alpha=0.3)
    fig.suptitle("Six synaptic functions of one simulated SrTiO3 memristor "
                 f"(seed {merit['seed']}; device-to-device, cycle-to-cycle and read noise on)",
                 fontsize=14)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90)
    plt.close(fig)
    atomic_write_bytes(path, buffer.getvalue())
