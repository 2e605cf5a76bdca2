"""Figures of the energy reports: the per-game comparison and the sweeps (matplotlib, Agg backend)."""

from __future__ import annotations

import io
import os
from pathlib import Path

from mstpn.atomic import atomic_write_bytes, atomic_write_text
from mstpn.energy.memristive import SYNAPTIC_PARTS, SYSTEM_EXTRA_PARTS
from mstpn.energy.sweep import sweep_csv, sweep_markdown

PART_LABELS = {
    "read": "reads (V² G t_read)", "hold_ohmic": "bias hold, ohmic (V_b² G dt)",
    "hold_leak": "bias hold, leakage (P_leak dt)", "pulses": "dF write pulses (V_p² G t_p)",
    "drivers": "driver supply loss", "lines": "line charging (C V²)", "dac": "input DACs",
    "adc": "output ADCs", "neuron": "digital neuron side",
}
PART_COLOURS = {
    "read": "#4c72b0", "hold_ohmic": "#55a868", "hold_leak": "#8fd19e", "pulses": "#c44e52",
    "drivers": "#8172b2", "lines": "#ccb974", "dac": "#64b5cd", "adc": "#1f4e79", "neuron": "#937860",
}
GPU_COLOURS = {"a100": "#e07b39", "h100": "#b5651d", "h200": "#7f3f12"}


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _png(fig) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=130)
    _pyplot().close(fig)
    return buffer.getvalue()


def render_report_png(report: dict, title: str = "m-STPN synapses against GPUs per Pong game") -> bytes:
    """Left: the memristive breakdown per boundary (stacked, mJ). Right: every total on a log axis,
    memristive and each GPU preset, with the ratio GPU / memristive (synaptic boundary) written on."""
    plt = _pyplot()
    fig, (left, right) = plt.subplots(1, 2, figsize=(13, 7.0), width_ratios=[1, 1.7], layout="constrained")
    mem = report["memristive_mj"]
    bottoms = [0.0, 0.0]
    for part in SYNAPTIC_PARTS + SYSTEM_EXTRA_PARTS:
        values = [mem["synaptic"].get(part, 0.0), mem["system"][part]]
        if max(values) <= 0:
            continue
        share = max(values) / mem["system"]["total"]
        label = PART_LABELS[part] + (f"  [{100 * share:.2g} %]" if share < 0.01 else "")
        left.bar([0, 1], values, bottom=bottoms, color=PART_COLOURS[part], label=label,
                 width=0.6, edgecolor="white", linewidth=0.5)
        bottoms = [b + v for b, v in zip(bottoms, values, strict=True)]
    for x, boundary in enumerate(("synaptic", "system")):
        left.text(x, bottoms[x], f"{mem[boundary]['total']:.3g} mJ", ha="center", va="bottom", fontsize=10)
    left.set_xticks([0, 1], ["synaptic\n(the paper's boundary)", "system\n(+ converters, drivers, neurons)"])
    left.set_ylabel("mJ per game")
    left.set_title("memristive m-STPN: where the energy goes", fontsize=11)
    left.set_ylim(0, max(bottoms) * 1.12)
    left.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=2, frameon=False,
                title="[share of the system total, too thin to see]", title_fontsize=8)

    names, values, colours = [], [], []
    for boundary in ("synaptic", "system"):
        names.append(f"m-STPN, {boundary}")
        values.append(mem[boundary]["total"])
        colours.append("#55a868" if boundary == "synaptic" else "#2e7d4f")
    for key, by_precision in report["gpu_mj"].items():
        for precision in ("fp16", "fp32"):
            for mode in ("optimal", "as_written"):
                names.append(f"{key.upper()} {precision} {mode.replace('_', ' ')}")
                values.append(by_precision[precision][mode])
                colours.append(GPU_COLOURS.get(key, "#999999"))
    y = list(range(len(names)))[::-1]
    right.barh(y, values, color=colours, height=0.7)
    right.set_xscale("log")
    right.set_yticks(y, names, fontsize=9)
    base = mem["synaptic"]["total"]
    for yi, value, name in zip(y, values, names, strict=True):
        amount = f"{value:,.0f}" if value >= 100 else f"{value:.3g}"
        label = f"{amount} mJ" + ("" if name.startswith("m-STPN") else f"   {value / base:,.0f}x")
        right.text(value * 1.08, yi, label, va="center", fontsize=8.5)
    right.set_xlim(min(values) / 3, max(values) * 12)
    right.set_xlabel("mJ per game (log scale); Nx = GPU / m-STPN synaptic")
    right.set_title("totals: memristive against each GPU preset (analytical model)", fontsize=11)
    right.grid(axis="x", which="major", alpha=0.3)
    steps = report["steps_per_game"]
    fig.suptitle(f"{title}: mean of {report['games']} game(s), {sum(steps) / len(steps):,.0f} network steps, "
                 f"{report['synapses']:,} synapses", fontsize=12)
    return _png(fig)


def write_report_png(report: dict, path: str | os.PathLike, **kwargs) -> None:
    """Render :func:`render_report_png` and write it atomically."""
    atomic_write_bytes(path, render_report_png(report, **kwargs))


