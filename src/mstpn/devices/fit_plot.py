"""Figure of a device fit: measured and fitted conductance over time, tau against bias, increments."""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np

from mstpn.atomic import atomic_write_bytes
from mstpn.devices.fit import FitResult, TraceFit

MAX_TRACE_PANELS = 3


def _trace_panel(ax, tr: TraceFit, *, by_index: bool) -> None:
    """Measured and fitted conductance of one trace against time, or against read number."""
    if by_index:
        x_read = np.arange(len(tr.read_t))
        ax.plot(x_read, tr.read_g * 1e9, ".", ms=3, color="0.45", label="data")
        ax.plot(x_read, tr.model_g * 1e9, "-", lw=1.0, color="C3", label="model")
        x_pulse = np.searchsorted(tr.read_t, tr.pulse_t) - 0.5
        ax.set_xlabel("read number (every phase equally wide)")
    else:
        ax.plot(tr.read_t, tr.read_g * 1e9, ".", ms=3, color="0.45", label="data (reads, G = I/V)")
        order = np.argsort(tr.curve_t, kind="stable")
        ax.plot(tr.curve_t[order], tr.curve_g[order] * 1e9, "-", lw=1.0, color="C3",
                label="fitted model, run over the whole trace")
        x_pulse = tr.pulse_t
        ax.set_xlabel("time (s)")
        ax.set_title(os.path.basename(tr.source), fontsize=10, loc="left")
    bottom, top = ax.get_ylim()
    top = top + 0.06 * (top - bottom)
    for sign, marker, color, name in ((1, "^", "C0", "potentiating pulse"),
                                      (-1, "v", "C2", "depressing pulse")):
        sel = np.sign(tr.pulse_v) == sign
        if sel.any():
            ax.plot(x_pulse[sel], np.full(sel.sum(), top), marker, ms=4, color=color, ls="none",
                    label=name, clip_on=False)
    ax.set_ylim(bottom, top + 0.04 * (top - bottom))
    ax.set_ylabel("conductance (nS)")


UNITS = {"a_st": (1e9, "nS"), "a_lt": (1e9, "nS"), "g_min": (1e9, "nS"), "g_max": (1e9, "nS"),
         "v0": (1.0, "V"), "v_th": (1.0, "V"), "beta": (1.0, "")}


def _parameter_box(result: FitResult) -> str:
    """The pulse constants with their 95 % intervals; '(not identified)' where the trace cannot fix one."""
    p, lines = result.params, []
    for name, (scale, unit) in UNITS.items():
        value = getattr(p, name) * scale
        if name in result.intervals:
            lo, hi = (x * scale for x in result.intervals[name])
            text = f"{name} = {value:.3g} [{lo:.3g}, {hi:.3g}] {unit}"
        else:
            text = f"{name} = {value:.3g} {unit} (fixed)"
        lines.append(text + ("  (not identified)" if name in result.not_identified else ""))
    c2c = result.noise.get("c2c_sigma")
    if c2c is not None and c2c.identified and "c2c_sigma" in result.intervals:
        lo, hi = result.intervals["c2c_sigma"]
        lines.append(f"c2c_sigma = {p.c2c_sigma:.3g} [{lo:.3g}, {hi:.3g}] (repeated pulses)")
    else:
        lines.append(f"c2c_sigma = {p.c2c_sigma:.3g} (fixed: not identified by the traces)")
    lines.append(f"[95 % intervals]  t0 = {p.t0:.3g} s (fixed)")
    if result.correlations:
        a, b, r = result.correlations[0]
        lines.append(f"strongest correlation {a}~{b} {r:+.2f}")
    return "\n".join(lines)


def _floor_text(result: FitResult) -> str:
    floor = result.noise_floor
    if floor is None:
        return ""
    return (f"; noise floor {'reached' if floor.reached else 'NOT reached'} "
            f"(noise alone: {100 * floor.expected_rel_rms:.2f} %)")


