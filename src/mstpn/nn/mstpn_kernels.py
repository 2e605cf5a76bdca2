"""The m-STPN step as two pure kernels (forward, backward), compiled with ``torch.compile`` at scale.

At Pong size (16 x 64 x 2656 synapse states) the step is a chain of ~25 elementwise passes over
2.7 M values; eagerly that costs ~120 ms on one core, fused by the compiler ~8 ms. The kernels take
everything as arguments (noise included, drawn by the caller) so they are deterministic and
compile-friendly; device physics comes from :mod:`mstpn.devices.physics` (soft bounds, in weight
units: a device of the pair spans [0, w_max] weight units above g_min).

Backward is straight-through for every non-ideality: F_new = lambda F + dF, read noise a constant.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor

from mstpn.devices import physics


class WriteConsts(NamedTuple):
    """Static settings of the write and read model (weight units; see MSTPNConfig)."""

    step: float
    """Weight change of one nominal pulse."""
    max_pulses: float
    threshold: float
    quantize: bool
    soft_bounds: bool
    clip_range: bool
    gain: bool
    c2c_sigma: float
    read_sigma: float
    u: float
    """g_min in weight units (offset of both devices of a pair)."""
    record: bool
    """Return the pulse counts too (energy probe)."""


class _WeightUnitDevices(NamedTuple):
    """The duck-typed subset of DeviceTensors that physics.soft_bound needs, in weight units."""

    g_min: float
    g_max: Tensor
    span: Tensor


def device_write(f_decayed: Tensor, d_f: Tensor, weight: Tensor, gain: Tensor, w_max: Tensor,
                 c2c_eps: Tensor | None, k: WriteConsts) -> tuple[Tensor, Tensor]:
    """What the devices make of a requested update dF: (F_new, signed pulse count per synapse)."""
    sign = torch.sign(d_f)
    pulses = torch.clamp(d_f.abs() / k.step, max=k.max_pulses)
    if k.quantize:
        pulses = torch.round(pulses)
    if k.threshold > 0:
        pulses = torch.where(pulses < k.threshold, 0.0, pulses)
    amount = pulses * k.step
    if k.gain:
        amount = amount * gain
    if k.soft_bounds:
        # the written device holds relu(sW) + relu(sF) weight units above g_min
        used = torch.relu(sign * weight) + torch.relu(sign * f_decayed)
        amount = amount * physics.soft_bound(used, 1.0, _WeightUnitDevices(0.0, w_max, w_max))
    if c2c_eps is not None:
        amount = amount * (1.0 + k.c2c_sigma * c2c_eps / torch.sqrt(torch.clamp(pulses, min=1.0)))
    f_new = f_decayed + sign * amount
    if k.clip_range:
        f_new = torch.maximum(torch.minimum(f_new, w_max - torch.relu(weight)), torch.relu(-weight) - w_max)
    return f_new, pulses * sign


def read_noise_std(g: Tensor, z: Tensor, u: float, read_sigma: float) -> Tensor:
    """Std of the noise of reading G z when every device adds read_sigma x its own current.

    A pair's squared conductances in weight units: (u + relu(w))^2 + (u + relu(-w))^2 =
    2u^2 + 2u|w| + w^2; summed over the row with z^2 (independent Gaussians add in variance).
    """
    z2 = (z * z).unsqueeze(-2)
    var = ((g * g + 2.0 * u * g.abs()) * z2).sum(-1) + 2.0 * u * u * z2.sum(-1)
    return read_sigma * torch.sqrt(var)


def forward_kernel(z: Tensor, f: Tensor, weight: Tensor, bias: Tensor, decay: Tensor,
                   plasticity: Tensor, gain: Tensor, w_max: Tensor, c2c_eps: Tensor | None,
                   read_eps: Tensor | None, k: WriteConsts) -> tuple[Tensor, Tensor, Tensor | None]:
    """h = tanh(G z + read noise + b); F_new = device_write(lambda F, gamma h z^T)."""
    g = f + weight
    a = (g * z.unsqueeze(-2)).sum(-1)
    if read_eps is not None:
        a = a + read_noise_std(g, z, k.u, k.read_sigma) * read_eps
    h = torch.tanh(a + bias)
    d_f = plasticity * h.unsqueeze(-1) * z.unsqueeze(-2)
    f_new, pulses = device_write(decay * f, d_f, weight, gain, w_max, c2c_eps, k)
    return h, f_new, (pulses if k.record else None)


def backward_kernel(grad_h: Tensor, grad_f_new: Tensor, z: Tensor, f: Tensor, weight: Tensor,
                    decay: Tensor, plasticity: Tensor, h: Tensor) -> tuple[Tensor, ...]:
    """Gradients of (h, F_new) with respect to (z, F, W, b, lambda, gamma), straight through."""
    zz = z.unsqueeze(-2)
    q = grad_f_new * plasticity
    grad_h = grad_h + (q * zz).sum(-1)
    grad_a = grad_h * (1.0 - h * h)
    grad_z = (q * h.unsqueeze(-1) + grad_a.unsqueeze(-1) * (f + weight)).sum(-2)
    grad_plasticity = (grad_f_new * h.unsqueeze(-1) * zz).sum(0)
    grad_decay = (grad_f_new * f).sum(0)
    grad_f = grad_f_new * decay + grad_a.unsqueeze(-1) * zz
    grad_weight = grad_a.transpose(0, 1) @ z
    return grad_z, grad_f, grad_weight, grad_a.sum(0), grad_decay, grad_plasticity


_COMPILED: dict[str, object] = {}


def kernels(compiled: bool):
    """(forward, backward) kernels, compiled once per process when asked."""
    if not compiled:
        return forward_kernel, backward_kernel
    if not _COMPILED:
        _COMPILED["forward"] = torch.compile(forward_kernel, dynamic=False)
        _COMPILED["backward"] = torch.compile(backward_kernel, dynamic=False)
    return _COMPILED["forward"], _COMPILED["backward"]


class MSTPNStep(torch.autograd.Function):
    """One m-STPN step (presynaptic normalisation done by the caller) with a straight-through backward."""

    @staticmethod
    def forward(ctx, z: Tensor, f: Tensor, weight: Tensor, bias: Tensor, decay: Tensor,
                plasticity: Tensor, gain: Tensor, w_max: Tensor, c2c_eps: Tensor | None,
                read_eps: Tensor | None, k: WriteConsts, compiled: bool):
        forward, _ = kernels(compiled)
        h, f_new, pulses = forward(z, f, weight, bias, decay, plasticity, gain, w_max, c2c_eps,
                                   read_eps, k)
        ctx.compiled = compiled
        ctx.save_for_backward(z, f, weight, decay, plasticity, h)
        if pulses is not None:
            ctx.mark_non_differentiable(pulses)
        return h, f_new, pulses

    @staticmethod
    def backward(ctx, grad_h: Tensor | None, grad_f_new: Tensor | None, _grad_pulses):
        z, f, weight, decay, plasticity, h = ctx.saved_tensors
        grad_h = torch.zeros_like(h) if grad_h is None else grad_h
        grad_f_new = torch.zeros_like(f) if grad_f_new is None else grad_f_new
        _, backward = kernels(ctx.compiled)
        grads = backward(grad_h, grad_f_new, z, f, weight, decay, plasticity, h)
        return (*grads, None, None, None, None, None, None)