def _plain_log(axis) -> None:
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    axis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
    axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    axis.set_minor_formatter(NullFormatter())


def render_sweep_png(sweeps: dict) -> bytes:
    """Three panels: write threshold (what it does to the writes, and to the total), bias range and
    conductance scale (energy per game and the ratio to the A100 fp16 optimal model)."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, 3, figsize=(16, 5.0), layout="constrained")
    ratio_colour = "#e07b39"

    ax = axes[0]
    rows = sweeps["threshold"]
    x = [r["write_threshold_pulses"] for r in rows]
    ax.plot(x, [r["pulses_mj"] for r in rows], "o-", color=PART_COLOURS["pulses"], label="dF write pulses")
    ax.set_xscale("symlog", linthresh=0.02)
    ax.set_yscale("log")
    ax.set_xlabel("write threshold (pulses; smaller dF are not written)")
    ax.set_ylabel("write-pulse energy, mJ per game")
    twin = ax.twinx()
    twin.plot(x, [100 * r["write_density"] for r in rows], "s--", color="#4c72b0",
              label="written synapse-steps")
    twin.set_ylabel("written synapse-steps (%)", color="#4c72b0")
    first, last = rows[0], rows[-1]
    ax.text(0.03, 0.04, f"synaptic total {first['synaptic_mj']:.3g} -> {last['synaptic_mj']:.3g} mJ\n"
            f"(writes at most {100 * max(r['pulses_mj'] / r['synaptic_mj'] for r in rows):.2g} % of it)\n"
            f"A100 fp16 optimal / m-STPN {first['ratio_a100_fp16_optimal']:.3g} -> "
            f"{last['ratio_a100_fp16_optimal']:.3g}x", transform=ax.transAxes, fontsize=8.5,
            bbox={"facecolor": "white", "alpha": 0.8, "edgecolor": "#cccccc"})
    handles = [h for a in (ax, twin) for h in a.get_legend_handles_labels()[0]]
    ax.legend(handles, [h.get_label() for h in handles], fontsize=8, loc="upper right", frameon=False)
    ax.set_title("write threshold: sparsity of the dF writes", fontsize=10)

    panels = [
        (axes[1], sweeps["bias"], "v_b_max", "bias range: biases in [-v, +v] (V)", False,
         "bias range (meta-plasticity costs hold energy)"),
        (axes[2], sweeps["conductance"], "g_scale", "conductance scale k (g_min, g_max, a_st, a_lt x k)",
         True, "device conductance scale"),
    ]
    for ax, rows, x_key, x_label, logx, title in panels:
        x = [r[x_key] for r in rows]
        ax.plot(x, [r["synaptic_mj"] for r in rows], "o-", color="#55a868", label="m-STPN synaptic")
        ax.plot(x, [r["system_mj"] for r in rows], "s-", color="#2e7d4f", label="m-STPN system")
        if "worst_case_synaptic_mj" in rows[0]:
            ax.plot(x, [r["worst_case_synaptic_mj"] for r in rows], "o:", color="#55a868",
                    label="synaptic, every synapse at +v (worst case)")
        ax.set_yscale("log")
        _plain_log(ax.yaxis)
        if logx:
            ax.set_xscale("log")
            _plain_log(ax.xaxis)
        ax.set_xlabel(x_label)
        ax.set_ylabel("mJ per game")
        twin = ax.twinx()
        twin.plot(x, [r["ratio_a100_fp16_optimal"] for r in rows], "^--", color=ratio_colour,
                  label="A100 fp16 optimal / m-STPN synaptic")
        twin.set_yscale("log")
        _plain_log(twin.yaxis)
        twin.set_ylabel("ratio GPU / m-STPN (x)", color=ratio_colour)
        handles = [h for a in (ax, twin) for h in a.get_legend_handles_labels()[0]]
        ax.legend(handles, [h.get_label() for h in handles], fontsize=8, loc="upper left", frameon=False)
        ax.set_title(title, fontsize=10)
    c = sweeps["config"]
    fig.suptitle(f"m-STPN energy per Pong game ({c['game_duration_s']} s): untrained layer of "
                 f"({c['input_size']} + {c['hidden_size']}) x {c['hidden_size']} synapses, random input, "
                 f"{c['steps']} measured steps per point", fontsize=11)
    return _png(fig)


def write_sweep_png(sweeps: dict, path: str | os.PathLike) -> None:
    atomic_write_bytes(path, render_sweep_png(sweeps))


def write_sweep_outputs(sweeps: dict, out_dir: str | os.PathLike) -> list[Path]:
    """Write sweep.csv, sweep.md and sweep.png into ``out_dir`` (each atomically); returns the paths."""
    out = Path(out_dir)
    paths = [out / "sweep.csv", out / "sweep.md", out / "sweep.png"]
    atomic_write_text(paths[0], sweep_csv(sweeps))
    atomic_write_text(paths[1], sweep_markdown(sweeps))
    write_sweep_png(sweeps, paths[2])
    return paths
