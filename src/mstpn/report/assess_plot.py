"""The figure of `mstpn device assess`: the tolerance map with the assessed device marked on every axis."""

from __future__ import annotations

import io
import math

DEVICE_COLOUR = "#2e7d4f"
"""Colour of the assessed device's value and predicted score."""
AGENT_COLOUR = "#c0392b"
"""Colour of the agent's own value (as in the tolerance map)."""


def render_assessment_png(tolerance: dict, positions: list[dict], limiting: str | None) -> bytes:
    """One panel per property of the map: its scores, the agent's value (red), the device's value and
    the score the map predicts there (green, with the range over its interval shaded), +target dashed.

    ``positions`` are the rows of :func:`mstpn.report.assess.locate_on_map`; ``limiting`` names the
    panel drawn with a red frame.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    by_name = {p["property"]: p for p in positions}
    names = [n for n in tolerance["properties"] if n in by_name]
    cols = min(5, max(1, len(names)))
    rows = max(1, math.ceil(len(names) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(3.3 * cols, 2.9 * rows), squeeze=False, sharey=True)
    target = tolerance.get("target_score", 18.0)
    for ax, name in zip(axes.flat, names, strict=False):
        pos = by_name[name]
        points = sorted(tolerance["properties"][name]["points"], key=lambda p: p["value"])
        ax.plot([p["value"] for p in points], [p["mean_score"] for p in points], "o-", ms=4,
                color="#4c72b0")
        ax.axhline(target, color="grey", ls="--", lw=0.8)
        if pos["agent_value"] is not None:
            ax.axvline(pos["agent_value"], color=AGENT_COLOUR, lw=0.9)
        if pos["device_property"]:
            x = pos["value"]
            if pos.get("interval") is not None:
                lo, hi = pos["interval"]
                if pos["log"]:
                    lo = max(lo, x / 1e3)  # an interval reaching 0 stays on the log axis
                ax.axvspan(lo, hi, color=DEVICE_COLOUR, alpha=0.15, lw=0)
            ax.axvline(x, color=DEVICE_COLOUR, lw=1.4)
            ax.plot([x], [pos["predicted"]], "D", color=DEVICE_COLOUR, ms=7, zorder=5)
            ax.annotate(f"{pos['predicted']:+.1f}", (x, pos["predicted"]), textcoords="offset points",
                        xytext=(5, -13), fontsize=8, color=DEVICE_COLOUR)
        else:
            ax.text(0.5, 0.06, "driver setting: as trained", transform=ax.transAxes, ha="center",
                    fontsize=7, color="#59636e")
        if pos["log"]:
            ax.set_xscale("log", base=2)
        ax.set_xlabel(pos["label"], fontsize=8)
        ax.tick_params(labelsize=7)
        ax.set_ylim(-21.5, 21.5)
        if name == limiting:
            for spine in ax.spines.values():
                spine.set_edgecolor(AGENT_COLOUR)
                spine.set_linewidth(2.0)
            ax.set_title("limiting property", fontsize=8, color=AGENT_COLOUR, fontweight="bold")
    for ax in axes.flat[len(names):]:
        ax.axis("off")
    for ax in axes[:, 0]:
        ax.set_ylabel("greedy score", fontsize=8)
    fig.suptitle(f"The device on the agent's tolerance map ({tolerance.get('draws', '?')} draw(s) x "
                 f"{tolerance.get('games', '?')} games per point). Red: the agent's own value; green: this "
                 f"device (shaded: its interval) and the score the map predicts there; dashed: "
                 f"+{target:g}", fontsize=9)
    fig.tight_layout(rect=(0, 0, 1, 0.95))
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90)
    plt.close(fig)
    return buffer.getvalue()
