"""Reproduce the paper's energy table (PAPER.md) under the paper's own assumptions.

Memristive side, one Pong game, synaptic operations only:

    decay  = S d (P_leak(V_b) + V_b^2 G_hold) T            every synapse biased for the whole game
    writes = S rho n_steps k E_pulse,  E_pulse = V_p^2 G_w t_p (physics.apply_pulse)
    total  = decay + writes   (reads: the bias doubles as read level, so a read is inside the hold)

with S = 169,984 synapses, d = 1 device per synapse, V_b = 0.6 V on every synapse (worst case),
P_leak(0.6 V) = 4.3 nW measured at G = 0 (so G_hold = 0: the paper's 4.3 nW is the whole hold power),
and the game duration T = 35.6 mJ / (169,984 x 4.3 nW) = 35.6 mJ / 0.731 mW = 48.7 s, which the paper
does not state but its decay figure implies (so the decay reproduction checks the arithmetic and the
device model's leakage law, it is not an independent prediction).

The writes are not the paper's 0.4 mJ copied: they come from the device's pulse energy and a stated
write count. Assumption: dense updates, every synapse written once per network step (dF = gamma h z^T
is dense; the paper's accounting has no sparsity), one network step per 60 Hz frame as in the reference
agent (no frame skip), n_steps = 48.7 s x 60 Hz = 2,922; a single pulse of 0.8 V, 100 us (MSTPNConfig's
write pulse) on a device at the effective conductance of the measured idle current,
G_w = 4.3 nW / (0.6 V)^2 = 11.9 nS: E_pulse ~ 0.77 pJ, writes ~ 0.38 mJ.

GPU side: the analytical model of :mod:`mstpn.energy.gpu`, calibrated on the two A100 fp16 figures
only; the two fp32 figures are predicted and their errors reported.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace

import torch

from mstpn.devices import physics
from mstpn.devices.params import SrTiO3Params, srtio3_weilenmann2024
from mstpn.devices.physics import DeviceState, DeviceTensors
from mstpn.energy import gpu
from mstpn.energy.validate import EnergyConfigError, check_fields

PAPER_MJ = {
    "memristive_total": 36.0,
    "memristive_decay": 35.6,
    "memristive_writes": 0.4,
    "a100_fp16_optimal": 3463.9,
    "a100_fp16_as_written": 34780.5,
    "a100_fp32_optimal": 6292.0,
    "a100_fp32_as_written": 34932.3,
}
"""The paper's table, mJ per Pong game (PAPER.md)."""
PAPER_RATIOS = {"vs_a100_fp16_optimal": 96.0, "vs_a100_fp16_as_written": 966.0}
"""The paper's ratios GPU / memristive (PAPER.md: 'at least 96x', '966x')."""


@dataclass(frozen=True)
class PaperAssumptions:
    """The paper's accounting of one Pong game. Every field is overridable."""

    synapses: int = 169_984
    """STPN synapses (2592 + 64) x 64 of the reference Pong network (PAPER.md)."""
    hidden: int = 64
    """Postsynaptic neurons H of the layer (PAPER.md); sets the GPU's vector sizes."""
    bias_v: float = 0.6
    """Bias held on every synapse for the whole game (V): the paper's worst case (PAPER.md)."""
    game_duration_s: float = 48.7
    """Length of one game (s). Derived, not stated by the paper: 35.6 mJ / (169,984 x 4.3 nW) =
    35.6 mJ / 0.731 mW = 48.7 s (PAPER.md consistency note)."""
    steps_per_second: float = 60.0
    """Network steps per second of play (1/s): one step per 60 Hz frame, the reference agent has no
    frame skip (PAPER.md). Sets the write count and the GPU's operations per game."""
    devices_per_synapse: int = 1
    """Devices counted per synapse (1): the paper's 169,984 x 4.3 nW counts one."""
    hold_conductance_s: float = 0.0
    """Conductance of a device during the hold (S): 0, because the paper's 4.3 nW idle power was
    measured at G = 0 and used as the whole hold power of every synapse."""
    write_conductance_s: float | None = None
    """Conductance of a device when it is written (S). None: the effective conductance of the measured
    idle current, p_leak_ref / v_leak_ref^2 = 4.3 nW / (0.6 V)^2 = 11.9 nS (assumption)."""
    write_density: float = 1.0
    """Fraction of synapses written per network step (1). Assumption: 1, dense updates."""
    pulses_per_write: float = 1.0
    """Pulses per write (1). Assumption: one pulse."""
    pulse_v: float = 0.8
    """Write pulse amplitude (V): MSTPNConfig.pulse_v (assumption of the device model)."""
    pulse_width_s: float = 1e-4
    """Write pulse width (s): MSTPNConfig.pulse_width (assumption of the device model)."""

    def __post_init__(self) -> None:
        check_fields(self, {
            "synapses": (1, 1e12, "synapses"), "hidden": (1, 1e9, ""), "bias_v": (-10, 10, "V"),
            "game_duration_s": (1e-6, 1e7, "s"), "steps_per_second": (1e-6, 1e6, "1/s"),
            "devices_per_synapse": (1, 2, ""), "hold_conductance_s": (0, 1, "S"),
            "write_density": (0, 1, ""), "pulses_per_write": (0, 1e6, ""), "pulse_v": (0, 100, "V"),
            "pulse_width_s": (1e-12, 10, "s"),
        })
        if self.write_conductance_s is not None and not 0 < self.write_conductance_s <= 1:
            raise EnergyConfigError(f"PaperAssumptions.write_conductance_s: must be None or in (0, 1] S, "
                                    f"got {self.write_conductance_s!r}")

    @property
    def steps(self) -> float:
        """Network steps per game."""
        return self.game_duration_s * self.steps_per_second

    def replace(self, **changes) -> PaperAssumptions:
        return replace(self, **changes)


