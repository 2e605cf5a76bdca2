"""Sweeps users ask for: energy per game and the GPU ratio against write threshold, bias range and
device conductance scale.

Each point runs a real :class:`mstpn.nn.MSTPNCell` of the Pong layer's size (2592 inputs, H = 64 by
default) with its energy probe on, for ``steps`` network steps of random presynaptic input
(``relu(N(0, 1))``, like the conv features after their ReLU; batch 1), and scales the mean energy per
step to a game of ``game_duration_s`` (the paper's 48.7 s, at the cell's dt_step). So the write
sparsity at each threshold is *measured*, not assumed; but it is the sparsity of an untrained layer
(initial gamma, random input), which a trained agent's may differ from. The GPU side is the A100 fp16
"optimal" model of :mod:`mstpn.energy.gpu` for the same layer and step count.

- threshold: ``write_threshold`` in pulses, analogue write amounts (``quantize=False``: a fraction of
  a pulse is a shorter pulse), so the threshold spans dense to sparse writes.
- bias: the driver's range [-v, +v]; the cell's biases (lambda ~ U(0, 1) at init) are clamped into it.
  A worst-case line puts every synapse at +v, as the paper does.
- conductance: g_min, g_max, a_st, a_lt all scaled by k (a device k times more conductive; the
  idle leakage p_leak_ref, measured at G = 0, is kept).
"""

from __future__ import annotations

import csv
import io
from dataclasses import asdict, dataclass, field

import torch

from mstpn.devices.params import SrTiO3Params, srtio3_weilenmann2024
from mstpn.energy import gpu
from mstpn.energy.memristive import CellInfo, SystemCosts, game_energies
from mstpn.energy.validate import EnergyConfigError, check_fields
from mstpn.nn import MSTPNCell, MSTPNConfig


@dataclass(frozen=True)
class SweepConfig:
    """What the sweeps run. Every field is overridable."""

    input_size: int = 2592
    """Presynaptic inputs from the conv layers (1): the reference Pong network (PAPER.md)."""
    hidden_size: int = 64
    """Postsynaptic neurons H (1): the reference Pong network."""
    steps: int = 20
    """Network steps measured per point (1)."""
    game_duration_s: float = 48.7
    """Game length the per-step energy is scaled to (s): the paper's, derived in mstpn.energy.paper."""
    plasticity_scale: float = 1.0
    """Multiplies the cell's initial gamma (1): > 1 mimics a layer that learned stronger plasticity."""
    thresholds: tuple[float, ...] = (0.0, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0)
    """Write thresholds (pulses)."""
    biases: tuple[float, ...] = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6)
    """Bias range half-widths v, range [-v, +v] (V)."""
    g_scales: tuple[float, ...] = (0.1, 0.3, 1.0, 3.0, 10.0)
    """Conductance scale factors (1)."""
    seed: int = 0
    """Seed of the cell and the inputs."""
    system: SystemCosts = field(default_factory=SystemCosts)
    """Costs of the system boundary."""

    def __post_init__(self) -> None:
        check_fields(self, {"input_size": (1, 1e6, ""), "hidden_size": (1, 1e5, ""),
                            "steps": (1, 1e5, "steps"), "game_duration_s": (1e-3, 1e6, "s"),
                            "plasticity_scale": (0, 1e6, ""), "seed": (0, 2**62, "")})
        for name, values, lo, hi in (("thresholds", self.thresholds, 0, 16), ("biases", self.biases, 0, 5),
                                     ("g_scales", self.g_scales, 1e-3, 1e3)):
            if not values or any(not lo <= v <= hi for v in values):
                raise EnergyConfigError(
                    f"SweepConfig.{name}: need values in [{lo:g}, {hi:g}], got {values!r}")


