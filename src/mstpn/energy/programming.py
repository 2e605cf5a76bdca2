"""Long-term programming: the energy to load the weights W onto the devices, once per deployment.

Each synapse is a differential pair; its weight w sits on one device at ``g_min + g_unit |w|``
(DESIGN.md), the other stays at g_min. Starting from g_min (devices freshly reset, reset not counted),
the written device gets identical over-threshold pulses with a verify read after each
(program-and-verify), until the next pulse would overshoot the target by more than it approaches it.
Every pulse and read is the device physics of :mod:`mstpn.devices.physics` (``pulse_increments``,
``apply_pulse``, ``read``), soft bounds and each device's own parameters included. Assumption: the
volatile part a programming pulse leaves decays before the next pulse (it is not counted as progress).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from mstpn.devices import physics
from mstpn.devices.physics import DeviceState, DeviceTensors
from mstpn.energy.validate import check_fields


@dataclass(frozen=True)
class ProgrammingConfig:
    """Program-and-verify scheme for the long-term weights. Every field is overridable."""

    v_prog: float = 1.5
    """Programming pulse amplitude (V). Assumption: above the preset's v_th = 1.2 V, so pulses
    consolidate (STP -> LTP); 1.5 V gives a_lt * 0.6 = 3 nS per 1 ms pulse far from the bounds."""
    t_prog: float = 1e-3
    """Programming pulse width (s). Assumption: the preset's reference width t0."""
    v_verify: float = 0.2
    """Verify-read voltage after each pulse (V). Assumption: MSTPNConfig.v_read."""
    t_verify: float = 1e-6
    """Verify-read duration (s). Assumption: MSTPNConfig.t_read."""
    max_pulses: int = 200
    """Most pulses a device gets; targets the soft bound makes unreachable stop here (1)."""

    def __post_init__(self) -> None:
        check_fields(self, {"v_prog": (0, 100, "V"), "t_prog": (1e-12, 10, "s"),
                            "v_verify": (0, 100, "V"), "t_verify": (0, 10, "s"),
                            "max_pulses": (1, 1e6, "")})


@dataclass(frozen=True)
class ProgrammingResult:
    """Outcome of programming a set of devices from g_min."""

    pulse_j: float
    """Energy of the programming pulses, sum of V^2 G t_p (J)."""
    verify_j: float
    """Energy of the verify reads, sum of V_r^2 G t_read (J)."""
    pulses: float
    """Programming pulses applied (1)."""
    devices: int
    """Devices that needed at least one pulse (1)."""
    unconverged: int
    """Devices still short of their target after ``max_pulses`` (1)."""

    @property
    def total_j(self) -> float:
        return self.pulse_j + self.verify_j


def program_from_gmin(targets: Tensor, devices: DeviceTensors,
                      config: ProgrammingConfig | None = None) -> ProgrammingResult:
    """Program devices from g_min to ``targets`` (S, same shape as the device tensors)."""
    cfg = config or ProgrammingConfig()
    dtype = torch.float64
    devices = DeviceTensors(*(t.to(dtype) for t in (devices.g_min, devices.g_max, devices.a_st,
                                                     devices.a_lt, devices.tau0)), params=devices.params)
    targets = torch.minimum(torch.maximum(targets.to(dtype), devices.g_min), devices.g_max)
    state = physics.initial_state(devices)
    zeros = torch.zeros_like(state.g_lt)
    pulse_j = verify_j = pulses = 0.0
    touched = torch.zeros_like(state.g_lt, dtype=torch.bool)
    need = torch.ones_like(touched)
    for _ in range(cfg.max_pulses):
        dg_lt, _ = physics.pulse_increments(state, cfg.v_prog, cfg.t_prog, devices)
        # one more pulse helps while it lands closer to the target than where the device is now
        need = (targets - state.g_lt) > 0.5 * dg_lt
        if not bool(need.any()):
            break
        count = need.to(dtype)
        state, energy = physics.apply_pulse(state, cfg.v_prog, cfg.t_prog, devices, count=count)
        state = DeviceState(state.g_lt, zeros)  # the volatile part decays before the next cycle
        _, e_read = physics.read(state, cfg.v_verify, cfg.t_verify, devices)
        pulse_j += float(energy.sum())
        verify_j += float((e_read * count).sum())
        pulses += float(count.sum())
        touched |= need
    else:
        dg_lt, _ = physics.pulse_increments(state, cfg.v_prog, cfg.t_prog, devices)
        need = (targets - state.g_lt) > 0.5 * dg_lt
    return ProgrammingResult(pulse_j=pulse_j, verify_j=verify_j, pulses=pulses,
                             devices=int(touched.sum()), unconverged=int(need.sum()))


@torch.no_grad()
def program_cell(cell, config: ProgrammingConfig | None = None) -> ProgrammingResult:
    """Price loading an :class:`mstpn.nn.MSTPNCell`'s weights W: one device of each pair, from g_min."""
    devices = cell.devices()
    weight = cell.weight.detach().to(torch.float64)
    targets = devices.g_min.to(torch.float64) + cell.g_unit * weight.abs()
    return program_from_gmin(targets, devices, config)