def _nominal(params: SrTiO3Params) -> DeviceTensors:
    return DeviceTensors.sample(params, (), variability=False, dtype=torch.float64)


def hold_energy_j(params: SrTiO3Params, v_b: float, g: float, duration_s: float) -> float:
    """One device held at ``v_b`` with conductance ``g`` for ``duration_s``: physics.hold (J)."""
    d = _nominal(params)
    state = DeviceState(torch.tensor(g, dtype=torch.float64), torch.tensor(0.0, dtype=torch.float64))
    _, energy = physics.hold(state, v_b, duration_s, d)
    return float(energy)


def pulse_energy_j(params: SrTiO3Params, v: float, t_p: float, g: float) -> float:
    """One write pulse on a device at conductance ``g``: physics.apply_pulse, V^2 G t_p (J)."""
    d = _nominal(params)
    state = DeviceState(torch.tensor(g, dtype=torch.float64), torch.tensor(0.0, dtype=torch.float64))
    _, energy = physics.apply_pulse(state, v, t_p, d)
    return float(energy)


def paper_memristive_j(a: PaperAssumptions | None = None,
                       params: SrTiO3Params | None = None) -> dict[str, float]:
    """Memristive energy of one game in the paper's accounting (J), with the intermediate numbers."""
    a = a or PaperAssumptions()
    p = params or srtio3_weilenmann2024()
    g_w = a.write_conductance_s if a.write_conductance_s is not None else p.p_leak_ref / p.v_leak_ref**2
    hold = hold_energy_j(p, a.bias_v, a.hold_conductance_s, a.game_duration_s)
    e_pulse = pulse_energy_j(p, a.pulse_v, a.pulse_width_s, g_w)
    writes = a.synapses * a.write_density * a.steps
    decay = a.synapses * a.devices_per_synapse * hold
    write_j = writes * a.pulses_per_write * e_pulse
    return {"decay": decay, "writes": write_j, "reads": 0.0, "total": decay + write_j,
            "hold_power_per_synapse_w": a.devices_per_synapse * hold / a.game_duration_s,
            "pulse_energy_j": e_pulse, "write_conductance_s": g_w, "write_count": writes,
            "steps": a.steps}


def _err(ours: float, paper: float) -> float:
    return 100.0 * (ours / paper - 1.0)


