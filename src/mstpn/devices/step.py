"""One full device step (pulse, bias hold, read) composed from :mod:`mstpn.devices.physics`.

This is the unit of work a device-backed network performs per synapse and time step: write a pulse,
hold the decay bias for the step's duration, read the synapse. It adds no physics of its own; it only
chains :func:`~mstpn.devices.physics.apply_pulse`, :func:`~mstpn.devices.physics.hold` and
:func:`~mstpn.devices.physics.read`.

Noise comes in as standard-normal tensors drawn by the caller (e.g. from a pooled
:class:`~mstpn.devices.noise.NoiseSource`), so the step contains no random number generation and
compiles into a few fused loops; :func:`compiled_device_step` gives that ``torch.compile`` variant,
built lazily on first use.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

from torch import Tensor

from mstpn.devices import physics
from mstpn.devices.physics import DeviceState, DeviceTensors, TensorLike


class StepResult(NamedTuple):
    """Outcome of one device step: new state, read current (A), energy of the whole step (J)."""

    state: DeviceState
    current: Tensor
    energy: Tensor


def device_step(state: DeviceState, v: TensorLike, t_p: TensorLike, v_b: TensorLike, dt: TensorLike,
                v_r: TensorLike, t_read: TensorLike, devices: DeviceTensors,
                c2c_eps: tuple[Tensor, Tensor] | None = None,
                read_eps: Tensor | None = None) -> StepResult:
    """Pulse ``v`` (V) of width ``t_p`` (s), hold bias ``v_b`` (V) for ``dt`` (s), read at ``v_r`` (V).

    Every voltage may be a scalar or a per-device tensor. ``c2c_eps`` (two standard-normal tensors,
    long-term and volatile) and ``read_eps`` carry the noise; ``None`` means noise-free. The energy is
    the sum of pulse, hold and read energies per device (J); the read lasts ``t_read`` (s).
    """
    state, e_pulse = physics.apply_pulse(state, v, t_p, devices, c2c_eps=c2c_eps)
    state, e_hold = physics.hold(state, v_b, dt, devices)
    current, e_read = physics.read(state, v_r, t_read, devices, read_eps=read_eps)
    return StepResult(state, current, e_pulse + e_hold + e_read)


_COMPILED: Callable[..., StepResult] | None = None


def compiled_device_step() -> Callable[..., StepResult]:
    """:func:`device_step` under ``torch.compile`` (compiled once per process, on the first call).

    Same signature and results as :func:`device_step` (to float rounding). Compiling takes tens of
    seconds on a small CPU, so use it where many steps follow (networks, benchmarks), not in tests.
    """
    global _COMPILED
    if _COMPILED is None:
        import torch

        _COMPILED = torch.compile(device_step, dynamic=False)
    return _COMPILED
