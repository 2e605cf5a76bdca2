"""Per-game energy report of an m-STPN layer from its probe records, against every GPU preset."""

from __future__ import annotations

from collections.abc import Sequence
from statistics import fmean

from mstpn.energy import gpu
from mstpn.energy.memristive import (
    BOUNDARIES,
    SYNAPTIC_PARTS,
    SYSTEM_EXTRA_PARTS,
    CellInfo,
    SystemCosts,
    game_energies,
)
from mstpn.energy.validate import EnergyConfigError

REPORT_FORMULAS = [
    "read   = sum_b sum_ij (G+_ij + G-_ij) (V_r z_j)^2 t_read                  (probe, per step)",
    "hold   = sum_ij V_b,ij^2 (G+_ij + G-_ij) dt + 2 p_leak_ref (V_b,ij/v_leak_ref)^2 dt",
    "pulses = sum over written devices n_pulses V_p^2 G t_p",
    "system = synaptic + drivers (1/eta - 1) + lines C V^2 + N E_dac + H E_adc + neuron (MACs, SRAM)",
    "GPU    = steps x P_board sum_op max(t_host, t_launch + max(bytes/(eta BW), FLOP/peak))",
]


def _keys(boundary: str) -> tuple[str, ...]:
    return SYNAPTIC_PARTS + (SYSTEM_EXTRA_PARTS if boundary == "system" else ())


def energy_report_from_probe(records: Sequence[dict], steps_per_game: Sequence[int], cell_info: CellInfo,
                             gpu_presets: dict[str, gpu.GPUSpec] | None = None, *,
                             system: SystemCosts | None = None,
                             calibration: gpu.GPUCalibration | None = None,
                             step_duration_s: float | None = None) -> dict:
    """Per game (mean over the games played): memristive breakdown for both boundaries, every GPU
    preset at fp16 and fp32 in both modes, and the ratios GPU / memristive. Energies in mJ.

    ``records``: the MSTPNCell probe's per-step dicts; ``steps_per_game``: network steps of each game
    (sequential games with batch 1, or lockstep games with batch = number of games, see
    :func:`mstpn.energy.memristive.game_slices`).
    """
    system = system or SystemCosts()
    presets = gpu_presets or {k: f() for k, f in gpu.PRESETS.items()}
    cal = calibration or gpu.GPUCalibration()
    if not records:
        raise EnergyConfigError("records: no probe records; enable the probe with "
                                "cell.enable_energy_probe() before playing")
    synapses = {int(r.get("synapses", -1)) for r in records}
    if synapses != {cell_info.synapses}:
        info = cell_info
        raise EnergyConfigError(f"records: synapse count {sorted(synapses)} does not match cell_info "
                                f"({info.input_size} + {info.hidden_size}) x {info.hidden_size}"
                                f" = {info.synapses}")
    games = game_energies(records, steps_per_game, cell_info, system, step_duration_s)
    steps = [int(s) for s in steps_per_game]
    s = cell_info.synapses

    memristive, per_game = {}, {}
    for boundary in BOUNDARIES:
        parts = {k: fmean(g[k] for g in games) * 1e3 for k in _keys(boundary)}
        parts["total"] = fmean(g[f"{boundary}_total"] for g in games) * 1e3
        memristive[boundary] = parts
        per_game[boundary] = [g[f"{boundary}_total"] * 1e3 for g in games]

    gpu_mj: dict = {}
    for key, spec in presets.items():
        gpu_mj[key] = {}
        for precision in gpu.PRECISIONS:
            gpu_mj[key][precision] = {}
            for mode in gpu.MODES:
                step = gpu.step_energy(spec, precision, s, cell_info.hidden_size, mode, cal)
                gpu_mj[key][precision][mode] = fmean(n * step.board_j for n in steps) * 1e3
                gpu_mj[key][precision][f"{mode}_dynamic"] = fmean(n * step.dynamic_j for n in steps) * 1e3

    ratios = {b: {f"{k}.{p}.{m}": gpu_mj[k][p][m] / memristive[b]["total"]
                  for k in gpu_mj for p in gpu.PRECISIONS for m in gpu.MODES} for b in BOUNDARIES}
    writes = fmean(g["n_writes"] for g in games)
    return {
        "games": len(games),
        "steps_per_game": steps,
        "synapses": s,
        "cell": cell_info.to_dict(),
        "memristive_mj": memristive,
        "memristive_mj_per_game": per_game,
        "writes_per_game": writes,
        "pulses_per_game": fmean(g["n_pulses"] for g in games),
        "write_density": fmean(g["n_writes"] / (s * g["steps"]) for g in games),
        "programming_mj_per_deployment": cell_info.programming_j * 1e3,
        "programming_pulses": cell_info.programming_pulses,
        "gpu_mj": gpu_mj,
        "ratios": ratios,
        "system_costs": system.to_dict(),
        "gpu_calibration": cal.to_dict(),
        "gpu_specs": {k: v.to_dict() for k, v in presets.items()},
        "formulas": REPORT_FORMULAS,
    }


def _num(mj: float) -> str:
    return f"{mj:12,.1f}" if abs(mj) >= 100 else f"{mj:12.4g}"


def format_report(report: dict) -> str:
    """The per-game table for both boundaries, the GPU presets and the ratios, as text."""
    mem = report["memristive_mj"]
    lines = [f"{report['games']} game(s), mean {fmean(report['steps_per_game']):,.0f} network steps, "
             f"{report['synapses']:,} synapses; mJ per game (mean)", ""]
    lines.append(f"{'memristive component':24s} {'synaptic':>12s} {'system':>12s}")
    for key in SYNAPTIC_PARTS + SYSTEM_EXTRA_PARTS:
        syn = f"{mem['synaptic'][key]:12.4g}" if key in mem["synaptic"] else f"{'-':>12s}"
        lines.append(f"  {key:22s} {syn} {mem['system'][key]:12.4g}")
    lines.append(f"  {'total':22s} {mem['synaptic']['total']:12.4g} {mem['system']['total']:12.4g}")
    lines.append(f"writes per game {report['writes_per_game']:.4g} (density {report['write_density']:.3%} "
                 f"of synapse-steps), pulses {report['pulses_per_game']:.4g}; loading W once: "
                 f"{report['programming_mj_per_deployment']:.4g} mJ "
                 f"({report['programming_pulses']:.4g} pulses)")
    lines += ["", f"{'GPU (mJ per game)':24s} {'energy':>12s} {'x synaptic':>12s} {'x system':>12s}"]
    for key, by_precision in report["gpu_mj"].items():
        for precision, by_mode in by_precision.items():
            for mode in ("optimal", "as_written"):
                name = f"{key}.{precision}.{mode}"
                ratios = report["ratios"]
                lines.append(f"  {name:22s} {_num(by_mode[mode])} {ratios['synaptic'][name]:11,.1f}x "
                             f"{ratios['system'][name]:11,.1f}x")
    lines += ["", "formulas:", *("  " + f for f in report["formulas"])]
    return "\n".join(lines)