def reproduce_paper(a: PaperAssumptions | None = None, params: SrTiO3Params | None = None,
                    a100: gpu.GPUSpec | None = None,
                    sensitivity_latencies_s: tuple[float, ...] = (0.5e-6, 1e-6, 2e-6, 3e-6)) -> dict:
    """The paper's table, ours beside it, the fp32 validation, and the formulas (a JSON-able dict)."""
    a = a or PaperAssumptions()
    p = params or srtio3_weilenmann2024()
    a100 = a100 or gpu.a100_40gb()
    mem = paper_memristive_j(a, p)
    cal = gpu.calibrate(a100, PAPER_MJ["a100_fp16_optimal"] * 1e-3, PAPER_MJ["a100_fp16_as_written"] * 1e-3,
                        a.steps, a.synapses, a.hidden)
    presets = {k: f() for k, f in gpu.PRESETS.items()}
    presets["a100"] = a100
    table = gpu.gpu_table(a.steps, a.synapses, a.hidden, cal, presets)
    mem_mj = {k: mem[k] * 1e3 for k in ("total", "decay", "writes", "reads")}
    a100_mj = table["a100"]

    def check(key: str, ours: float, role: str) -> dict:
        return {"paper": PAPER_MJ[key], "ours": ours, "error_pct": _err(ours, PAPER_MJ[key]), "role": role}

    rows = {
        "memristive_total": check("memristive_total", mem_mj["total"], "derived"),
        "memristive_decay": check("memristive_decay", mem_mj["decay"], "derived"),
        "memristive_writes": check("memristive_writes", mem_mj["writes"], "derived"),
        "a100_fp16_optimal": check("a100_fp16_optimal", a100_mj["fp16"]["optimal"], "calibrated"),
        "a100_fp16_as_written": check("a100_fp16_as_written", a100_mj["fp16"]["as_written"], "calibrated"),
        "a100_fp32_optimal": check("a100_fp32_optimal", a100_mj["fp32"]["optimal"], "predicted"),
        "a100_fp32_as_written": check("a100_fp32_as_written", a100_mj["fp32"]["as_written"], "predicted"),
    }
    sensitivity = []
    for latency in sensitivity_latencies_s:
        spec = a100.replace(launch_latency_s=latency)
        try:
            c = gpu.calibrate(spec, PAPER_MJ["a100_fp16_optimal"] * 1e-3,
                              PAPER_MJ["a100_fp16_as_written"] * 1e-3, a.steps, a.synapses, a.hidden)
        except EnergyConfigError:
            sensitivity.append({"launch_latency_s": latency, "feasible": False})
            continue
        o = gpu.game_energy_j(spec, "fp32", "optimal", a.steps, a.synapses, a.hidden, c) * 1e3
        w = gpu.game_energy_j(spec, "fp32", "as_written", a.steps, a.synapses, a.hidden, c) * 1e3
        sensitivity.append({"launch_latency_s": latency, "feasible": True, **c.to_dict(),
                            "fp32_optimal_error_pct": _err(o, PAPER_MJ["a100_fp32_optimal"]),
                            "fp32_as_written_error_pct": _err(w, PAPER_MJ["a100_fp32_as_written"])})
    return {
        "what": "one Pong game, synaptic operations only, the paper's assumptions (PAPER.md)",
        "memristive_mj": mem_mj,
        "gpu_mj": table,
        "ratio_vs_a100_fp16_optimal": a100_mj["fp16"]["optimal"] / mem_mj["total"],
        "ratio_vs_a100_fp16_as_written": a100_mj["fp16"]["as_written"] / mem_mj["total"],
        "paper_ratios": PAPER_RATIOS,
        "rows": rows,
        "validation": {
            "fp32_optimal_error_pct": rows["a100_fp32_optimal"]["error_pct"],
            "fp32_as_written_error_pct": rows["a100_fp32_as_written"]["error_pct"],
            "launch_latency_sensitivity": sensitivity,
        },
        "calibration": {
            **cal.to_dict(),
            "calibrated_on": "A100 fp16 optimal (3,463.9 mJ) and as written (34,780.5 mJ) per game, only",
            "calibrated_constants": ["host_overhead_s", "bandwidth_efficiency"],
            "why": "neither is a datasheet number: the host overhead belongs to the paper's software "
                   "stack, the achieved bandwidth to its kernels",
            "fixed_constants": a100.to_dict(),
        },
        "derived": {
            "game_duration_s": a.game_duration_s,
            "game_duration_derivation": "35.6 mJ / (169,984 x 4.3 nW) = 35.6 mJ / 0.731 mW = 48.7 s",
            "steps_per_game": a.steps,
            "hold_power_per_synapse_w": mem["hold_power_per_synapse_w"],
            "write_conductance_s": mem["write_conductance_s"],
            "pulse_energy_j": mem["pulse_energy_j"],
            "write_count": mem["write_count"],
            "write_assumption": "dense: every synapse written with one pulse every network step "
                                "(one step per 60 Hz frame)",
        },
        "assumptions": asdict(a),
        "device_params": p.to_dict(),
        "formulas": FORMULAS,
    }


