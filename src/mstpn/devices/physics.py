"""The SrTiO3 compact model as pure torch functions on tensors of any shape.

One implementation serves a single device in a protocol and millions of synapses in a network step.
Inputs broadcast: a scalar pulse amplitude can hit a whole array, or every device can get its own.
Noise enters as standard-normal tensors (``c2c_eps``, ``read_eps``) drawn by the caller, so the
functions stay deterministic and compile-friendly; ``None`` means noise-free.

Equations (DESIGN.md), with G = g_lt + g_st kept inside [g_min, g_max]:
    drive      d     = sign(V) (exp(|V|/v0) - 1) (t_p/t0)^beta
    soft bound B     = (g_max - G)/(g_max - g_min) if V > 0 else (G - g_min)/(g_max - g_min)
    volatile   dg_st = a_st d B
    long-term  dg_lt = a_lt sign(V) relu(|V| - v_th)/v0 (t_p/t0)^beta B
    decay      g_st <- g_st exp(-dt/tau(V_b)),  tau(V_b) = tau0 exp(V_b/v_tau)
    read       I = G V_r (1 + read_sigma eps)
    energy     pulse V^2 G t_p;  hold V_b^2 int G dt + P_leak(V_b) dt;  read V_r^2 G t_read;
               P_leak = p_leak_ref (V_b/v_leak_ref)^2
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import torch
from torch import Tensor

from mstpn.devices.params import SrTiO3Params

TensorLike = Tensor | float


class DeviceState(NamedTuple):
    """Conductance state of an array of devices (S): long-term level and volatile increment."""

    g_lt: Tensor
    g_st: Tensor


@dataclass
class DeviceTensors:
    """Per-device model parameters as tensors that broadcast against the device state.

    ``g_min, g_max, a_st, a_lt, tau0`` carry the device-to-device variation (one draw per device);
    the other fields are shared scalars copied from :class:`SrTiO3Params`.
    """

    g_min: Tensor
    g_max: Tensor
    a_st: Tensor
    a_lt: Tensor
    tau0: Tensor
    params: SrTiO3Params

    @classmethod
    def sample(cls, params: SrTiO3Params, shape: tuple[int, ...] = (), *, seed: int = 0,
               dtype: torch.dtype = torch.float32, device: torch.device | str = "cpu",
               variability: bool = True) -> DeviceTensors:
        """Draw each device's parameters once: log-normal spread ``d2d_sigma`` around the nominal."""
        generator = torch.Generator().manual_seed(int(seed))
        sigma = params.d2d_sigma if variability else 0.0

        def spread(nominal: float) -> Tensor:
            if sigma == 0.0 or shape == ():
                return torch.full(shape, nominal, dtype=torch.float64)
            return nominal * torch.exp(sigma * torch.randn(shape, generator=generator,
                                                           dtype=torch.float64))

        g_min, g_max = spread(params.g_min), spread(params.g_max)
        # A device whose spread inverted its range would be unphysical; keep at least 1 % of width.
        g_max = torch.maximum(g_max, g_min * 1.01 + 1e-15)
        values = [g_min, g_max, spread(params.a_st), spread(params.a_lt), spread(params.tau0)]
        return cls(*(v.to(dtype=dtype, device=device) for v in values), params=params)

    @property
    def span(self) -> Tensor:
        return self.g_max - self.g_min


def _scalar(x: TensorLike, like: TensorLike | None = None) -> Tensor:
    """Tensors pass through; Python numbers become 0-dim tensors of ``like``'s dtype (else float64).

    So float64 device arrays keep their full precision (``torch.as_tensor(0.1)`` would be float32)
    and float32 arrays stay float32.
    """
    if isinstance(x, Tensor):
        return x
    return torch.as_tensor(x, dtype=getattr(like, "dtype", torch.float64))