def _measure(cfg: SweepConfig, params: SrTiO3Params, **cell_overrides) -> dict:
    worst_case = cell_overrides.pop("worst_case", False)
    config = MSTPNConfig(**cell_overrides)
    torch.manual_seed(cfg.seed)
    cell = MSTPNCell(cfg.input_size, cfg.hidden_size, params, config, seed=cfg.seed)
    with torch.no_grad():
        cell.plasticity.mul_(cfg.plasticity_scale)
        if worst_case:
            cell.bias_logit.fill_(30.0)  # sigmoid -> 1: every synapse at v_b_max
    cell.enable_energy_probe()
    gen = torch.Generator().manual_seed(cfg.seed + 7)
    state = None
    with torch.no_grad():
        for _ in range(cfg.steps):
            _, state = cell(torch.relu(torch.randn(1, cfg.input_size, generator=gen)), state)
    info = CellInfo.from_cell(cell, program=False)
    (game,) = game_energies(cell.energy_log, [cfg.steps], info, cfg.system)
    steps_game = cfg.game_duration_s / config.dt_step
    scale = steps_game / cfg.steps
    a100 = gpu.a100_40gb()
    gpu_mj = gpu.game_energy_j(a100, "fp16", "optimal", steps_game, info.synapses, info.hidden_size) * 1e3
    synaptic = game["synaptic_total"] * scale * 1e3
    return {"synaptic_mj": synaptic, "system_mj": game["system_total"] * scale * 1e3,
            "hold_mj": (game["hold_ohmic"] + game["hold_leak"]) * scale * 1e3,
            "pulses_mj": game["pulses"] * scale * 1e3, "read_mj": game["read"] * scale * 1e3,
            "write_density": game["n_writes"] / (info.synapses * cfg.steps),
            "pulses_per_synapse_step": game["n_pulses"] / (info.synapses * cfg.steps),
            "a100_fp16_optimal_mj": gpu_mj, "ratio_a100_fp16_optimal": gpu_mj / synaptic,
            "steps_per_game": steps_game, "tau_mean_s": sum(r["tau_mean_s"] for r in cell.energy_log)
            / len(cell.energy_log)}


def run_sweeps(cfg: SweepConfig | None = None, params: SrTiO3Params | None = None) -> dict:
    """All three sweeps: ``{"threshold": rows, "bias": rows, "conductance": rows, "config": ...}``."""
    cfg = cfg or SweepConfig()
    p = params or srtio3_weilenmann2024()
    threshold = [{"write_threshold_pulses": t, **_measure(cfg, p, write_threshold=t, quantize=False)}
                 for t in cfg.thresholds]
    bias = []
    for v in cfg.biases:
        row = {"v_b_max": v, "tau_min_s": p.tau(-v), "tau_max_s": p.tau(v),
               **_measure(cfg, p, v_b_min=-v, v_b_max=v)}
        worst = _measure(cfg, p, v_b_min=-v, v_b_max=v, worst_case=True)
        row["worst_case_synaptic_mj"] = worst["synaptic_mj"]
        row["worst_case_ratio_a100_fp16_optimal"] = worst["ratio_a100_fp16_optimal"]
        bias.append(row)
    conductance = []
    for k in cfg.g_scales:
        scaled = p.replace(g_min=p.g_min * k, g_max=p.g_max * k, a_st=p.a_st * k, a_lt=p.a_lt * k)
        conductance.append({"g_scale": k, "g_max_s": scaled.g_max, **_measure(cfg, scaled)})
    config = asdict(cfg)
    config["system"] = cfg.system.to_dict()
    return {"threshold": threshold, "bias": bias, "conductance": conductance, "config": config,
            "device_params": p.to_dict()}


def sweep_csv(sweeps: dict) -> str:
    """One CSV with a ``sweep`` column and the union of the rows' columns."""
    rows = [{"sweep": key, **row} for key in ("threshold", "bias", "conductance") for row in sweeps[key]]
    columns = list(dict.fromkeys(k for row in rows for k in row))
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in row.items()})
    return buffer.getvalue()


def sweep_markdown(sweeps: dict) -> str:
    """Three markdown tables, one per sweep, with the columns a reader needs."""
    c = sweeps["config"]
    out = [f"# m-STPN energy sweeps (mJ per game of {c['game_duration_s']} s, ({c['input_size']} + "
           f"{c['hidden_size']}) x {c['hidden_size']} synapses, {c['steps']} measured steps per point)",
           "",
           "Measured on an untrained MSTPNCell with random relu(N(0,1)) input (see mstpn.energy.sweep); "
           "ratio = A100 fp16 optimal (model) / m-STPN synaptic.", ""]
    specs = [
        ("threshold", "write threshold (pulses)", "write_threshold_pulses",
         ["write_density", "pulses_per_synapse_step", "pulses_mj"]),
        ("bias", "bias range +-v (V)", "v_b_max", ["tau_min_s", "tau_max_s", "hold_mj",
                                                    "worst_case_synaptic_mj"]),
        ("conductance", "conductance scale", "g_scale", ["g_max_s", "hold_mj", "pulses_mj"]),
    ]
    for key, title, x, extra in specs:
        cols = [x, *extra, "synaptic_mj", "system_mj", "ratio_a100_fp16_optimal"]
        out += [f"## {title}", "", "| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
        for row in sweeps[key]:
            out.append("| " + " | ".join(f"{row[c]:.4g}" for c in cols) + " |")
        out.append("")
    return "\n".join(out)
