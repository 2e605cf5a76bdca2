"""The m-STPN step as two pure kernels (forward, backward), compiled with ``torch.compile`` at scale.

At Pong size (16 x 64 x 2656 synapse states) the step is a chain of ~30 elementwise operations over
2.7 M values; eagerly that costs ~120 ms on one core, fused by the compiler a few ms. The kernels take
everything as arguments (noise included, drawn by the caller) so they are deterministic and
compile-friendly. Every device formula comes from :mod:`mstpn.devices.physics`, applied to a
*weight-unit view* of the pair's devices (:class:`PairView`: a device of the pair spans
[0, w_max] weight units above g_min).

What depends only on the parameters and the devices (lambda, the clipped W, the per-synapse pulse
step, the range of F) is computed once per parameter version (:class:`StepConstants`), not per step.
Backward is straight-through for every non-ideality: F_new = lambda F + dF, read noise a constant.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor

from mstpn.devices import physics
from mstpn.nn.stpn_step import compile_once


class WriteConsts(NamedTuple):
    """Static settings of the write and read model (weight units; see MSTPNConfig)."""

    inv_step: float
    """1 / weight change of one nominal pulse (pulses per weight unit)."""
    max_pulses: float
    threshold: float
    quantize: bool
    soft_bounds: bool
    clip_range: bool
    c2c_sigma: float
    read_sigma: float
    u: float
    """g_min in weight units (offset of both devices of a pair)."""
    record: bool
    """Return the pulse counts too (energy probe)."""


class PairView(NamedTuple):
    """The devices of the pairs in weight units above g_min: the subset of DeviceTensors physics uses."""

    g_min: float
    g_max: Tensor
    span: Tensor


class StepConstants(NamedTuple):
    """Per-synapse tensors (H x N) derived from the parameters and devices; valid until either changes."""

    decay: Tensor
    """lambda = exp(-dt_step / tau(V_b))."""
    d_decay: Tensor
    """d lambda / d bias_logit (the chain rule of the bias, applied in the backward)."""
    weight: Tensor
    """W, clipped to the pair's range when ``clip_range``."""
    pulse_step: Tensor
    """Weight change of one pulse on this device far from its bounds (its own a_st)."""
    w_max: Tensor
    """Range of one device of the pair (weight units)."""
    f_low: Tensor
    """Lowest F the pair can hold on top of W (the - device full)."""
    f_high: Tensor
    """Highest F the pair can hold on top of W (the + device full)."""


def pair_constants(weight: Tensor, decay: Tensor, d_decay: Tensor, pulse_step: Tensor, w_max: Tensor,
                   clip: bool) -> StepConstants:
    """:class:`StepConstants` from the cell's tensors (no gradient flows through them)."""
    if clip:
        weight = torch.maximum(torch.minimum(weight, w_max), -w_max)
    view = PairView(0.0, w_max, w_max)
    _, high_plus = physics.volatile_room(torch.relu(weight), view)
    _, high_minus = physics.volatile_room(torch.relu(-weight), view)
    return StepConstants(decay, d_decay, weight, pulse_step, w_max, -high_minus, high_plus)


def device_write(f_decayed: Tensor, d_f: Tensor, c: StepConstants, c2c_eps: Tensor | None,
                 k: WriteConsts) -> tuple[Tensor, Tensor]:
    """What the devices make of a requested update dF: (F_new, signed pulse count per synapse)."""
    up = d_f > 0
    pulses = torch.clamp(d_f.abs() * k.inv_step, max=k.max_pulses)
    if k.quantize:
        pulses = torch.round(pulses)
    if k.threshold > 0:
        pulses = torch.where(pulses < k.threshold, 0.0, pulses)
    amount = pulses * c.pulse_step
    if k.soft_bounds:
        # the written device holds relu(sW) + relu(sF) weight units above g_min, s = sign(dF)
        w = c.weight
        used = torch.where(up, torch.relu(w) + torch.relu(f_decayed), torch.relu(-w) + torch.relu(-f_decayed))
        amount = amount * physics.soft_bound(used, 1.0, PairView(0.0, c.w_max, c.w_max))
    if c2c_eps is not None:
        amount = amount * physics.cycle_noise_factor(pulses, c2c_eps, k.c2c_sigma)
    f_new = f_decayed + torch.where(up, amount, -amount)
    if k.clip_range:
        f_new = torch.maximum(torch.minimum(f_new, c.f_high), c.f_low)
    return f_new, torch.where(up, pulses, -pulses)