def initial_state(d: DeviceTensors, g_lt: TensorLike | None = None) -> DeviceState:
    """State with the long-term level at ``g_lt`` (default ``g_min``) and no volatile part."""
    g = d.g_min if g_lt is None else torch.as_tensor(g_lt, dtype=d.g_min.dtype)
    g = torch.maximum(torch.minimum(g, d.g_max), d.g_min)
    g, _ = torch.broadcast_tensors(g, d.g_min)
    return DeviceState(g.clone(), torch.zeros_like(g))


def conductance(state: DeviceState) -> Tensor:
    """Total conductance G = g_lt + g_st (S)."""
    return state.g_lt + state.g_st


def width_factor(t_p: TensorLike, p: SrTiO3Params) -> Tensor:
    """(t_p/t0)^beta, the pulse-width dependence."""
    return (_scalar(t_p) / p.t0) ** p.beta


def pulse_drive(v: TensorLike, t_p: TensorLike, p: SrTiO3Params) -> Tensor:
    """Signed pulse drive d = sign(V) (exp(|V|/v0) - 1) (t_p/t0)^beta (dimensionless)."""
    v = _scalar(v)
    return torch.copysign(torch.expm1(v.abs() * (1.0 / p.v0)), v) * width_factor(t_p, p)


def soft_bound(g: Tensor, v: TensorLike, d: DeviceTensors) -> Tensor:
    """Room left in the direction of the pulse, in [0, 1]."""
    v = _scalar(v, d.g_min)
    room = torch.where(v >= 0, d.g_max - g, g - d.g_min)
    return (room / d.span).clamp(0.0, 1.0)


def pulse_increments(state: DeviceState, v: TensorLike, t_p: TensorLike,
                     d: DeviceTensors) -> tuple[Tensor, Tensor]:
    """Noise-free (dg_lt, dg_st) of one pulse of amplitude ``v`` (V) and width ``t_p`` (s)."""
    p = d.params
    v, t_p = _scalar(v, d.g_min), _scalar(t_p, d.g_min)
    bound = soft_bound(conductance(state), v, d)
    dg_st = d.a_st * pulse_drive(v, t_p, p) * bound
    over = torch.copysign(torch.relu(v.abs() - p.v_th) * (1.0 / p.v0), v)
    dg_lt = d.a_lt * over * width_factor(t_p, p) * bound
    return dg_lt, dg_st


def cycle_noise_factor(count: Tensor, eps: Tensor, sigma: TensorLike) -> Tensor:
    """Factor 1 + sigma eps / sqrt(max(count, 1)) on the change of ``count`` pulses.

    Cycle-to-cycle noise of independent pulses adds up in variance, so relative to the total change
    its sigma shrinks as 1/sqrt(count).
    """
    return 1.0 + sigma * eps * torch.rsqrt(torch.clamp(count, min=1.0))


def volatile_room(g_lt: Tensor, d: DeviceTensors) -> tuple[Tensor, Tensor]:
    """(lowest, highest) volatile part g_st that keeps G = g_lt + g_st inside [g_min, g_max] (S)."""
    return d.g_min - g_lt, d.g_max - g_lt


def pulse_energy(v: TensorLike, g_before: Tensor, g_after: Tensor, t_p: TensorLike,
                 count: TensorLike = 1.0) -> Tensor:
    """count V^2 G t_p with G the mean of the conductances before and after (J)."""
    v = _scalar(v, g_before)
    return count * v * v * 0.5 * (g_before + g_after) * _scalar(t_p, g_before)


