"""A stateful array of memristors: the convenient face of :mod:`mstpn.devices.physics`.

Protocols, the demo and the fitter drive devices through this class; it draws the device-to-device
variation once from its seed and the cycle-to-cycle and read noise from its own noise source.
"""

from __future__ import annotations

import torch
from torch import Tensor

from mstpn.devices import physics
from mstpn.devices.noise import NoiseSource
from mstpn.devices.params import SrTiO3Params
from mstpn.devices.physics import DeviceTensors, TensorLike


class DeviceArray:
    """``shape`` devices of one kind, each with its own (seeded) variation and state.

    Every operation returns the energy it spent per device (J). ``noise=False`` switches the
    cycle-to-cycle and read noise off; ``variability=False`` makes all devices nominal.
    """

    def __init__(self, params: SrTiO3Params, shape: tuple[int, ...] = (), *, seed: int = 0,
                 noise: bool = True, variability: bool = True, dtype: torch.dtype = torch.float64,
                 g_init: TensorLike | None = None, exact_noise: bool = True) -> None:
        self.params = params
        self.shape = tuple(shape)
        self.devices = DeviceTensors.sample(params, self.shape, seed=seed, dtype=dtype,
                                            variability=variability)
        self.noise = NoiseSource(seed + 1, exact=exact_noise) if noise else None
        self.state = physics.initial_state(self.devices, g_init)

    @property
    def conductance(self) -> Tensor:
        """Total conductance of every device (S)."""
        return physics.conductance(self.state)

    def _eps(self) -> Tensor | None:
        if self.noise is None:
            return None
        return self.noise.normal(self.state.g_lt.shape, dtype=self.state.g_lt.dtype)

    def pulse(self, v: TensorLike, t_p: TensorLike, count: TensorLike = 1.0) -> Tensor:
        """Apply ``count`` pulses of amplitude ``v`` (V, sign = polarity) and width ``t_p`` (s)."""
        eps = None if self.noise is None else (self._eps(), self._eps())
        self.state, energy = physics.apply_pulse(self.state, v, t_p, self.devices, count=count,
                                                 c2c_eps=eps)
        return energy

    def hold(self, v_b: TensorLike, dt: TensorLike) -> Tensor:
        """Hold bias ``v_b`` (V) for ``dt`` (s); the volatile conductance decays."""
        self.state, energy = physics.hold(self.state, v_b, dt, self.devices)
        return energy

    def read(self, v_r: TensorLike, t_read: TensorLike = 1e-6) -> tuple[Tensor, Tensor]:
        """Read current (A) at ``v_r`` (V) over ``t_read`` (s), and the read energy (J)."""
        return physics.read(self.state, v_r, t_read, self.devices, read_eps=self._eps())

    def time_constant(self, v_b: TensorLike) -> Tensor:
        """Each device's volatile decay time constant at bias ``v_b`` (s)."""
        return physics.time_constant(v_b, self.devices)