def read_noise_std(g: Tensor, z: Tensor, u: float, read_sigma: float) -> Tensor:
    """Std of the noise of reading G z when every device adds its own relative read noise.

    The pair's conductances in weight units are u + relu(w) and u + relu(-w), read at z; independent
    Gaussians add in variance over both devices and the row.
    """
    zz = z.unsqueeze(-2)
    var = (physics.read_noise_variance(u + torch.relu(g), zz, read_sigma)
           + physics.read_noise_variance(u + torch.relu(-g), zz, read_sigma)).sum(-1)
    return torch.sqrt(var)


def forward_kernel(z: Tensor, f: Tensor, bias: Tensor, plasticity: Tensor, c: StepConstants,
                   c2c_eps: Tensor | None, read_eps: Tensor | None, k: WriteConsts
                   ) -> tuple[Tensor, Tensor, Tensor | None]:
    """h = tanh(G z + read noise + b); F_new = device_write(lambda F, gamma h z^T)."""
    g = f + c.weight
    a = (g * z.unsqueeze(-2)).sum(-1)
    if read_eps is not None:
        a = a + read_noise_std(g, z, k.u, k.read_sigma) * read_eps
    h = torch.tanh(a + bias)
    d_f = plasticity * h.unsqueeze(-1) * z.unsqueeze(-2)
    f_new, pulses = device_write(c.decay * f, d_f, c, c2c_eps, k)
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


def kernels(compiled: bool):
    """(forward, backward) kernels, compiled once per process when asked."""
    if not compiled:
        return forward_kernel, backward_kernel
    return compile_once(forward_kernel), compile_once(backward_kernel)


class MSTPNStep(torch.autograd.Function):
    """One m-STPN step (presynaptic normalisation done by the caller) with a straight-through backward.

    Inputs with gradients: z, F, and the parameters W, b, bias_logit, gamma; ``c`` holds what the
    parameters imply (lambda and its derivative in bias_logit among them), so the per-step backward
    applies the chain rule of the bias itself and W passes straight through its clip.
    """

    @staticmethod
    def forward(ctx, z: Tensor, f: Tensor, weight: Tensor, bias: Tensor, bias_logit: Tensor,
                plasticity: Tensor, c: StepConstants, c2c_eps: Tensor | None, read_eps: Tensor | None,
                k: WriteConsts, compiled: bool):
        forward, _ = kernels(compiled)
        h, f_new, pulses = forward(z, f, bias, plasticity, c, c2c_eps, read_eps, k)
        ctx.compiled = compiled
        ctx.save_for_backward(z, f, c.weight, c.decay, c.d_decay, plasticity, h)
        if pulses is not None:
            ctx.mark_non_differentiable(pulses)
        return h, f_new, pulses

    @staticmethod
    def backward(ctx, grad_h: Tensor | None, grad_f_new: Tensor | None, _grad_pulses):
        z, f, weight, decay, d_decay, plasticity, h = ctx.saved_tensors
        grad_h = torch.zeros_like(h) if grad_h is None else grad_h
        grad_f_new = torch.zeros_like(f) if grad_f_new is None else grad_f_new
        _, backward = kernels(ctx.compiled)
        grad_z, grad_f, grad_w, grad_b, grad_decay, grad_plasticity = backward(
            grad_h, grad_f_new, z, f, weight, decay, plasticity, h)
        return (grad_z, grad_f, grad_w, grad_b, grad_decay * d_decay, grad_plasticity,
                None, None, None, None, None)