def apply_pulse(state: DeviceState, v: TensorLike, t_p: TensorLike, d: DeviceTensors, *,
                count: TensorLike = 1.0, c2c_eps: tuple[Tensor, Tensor] | None = None
                ) -> tuple[DeviceState, Tensor]:
    """Apply ``count`` identical pulses; returns the new state and the energy spent (J).

    Several pulses are applied as one step with the soft bound of the starting conductance (exact for
    one pulse, a good approximation while the change is small against the range); cycle-to-cycle noise
    of independent pulses adds up (:func:`cycle_noise_factor`).
    """
    count = torch.as_tensor(count, dtype=state.g_lt.dtype)
    dg_lt, dg_st = pulse_increments(state, v, t_p, d)
    dg_lt, dg_st = dg_lt * count, dg_st * count
    if c2c_eps is not None and d.params.c2c_sigma > 0:
        dg_lt = dg_lt * cycle_noise_factor(count, c2c_eps[0], d.params.c2c_sigma)
        dg_st = dg_st * cycle_noise_factor(count, c2c_eps[1], d.params.c2c_sigma)
    g_before = conductance(state)
    g_lt = torch.minimum(torch.maximum(state.g_lt + dg_lt, d.g_min), d.g_max)
    low, high = volatile_room(g_lt, d)
    new = DeviceState(g_lt, torch.minimum(torch.maximum(state.g_st + dg_st, low), high))
    return new, pulse_energy(v, g_before, conductance(new), t_p, count)


def time_constant(v_b: TensorLike, d: DeviceTensors) -> Tensor:
    """Volatile decay time constant tau(V_b) = tau0 exp(V_b/v_tau) (s)."""
    return d.tau0 * torch.exp(_scalar(v_b, d.g_min) * (1.0 / d.params.v_tau))


def decay_factor(v_b: TensorLike, dt: TensorLike, d: DeviceTensors) -> Tensor:
    """Fraction of the volatile conductance left after holding bias ``v_b`` for ``dt`` seconds."""
    return torch.exp(-_scalar(dt, d.g_min) / time_constant(v_b, d))


def leak_power(v_b: TensorLike, p: SrTiO3Params) -> Tensor:
    """Idle (G = 0) power under bias: p_leak_ref (V_b/v_leak_ref)^2 (W)."""
    v_b = _scalar(v_b)
    return v_b * v_b * (p.p_leak_ref / p.v_leak_ref**2)


def hold_energy(state: DeviceState, v_b: TensorLike, dt: TensorLike, d: DeviceTensors) -> Tensor:
    """Energy of holding bias ``v_b`` (V) for ``dt`` (s) from ``state``: Ohmic plus leakage (J).

    The Ohmic part integrates the decaying conductance exactly: int G dt = g_lt dt + g_st tau (1 - k).
    """
    v_b, dt = _scalar(v_b, d.g_min), _scalar(dt, d.g_min)
    tau = time_constant(v_b, d)
    integral = state.g_lt * dt + state.g_st * tau * (-torch.expm1(-dt / tau))
    return v_b * v_b * integral + leak_power(v_b, d.params) * dt


def hold(state: DeviceState, v_b: TensorLike, dt: TensorLike,
         d: DeviceTensors) -> tuple[DeviceState, Tensor]:
    """Hold bias ``v_b`` (V) for ``dt`` (s): the volatile part decays; returns state and energy (J)."""
    k = decay_factor(v_b, dt, d)
    return DeviceState(state.g_lt, state.g_st * k), hold_energy(state, v_b, dt, d)


def read_energy(g: Tensor, v_r: TensorLike, t_read: TensorLike) -> Tensor:
    """Energy of reading conductance ``g`` (S) at ``v_r`` (V) for ``t_read`` (s): V^2 G t (J)."""
    v_r = _scalar(v_r, g)
    return v_r * v_r * g * _scalar(t_read, g)


def read_noise_variance(g: Tensor, v_r: TensorLike, sigma: TensorLike) -> Tensor:
    """Variance of the read current of conductance ``g`` at ``v_r``: (sigma G V_r)^2 (A^2)."""
    return (sigma * g * _scalar(v_r, g)) ** 2


def read(state: DeviceState, v_r: TensorLike, t_read: TensorLike, d: DeviceTensors, *,
         read_eps: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """Read at ``v_r`` (V) for ``t_read`` (s): current I = G V_r with read noise (A), energy (J)."""
    v_r = _scalar(v_r, d.g_min)
    g = conductance(state)
    current = g * v_r
    if read_eps is not None and d.params.read_sigma > 0:
        current = current * (1.0 + d.params.read_sigma * read_eps)
    return current, read_energy(g, v_r, t_read)
