"""What `mstpn energy` does: the paper's table, an agent's games, the sweeps, the NVML measurement.

Each function computes, writes its files atomically and returns the text to print. The command line
(:mod:`mstpn.cli`) only parses arguments and calls these.
"""

from __future__ import annotations

from mstpn.atomic import atomic_write_json
from mstpn.devices.params import SrTiO3Params
from mstpn.errors import UserError

NOT_AVAILABLE = ("mstpn energy CHECKPOINT: playing games for the energy report is not available yet "
                 "(mstpn.rl.evaluate.play_for_energy is missing); meanwhile use `mstpn energy --paper` "
                 "or `mstpn energy sweep --out DIR`")


def paper_command(json_path: str | None = None, params: SrTiO3Params | None = None) -> str:
    """Reproduce PAPER.md's energy table; optionally write the JSON. Returns the printed table."""
    from mstpn.energy.paper import format_paper_table, reproduce_paper

    result = reproduce_paper(params=params)
    text = format_paper_table(result)
    if json_path:
        atomic_write_json(json_path, result)
        text += f"\n\nwrote {json_path}"
    return text


def load_play_for_energy():
    """``mstpn.rl.evaluate.play_for_energy``, or a UserError saying it is not available yet."""
    try:
        from mstpn.rl.evaluate import play_for_energy
    except ImportError as exc:
        name = getattr(exc, "name", None) or ""
        if isinstance(exc, ModuleNotFoundError) and name and not name.startswith("mstpn"):
            raise UserError(f"mstpn energy CHECKPOINT: playing Pong needs the package {name!r}, which "
                            f"is not installed") from None
        raise UserError(NOT_AVAILABLE) from None
    return play_for_energy


def checkpoint_command(checkpoint: str, episodes: int = 5, seed: int = 0,
                       params: SrTiO3Params | None = None, json_path: str | None = None,
                       plot_path: str | None = None) -> str:
    """Play greedy games with the checkpoint's m-STPN agent (probe on) and report per game."""
    from mstpn.energy.memristive import CellInfo
    from mstpn.energy.report import energy_report_from_probe, format_report
    from mstpn.nn import MSTPNCell
    from mstpn.report.energy_plot import write_report_png

    if episodes < 1:
        raise UserError(f"--episodes: must be >= 1, got {episodes}")
    play_for_energy = load_play_for_energy()
    records, steps_per_game, cell = play_for_energy(checkpoint, episodes, seed, params)
    if not isinstance(cell, MSTPNCell):
        raise UserError(f"{checkpoint}: the energy report needs an m-STPN core, got {type(cell).__name__}")
    report = energy_report_from_probe(records, steps_per_game, CellInfo.from_cell(cell))
    report.update({"checkpoint": str(checkpoint), "episodes": episodes, "seed": seed,
                   "device_params": cell.params.to_dict()})
    text = format_report(report)
    if json_path:
        atomic_write_json(json_path, report)
        text += f"\n\nwrote {json_path}"
    if plot_path:
        try:
            write_report_png(report, plot_path)
        except OSError as exc:
            raise UserError(f"{plot_path}: cannot write ({exc.strerror or exc})") from None
        text += f"\nwrote {plot_path}"
    return text


def sweep_command(out_dir: str, steps: int = 20, params: SrTiO3Params | None = None) -> str:
    """Run the three sweeps, write sweep.csv, sweep.md, sweep.png (and sweep.json) into ``out_dir``."""
    from pathlib import Path

    from mstpn.energy.sweep import SweepConfig, run_sweeps, sweep_markdown
    from mstpn.report.energy_plot import write_sweep_outputs

    sweeps = run_sweeps(SweepConfig(steps=steps), params)
    try:
        paths = write_sweep_outputs(sweeps, out_dir)
    except OSError as exc:
        raise UserError(f"--out {out_dir}: cannot write ({exc.strerror or exc})") from None
    atomic_write_json(Path(out_dir) / "sweep.json", sweeps)
    return sweep_markdown(sweeps) + "\nwrote " + ", ".join(str(p) for p in paths) + f", {out_dir}/sweep.json"


def measure_command(json_path: str | None = None, runs: int = 100,
                    run_seconds: float = 1.0) -> tuple[str, int]:
    """NVML-measured GPU energy of the synaptic operations; a clear skip message without a GPU.

    Returns (text, exit code): 0 measured or skipped (a skip is not an error).
    """
    from mstpn.energy.gpu_measure import GPUUnavailable, measure_gpu_energy

    try:
        result = measure_gpu_energy(runs=runs, run_seconds=run_seconds)
    except GPUUnavailable as exc:
        if json_path:
            atomic_write_json(json_path, {"measured": None, "skipped": str(exc)})
        return f"mstpn: {exc}", 0
    if json_path:
        atomic_write_json(json_path, result)
    lines = [f"{result['gpu']}: idle {result['idle_power_w']:.1f} W; mJ per game "
             f"({result['steps_per_game']:.0f} steps, {result['synapses']:,} synapses), median of "
             f"{result['runs']} runs"]
    for precision, by_mode in result["mj_per_game"].items():
        for mode in ("optimal", "as_written"):
            lines.append(f"  {precision} {mode:10s} total {by_mode[mode]:10,.1f}   above idle "
                         f"{by_mode[f'{mode}_above_idle']:10,.1f}")
    if json_path:
        lines.append(f"wrote {json_path}")
    return "\n".join(lines), 0
