"""Report part 5: energy of the synaptic operations, under the paper's assumptions and for our agent."""

from __future__ import annotations

import io
import statistics

from mstpn.atomic import atomic_write_bytes, atomic_write_json
from mstpn.report.document import Section
from mstpn.report.reproduce_context import Context, fmt, rel_diff, require_checkpoint, sh
from mstpn.report.reproduce_pong import PAPER_GAME_FRAMES, play_games
from mstpn.tasks.pong import ATARI_HZ

PAPER_ROWS = {
    "memristive_total": "memristive synapses, total",
    "memristive_decay": "of which decay bias (0.6 V on every synapse)",
    "memristive_writes": "of which dF writes",
    "a100_fp16_optimal": "A100 40GB fp16, optimal",
    "a100_fp16_as_written": "A100 40GB fp16, as written",
    "a100_fp32_optimal": "A100 40GB fp32, optimal",
    "a100_fp32_as_written": "A100 40GB fp32, as written",
}
"""The rows of PAPER.md's energy table, in its order."""
PAPER_MJ = {"total": 36.0, "decay": 35.6, "writes": 0.4, "a100_fp16_optimal": 3463.9}
"""PAPER.md's per-game figures used for our agent's comparison (mJ)."""
PAPER_RATIO = 96.0
"""PAPER.md: at least 96x less than the A100 fp16 'optimal'."""