FORMULAS = [
    "decay  = S d (p_leak_ref (V_b/v_leak_ref)^2 + V_b^2 G_hold) T",
    "writes = S rho (T f_step) k V_p^2 G_w t_p",
    "total  = decay + writes (the read happens under the held bias: inside decay)",
    "GPU t_op = max(t_host, t_launch + max(bytes/(eta BW), FLOP/peak)); E = P_board sum t_op per step",
    "GPU optimal = E(S_eff) x S / S_eff, S_eff = 2^21 on the A100 (paper);  per game = steps x E_step",
    "GPU dynamic lower bound = bytes e_DRAM + FLOP e_FLOP",
]


def _fmt(mj: float) -> str:
    if abs(mj) < 1:
        return f"{mj:.3f}"  # the writes: enough digits that the difference column can be checked
    return f"{mj:,.2f}" if abs(mj) < 100 else f"{mj:,.1f}"


def format_paper_table(result: dict) -> str:
    """The reproduction as a readable table: paper, ours, difference, role; then the formulas."""
    labels = {
        "memristive_total": "memristive synapses, total",
        "memristive_decay": "  of which decay bias (0.6 V, every synapse)",
        "memristive_writes": "  of which dF writes",
        "a100_fp16_optimal": "A100 fp16 optimal",
        "a100_fp16_as_written": "A100 fp16 as written",
        "a100_fp32_optimal": "A100 fp32 optimal",
        "a100_fp32_as_written": "A100 fp32 as written",
    }
    lines = [f"{'mJ per Pong game':46s} {'paper':>10s} {'ours':>10s} {'diff':>8s}  role",
             "-" * 86]
    for key, label in labels.items():
        row = result["rows"][key]
        lines.append(f"{label:46s} {_fmt(row['paper']):>10s} {_fmt(row['ours']):>10s} "
                     f"{row['error_pct']:+7.2f}%  {row['role']}")
    r16 = result["ratio_vs_a100_fp16_optimal"]
    rw = result["ratio_vs_a100_fp16_as_written"]
    lines.append(f"{'ratio A100 fp16 optimal / memristive':46s} {'>= 96x':>10s} {r16:9.1f}x")
    lines.append(f"{'ratio A100 fp16 as written / memristive':46s} {'966x':>10s} {rw:9.1f}x")
    gt = result["gpu_mj"]
    lines.append("")
    lines.append(f"{'other GPUs (model predictions, mJ per game)':46s} fp16 opt  fp16 as-wr"
                 "   fp32 opt  fp32 as-wr")
    for key in ("h100", "h200"):
        t = gt[key]
        lines.append(f"  {key:44s} {t['fp16']['optimal']:9,.1f} {t['fp16']['as_written']:11,.1f} "
                     f"{t['fp32']['optimal']:10,.1f} {t['fp32']['as_written']:11,.1f}")
    share = gt["a100"]["fp16"]["optimal_memory_share"]
    lines.append(f"  A100 fp16 optimal, dynamic lower bound {gt['a100']['fp16']['optimal_dynamic']:,.1f} mJ "
                 f"({100 * share:.1f} % of it DRAM traffic)")
    cal = result["calibration"]
    d = result["derived"]
    lines += [
        "",
        f"calibrated on A100 fp16 only: t_host = {cal['host_overhead_s'] * 1e6:.2f} us, "
        f"eta = {cal['bandwidth_efficiency']:.3f} (fixed: launch gap "
        f"{cal['fixed_constants']['launch_latency_s'] * 1e6:g} us, P = "
        f"{cal['fixed_constants']['board_power_w']:g} W)",
        f"fp32 validation (predicted): optimal {result['validation']['fp32_optimal_error_pct']:+.2f} %, "
        f"as written {result['validation']['fp32_as_written_error_pct']:+.2f} %",
        "  sensitivity of the fp32 optimal error to the launch gap: " + ", ".join(
            f"{s['launch_latency_s'] * 1e6:g} us {s['fp32_optimal_error_pct']:+.1f} %" if s["feasible"]
            else f"{s['launch_latency_s'] * 1e6:g} us infeasible"
            for s in result["validation"]["launch_latency_sensitivity"]),
        f"game: {d['game_duration_derivation']}; {d['steps_per_game']:,.0f} network steps",
        f"writes: {d['write_assumption']}: {d['write_count']:.4g} pulses x "
        f"{d['pulse_energy_j'] * 1e12:.3f} pJ (V_p^2 G_w t_p, G_w = {d['write_conductance_s'] * 1e9:.2f} nS)",
        "",
        "formulas:",
        *("  " + f for f in result["formulas"]),
    ]
    return "\n".join(lines)