def render_fit_png(result: FitResult) -> bytes:
    """The fit figure as PNG bytes (matplotlib's Agg backend, no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shown = result.traces[:MAX_TRACE_PANELS]
    fig = plt.figure(figsize=(12, 3.2 * len(shown) + 4.2), layout="constrained")
    grid = fig.add_gridspec(len(shown) + 1, 2, height_ratios=[1.0] * len(shown) + [1.35])
    p = result.params
    for row, tr in enumerate(shown):
        _trace_panel(fig.add_subplot(grid[row, 0]), tr, by_index=False)
        _trace_panel(fig.add_subplot(grid[row, 1]), tr, by_index=True)
    handles, labels = fig.axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside upper center", ncols=4, fontsize=9, frameon=False,
               title=f"mstpn device fit: residual {100 * result.residual_rel_rms:.2f} % RMS over all "
                     f"reads (read noise {100 * result.params.read_sigma:.2f} %){_floor_text(result)}",
               title_fontproperties={"size": 12})

    ax = fig.add_subplot(grid[-1, 0])
    ok = [lv for lv in result.levels if np.isfinite(lv.ln_tau_se)]
    if ok:
        v = np.array([lv.v_b for lv in ok])
        tau = np.array([lv.tau for lv in ok])
        se = np.array([lv.ln_tau_se for lv in ok])
        ax.errorbar(v, tau, yerr=[tau * (1 - np.exp(-se)), tau * (np.exp(se) - 1)], fmt="o",
                    color="0.2", label="per bias level (profile fit)")
    vb = np.array([lv.v_b for lv in result.levels])
    line = np.linspace(vb.min() - 0.05, vb.max() + 0.05, 100)
    spans = {k: result.intervals.get(k, (np.nan, np.nan)) for k in ("tau0", "v_tau")}
    ax.plot(line, p.tau0 * np.exp(line / p.v_tau), "-", color="C3",
            label=f"tau0 = {p.tau0:.3g} s [{spans['tau0'][0]:.3g}, {spans['tau0'][1]:.3g}], "
                  f"v_tau = {p.v_tau:.3g} V [{spans['v_tau'][0]:.3g}, {spans['v_tau'][1]:.3g}] (95 %)")
    ax.set_yscale("log")
    ax.set_xlabel("bias V_b (V)")
    ax.set_ylabel("volatile decay tau (s)")
    ax.set_title("meta-plasticity: tau(V_b) = tau0 exp(V_b / v_tau)", fontsize=10, loc="left")
    ax.legend(fontsize=8)

    ax = fig.add_subplot(grid[-1, 1])
    inc = result.increments
    for key, color, name in (("dg_st", "C0", "volatile dg_st"), ("dg_lt", "C1", "long-term dg_lt")):
        ax.errorbar(inc[f"{key}_fit"] * 1e9, inc[f"{key}_obs"] * 1e9, yerr=inc[f"{key}_se"] * 1e9,
                    fmt="o", ms=3, lw=0.6, color=color, label=name)
    lim = np.concatenate([inc["dg_st_obs"], inc["dg_lt_obs"], inc["dg_st_fit"], inc["dg_lt_fit"]]) * 1e9
    lo, hi = float(lim.min()), float(lim.max())
    ax.plot([lo, hi], [lo, hi], "-", color="0.6", lw=0.8, label="measured = fitted")
    ax.set_xlabel("fitted increment (nS)")
    ax.set_ylabel("measured increment (nS)")
    ax.set_title(f"conductance change per pulse ({len(inc['v'])} pulses)", fontsize=10, loc="left")
    ax.legend(fontsize=8, loc="upper left")
    ax.text(0.98, 0.03, _parameter_box(result), transform=ax.transAxes, ha="right", va="bottom",
            fontsize=8, bbox={"boxstyle": "round", "fc": "white", "ec": "0.8"})
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    return buf.getvalue()


def plot_fit(result: FitResult, path: str | os.PathLike) -> Path:
    """Write the fit figure to ``path`` (PNG, atomically); returns the path."""
    return atomic_write_bytes(path, render_fit_png(result))