def render_paper_png(result: dict) -> bytes:
    """Paper against ours for every row of the paper's table, on a log axis, errors written on."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = result["rows"]
    keys = list(PAPER_ROWS)
    fig, ax = plt.subplots(figsize=(10, 4.6), layout="constrained")
    y = list(range(len(keys)))[::-1]
    paper = [rows[k]["paper"] for k in keys]
    ours = [rows[k]["ours"] for k in keys]
    ax.barh([v + 0.19 for v in y], paper, height=0.36, color="#9aa5b1", label="paper (PAPER.md)")
    ax.barh([v - 0.19 for v in y], ours, height=0.36,
            color=["#55a868" if k.startswith("memristive") else "#e07b39" for k in keys], label="ours")
    for v, k, o in zip(y, keys, ours, strict=True):
        role = rows[k]["role"]
        ax.text(o * 1.15, v - 0.19, f"{fmt(o)} mJ  ({rows[k]['error_pct']:+.1f} %, {role})", va="center",
                fontsize=8)
    ax.set_yticks(y, [PAPER_ROWS[k] for k in keys], fontsize=9)
    ax.set_xscale("log")
    ax.set_xlim(min(paper + ours) / 2, max(paper + ours) * 40)
    ax.set_xlabel("mJ per Pong game (log scale)")
    ax.set_title("One Pong game, synaptic operations only: memristive "
                 f"{fmt(result['memristive_mj']['total'])} mJ vs A100 fp16 optimal "
                 f"{fmt(rows['a100_fp16_optimal']['ours'])} mJ "
                 f"({result['ratio_vs_a100_fp16_optimal']:.0f}x)", fontsize=10, loc="left")
    ax.legend(loc="upper right", fontsize=8)
    ax.grid(axis="x", alpha=0.3)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110)
    plt.close(fig)
    return buffer.getvalue()


def _paper_section(ctx: Context, sec: Section) -> dict:
    from mstpn.energy.paper import reproduce_paper

    out = ctx.folder("energy")
    result = reproduce_paper()
    atomic_write_json(out / "paper.json", result)
    png = atomic_write_bytes(out / "paper_table.png", render_paper_png(result))
    sec.text("**Under the paper's assumptions** (169,984 synapses, 0.6 V bias on every synapse, 4.3 nW, "
             "its game length; GPU model calibrated on the two A100 fp16 figures only, so the fp32 rows "
             "are predictions):")
    sec.figure(png, "PAPER.md's energy table against ours; 'calibrated' rows were fitted, 'predicted' rows "
                    "validate the GPU model, 'derived' rows follow from the device facts.")
    rows = [[PAPER_ROWS[k], fmt(r["paper"], 6), fmt(r["ours"], 6), f"{r['error_pct']:+.2f} %", r["role"]]
            for k, r in ((k, result["rows"][k]) for k in PAPER_ROWS)]
    rows.append(["ratio A100 fp16 optimal / memristive", "≥ 96x",
                 f"{result['ratio_vs_a100_fp16_optimal']:.1f}x",
                 rel_diff(result["ratio_vs_a100_fp16_optimal"], 96.0), "derived"])
    rows.append(["ratio A100 fp16 as written / memristive", "966x",
                 f"{result['ratio_vs_a100_fp16_as_written']:.1f}x",
                 rel_diff(result["ratio_vs_a100_fp16_as_written"], 966.0), "derived"])
    sec.table(["mJ per Pong game", "paper", "ours", "difference", "role"], rows)
    return result


def _agent_games(ctx: Context) -> dict:
    games = ctx.shared.get("pong_games")
    if games is not None:
        return games
    require_checkpoint(ctx.checkpoint)
    ctx.say(f"{ctx.budget.pong_episodes} greedy game(s) with the energy probe")
    return play_games(ctx.checkpoint, ctx.budget.pong_episodes, ctx.seed)


def energy_part(ctx: Context, sec: Section) -> None:
    """The paper's table, then our agent's energy per game (same greedy games as the Pong part)."""
    from mstpn.energy.memristive import CellInfo
    from mstpn.energy.report import energy_report_from_probe
    from mstpn.errors import UserError
    from mstpn.report.energy_plot import write_report_png

    out = ctx.folder("energy")
    episodes = ctx.budget.pong_episodes
    agent_json, agent_png = out / "agent.json", out / "agent.png"
    sec.command(sh("mstpn", "energy", "--paper", "--json", out / "paper.json"),
                sh("mstpn", "energy", ctx.checkpoint, "--episodes", episodes, "--seed", ctx.seed,
                   "--json", agent_json, "--plot", agent_png))
    paper = _paper_section(ctx, sec)
    games = _agent_games(ctx)
    if "records" not in games:
        raise UserError(f"{ctx.checkpoint}: the energy report needs an m-STPN agent, this one's core is "
                        f"{games['core']!r}")
    ctx.say("energy report")
    report = energy_report_from_probe(games["records"], games["episode_steps"],
                                      CellInfo.from_cell(games["cell"]))
    report.update({"checkpoint": str(ctx.checkpoint), "episodes": episodes, "seed": ctx.seed,
                   "device_params": games["cell"].params.to_dict()})
    atomic_write_json(agent_json, report)
    write_report_png(report, agent_png)
    mem = report["memristive_mj"]["synaptic"]
    system = report["memristive_mj"]["system"]["total"]
    hold = mem["hold_ohmic"] + mem["hold_leak"]
    a100 = report["gpu_mj"]["a100"]["fp16"]["optimal"]
    ratio = report["ratios"]["synaptic"]["a100.fp16.optimal"]
    frames = statistics.fmean(games["episode_frames"])
    seconds = frames / ATARI_HZ
    paper_mw = PAPER_MJ["total"] / (PAPER_GAME_FRAMES / ATARI_HZ)
    sec.text(f"**Our agent** (`{ctx.checkpoint}`, the same {episodes} greedy game(s) as the Pong part, its "
             f"learned biases and its real write sparsity):")
    sec.figure(agent_png, "Energy per game of our m-STPN agent: where the memristive energy goes, for the "
                          "paper's synaptic boundary and a system boundary (converters, drivers, neurons), "
                          "against GPU presets.")
    sec.table(["per Pong game", "paper (its agent)", "ours (this agent)", "difference", "note"], [
        ["game length (emulator frames)", f"≈ {PAPER_GAME_FRAMES:,.0f}", fmt(frames),
         rel_diff(frames, PAPER_GAME_FRAMES),
         f"{statistics.fmean(games['episode_steps']):,.0f} network steps"],
        ["memristive synapses, total (mJ)", fmt(PAPER_MJ["total"]), fmt(mem["total"]),
         rel_diff(mem["total"], PAPER_MJ["total"]), "synaptic boundary"],
        ["of which bias hold / decay (mJ)", fmt(PAPER_MJ["decay"]), fmt(hold),
         rel_diff(hold, PAPER_MJ["decay"]),
         "paper: worst case 0.6 V on every synapse; ours: learned biases"],
        ["of which dF writes (mJ)", fmt(PAPER_MJ["writes"]), fmt(mem["pulses"]),
         rel_diff(mem["pulses"], PAPER_MJ["writes"]),
         f"paper: dense; ours: {100 * report['write_density']:.2f} % of synapse-steps written"],
        ["reads (mJ)", "inside decay", fmt(mem["read"]), "—", "V² G t_read"],
        ["synaptic power during play (mW)", fmt(paper_mw), fmt(mem["total"] / seconds),
         rel_diff(mem["total"] / seconds, paper_mw), "independent of game length"],
        ["A100 fp16 optimal, same operations (mJ)", fmt(PAPER_MJ["a100_fp16_optimal"]), fmt(a100),
         rel_diff(a100, PAPER_MJ["a100_fp16_optimal"]), "scales with network steps per game"],
        ["ratio A100 fp16 optimal / memristive", f"≥ {PAPER_RATIO:g}x", f"{ratio:.1f}x",
         rel_diff(ratio, PAPER_RATIO), ""],
        ["system boundary total (mJ)", "not in the paper", fmt(system), "—",
         f"ratio {report['ratios']['system']['a100.fp16.optimal']:.1f}x against A100 fp16 optimal"],
    ], caption="The paper's game runs one network step per frame (no frame skip); ours one per 4 frames, "
               "so the GPU, which pays per step, costs less per game here.")
    sec.summary = (f"paper's table: decay {paper['rows']['memristive_decay']['error_pct']:+.1f} %, total "
                   f"{paper['rows']['memristive_total']['error_pct']:+.1f} %, fp32 predicted "
                   f"{paper['rows']['a100_fp32_optimal']['error_pct']:+.1f} %; our agent "
                   f"{fmt(mem['total'])} mJ/game, {ratio:.0f}x below A100 fp16 optimal")
