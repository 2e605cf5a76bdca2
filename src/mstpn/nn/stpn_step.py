"""Pure step functions of the Short-Term Plasticity Neuron (STPN) layer.

``reference_step`` transcribes PAPER.md's equations literally and lets autograd differentiate them;
it is the ground truth the tests compare against. ``fused_step`` computes the same step with a
hand-written backward (:class:`FusedSTPNStep`) that keeps only what it needs (z, F, h, the row norms)
and recomputes G = W + F, so a 20-step BPTT window costs less time and memory than the
transcription; at Pong size on the CPU the plain step also runs as two ``torch.compile``d pure
kernels (:class:`CompiledSTPNStep`), several times faster than the transcription
(``benchmarks/stpn_step.py``).

Shapes: x (B, I), h (B, H), z = [x; h] (B, N) with N = I + H, W/decay/plasticity (H, N), F (B, H, N).

Two normalisations are supported:
- ``row_norm=True`` (the STPN): n_i = ||G[i, :]|| + 1e-16, h = tanh(G z / n + b),
  F' = lambda F / n + gamma h z^T.
- ``row_norm=False`` (the m-STPN): the caller normalises z (presynaptic, on the neuron side),
  h = tanh(G z + b), F' = lambda F + gamma h z^T.

A ``write`` hook may replace F' = F_decayed + dF by what a device actually writes (quantised pulses,
thresholds, noise, bounds), and a ``read_noise`` hook adds the noise of reading G z; both are
straight-through in the backward (identity for the write, an additive constant for the noise).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import torch
from torch import Tensor

NORM_EPS = 1e-16

WriteFn = Callable[[Tensor, Tensor], Tensor]
"""(F_decayed, dF) -> F_new, evaluated without gradient; backward treats it as F_decayed + dF."""

ReadNoiseFn = Callable[[Tensor, Tensor], Tensor]
"""(G, z) -> additive noise on G z (B, H), evaluated without gradient."""


class STPNState(NamedTuple):
    """Recurrent state of an STPN layer: hidden activity h (B, H) and short-term weights F (B, H, N)."""

    h: Tensor
    f: Tensor


def zero_state(weight: Tensor, batch_size: int, *, device: torch.device | None = None,
               dtype: torch.dtype | None = None) -> STPNState:
    """All-zero (h, F) for ``batch_size`` sequences of a layer with weights ``weight`` (H x N)."""
    hidden, n = weight.shape
    kwargs = {"device": device or weight.device, "dtype": dtype or weight.dtype}
    return STPNState(torch.zeros(batch_size, hidden, **kwargs), torch.zeros(batch_size, hidden, n, **kwargs))


def reference_step(x: Tensor, state: STPNState, weight: Tensor, bias: Tensor, decay: Tensor,
                   plasticity: Tensor) -> tuple[Tensor, STPNState]:
    """One STPN step exactly as PAPER.md writes it; autograd provides the backward."""
    z = torch.cat([x, state.h], dim=-1)
    g = weight + state.f
    n = torch.sqrt((g * g).sum(-1)) + NORM_EPS
    h = torch.tanh(torch.einsum("bhn,bn->bh", g, z) / n + bias)
    f = decay * (state.f / n.unsqueeze(-1)) + plasticity * (h.unsqueeze(-1) * z.unsqueeze(-2))
    return h, STPNState(h, f)


def _outer(a: Tensor, b: Tensor) -> Tensor:
    """Batched outer product a b^T: (B, H), (B, N) -> (B, H, N)."""
    return torch.bmm(a.unsqueeze(-1), b.unsqueeze(-2))


def _matvec(g: Tensor, z: Tensor) -> Tensor:
    """Batched G z: (B, H, N), (B, N) -> (B, H).

    Computed as z^T G^T: torch's CPU bmm is ~7x slower for (B, H, N) @ (B, N, 1) than for the same
    product with a row vector on the left (one gemm per batch on a transposed view, no copy).
    """
    return torch.bmm(z.unsqueeze(-2), g.mT).squeeze(-2)


def _vecmat(a: Tensor, g: Tensor) -> Tensor:
    """Batched a^T G: (B, H), (B, H, N) -> (B, N)."""
    return torch.bmm(a.unsqueeze(-2), g).squeeze(-2)


def _row_norm_forward(z: Tensor, f: Tensor, weight: Tensor, bias: Tensor, decay: Tensor,
                      plasticity: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """The plain STPN step as one pure function (h, F_new, n, G z), for ``torch.compile``."""
    g = f + weight
    gz = (g * z.unsqueeze(-2)).sum(-1)
    n = torch.sqrt((g * g).sum(-1)) + NORM_EPS
    h = torch.tanh(gz / n + bias)
    f_new = decay * f / n.unsqueeze(-1) + plasticity * h.unsqueeze(-1) * z.unsqueeze(-2)
    return h, f_new, n, gz


def _row_norm_backward(grad_h: Tensor, grad_f_new: Tensor, z: Tensor, f: Tensor, weight: Tensor,
                       decay: Tensor, plasticity: Tensor, h: Tensor, n: Tensor, gz: Tensor
                       ) -> tuple[Tensor, ...]:
    """Gradients of the plain STPN step (same equations as :class:`FusedSTPNStep`'s backward)."""
    zz, hh, nn_ = z.unsqueeze(-2), h.unsqueeze(-1), n.unsqueeze(-1)
    q = grad_f_new * plasticity
    grad_h = grad_h + (q * zz).sum(-1)
    r = grad_f_new / nn_
    grad_f = r * decay
    grad_a = grad_h * (1.0 - h * h)
    grad_gz = grad_a / n
    grad_n = -(grad_f * f).sum(-1) / n - grad_a * gz / (n * n)
    g = f + weight
    grad_g = g * (grad_n / n).unsqueeze(-1) + grad_gz.unsqueeze(-1) * zz
    grad_z = (q * hh + grad_gz.unsqueeze(-1) * g).sum(-2)
    return (grad_z, grad_f + grad_g, grad_g.sum(0), grad_a.sum(0), (r * f).sum(0),
            (grad_f_new * hh * zz).sum(0))


_COMPILED: dict[Callable, Callable] = {}


def compile_once(fn: Callable) -> Callable:
    """``torch.compile(fn)`` (static shapes), made once per process and function."""
    if fn not in _COMPILED:
        _COMPILED[fn] = torch.compile(fn, dynamic=False)
    return _COMPILED[fn]


def compiled_kernels() -> tuple:
    """(forward, backward) of the plain row-normalised step, compiled once per process."""
    return compile_once(_row_norm_forward), compile_once(_row_norm_backward)


COMPILE_MIN_STATES = 250_000
"""Synapse states per step (batch x synapses) from which ``compile="auto"`` compiles the step."""


def use_compiled(mode: str, states: int, device: torch.device) -> bool:
    """Whether a cell with compile ``mode`` ("auto", "always", "never") compiles a step of ``states``.

    "auto" compiles on the CPU only: there the fused kernels save most of the time, while on a GPU
    the eager kernels are fast and compiling would need triton.
    """
    auto = mode == "auto" and device.type == "cpu" and states >= COMPILE_MIN_STATES
    return mode == "always" or auto


class CompiledSTPNStep(torch.autograd.Function):
    """The plain STPN step (row norm, no device hooks) through the compiled kernels."""

    @staticmethod
    def forward(ctx, z: Tensor, f: Tensor, weight: Tensor, bias: Tensor, decay: Tensor,
                plasticity: Tensor) -> tuple[Tensor, Tensor]:
        forward, _ = compiled_kernels()
        h, f_new, n, gz = forward(z, f, weight, bias, decay, plasticity)
        ctx.save_for_backward(z, f, weight, decay, plasticity, h, n, gz)
        return h, f_new

    @staticmethod
    def backward(ctx, grad_h: Tensor | None, grad_f_new: Tensor | None):
        z, f, weight, decay, plasticity, h, n, gz = ctx.saved_tensors
        grad_h = torch.zeros_like(h) if grad_h is None else grad_h
        grad_f_new = torch.zeros_like(f) if grad_f_new is None else grad_f_new
        _, backward = compiled_kernels()
        return backward(grad_h, grad_f_new, z, f, weight, decay, plasticity, h, n, gz)


class FusedSTPNStep(torch.autograd.Function):
    """One STPN step with a hand-written backward; see the module docstring for the equations."""

    @staticmethod
    def forward(ctx, z: Tensor, f: Tensor, weight: Tensor, bias: Tensor, decay: Tensor,
                plasticity: Tensor, row_norm: bool, write: WriteFn | None,
                read_noise: ReadNoiseFn | None) -> tuple[Tensor, Tensor]:
        g = f + weight
        gz = _matvec(g, z)
        gz_read = gz if read_noise is None else gz + read_noise(g, z)
        if row_norm:
            n = torch.linalg.vector_norm(g, dim=-1).add_(NORM_EPS)
            h = torch.tanh(gz_read / n + bias)
        else:
            n = None
            h = torch.tanh(gz_read + bias)
        f_decayed = f * decay
        if row_norm:
            f_decayed.div_(n.unsqueeze(-1))
        # g is no longer needed (backward recomputes it): reuse its memory for dF.
        d_f = torch.mul(plasticity, h.unsqueeze(-1), out=g).mul_(z.unsqueeze(-2))
        f_new = f_decayed.add_(d_f) if write is None else write(f_decayed, d_f)
        ctx.row_norm = row_norm
        ctx.save_for_backward(z, f, weight, decay, plasticity, h, n, gz_read)
        return h, f_new

    @staticmethod
    def backward(ctx, grad_h: Tensor | None, grad_f_new: Tensor | None):
        z, f, weight, decay, plasticity, h, n, gz = ctx.saved_tensors
        row_norm = ctx.row_norm
        grad_h = torch.zeros_like(h) if grad_h is None else grad_h
        grad_z = torch.zeros_like(z)
        grad_decay = grad_plasticity = None
        grad_f = None
        grad_n = torch.zeros_like(h) if row_norm else None
        if grad_f_new is not None:
            # dF = gamma h z^T
            q = grad_f_new * plasticity
            grad_h = grad_h + _matvec(q, z)
            grad_z += _vecmat(h, q)
            torch.mul(grad_f_new, h.unsqueeze(-1), out=q)
            grad_plasticity = (q.mul_(z.unsqueeze(-2))).sum(0)
            # F_decayed = lambda F (/ n)
            r = grad_f_new / n.unsqueeze(-1) if row_norm else grad_f_new
            grad_decay = (r * f).sum(0)
            grad_f = r.mul_(decay) if row_norm else r * decay
            if row_norm:
                grad_n -= torch.linalg.vecdot(grad_f, f) / n  # row-wise dot; einsum takes a slow bmm
        grad_a = grad_h * (1.0 - h * h)
        grad_bias = grad_a.sum(0)
        g = f + weight
        if row_norm:
            grad_gz = grad_a / n
            grad_n -= grad_a * gz / (n * n)
            grad_z += _vecmat(grad_gz, g)
            # dn/dG = G / n
            grad_g = torch.baddbmm(g.mul_((grad_n / n).unsqueeze(-1)), grad_gz.unsqueeze(-1),
                                   z.unsqueeze(-2))
        else:
            grad_z += _vecmat(grad_a, g)
            grad_g = _outer(grad_a, z)
        grad_weight = grad_g.sum(0)
        grad_f = grad_g if grad_f is None else grad_f.add_(grad_g)
        return grad_z, grad_f, grad_weight, grad_bias, grad_decay, grad_plasticity, None, None, None


def fused_step(x: Tensor, state: STPNState, weight: Tensor, bias: Tensor, decay: Tensor,
               plasticity: Tensor, *, row_norm: bool = True, normalize_input: bool = False,
               write: WriteFn | None = None, read_noise: ReadNoiseFn | None = None,
               compiled: bool = False) -> tuple[Tensor, STPNState]:
    """One STPN / m-STPN step with the hand-written backward.

    ``normalize_input`` divides z by its L2 norm first (the m-STPN's presynaptic normalisation).
    ``compiled`` runs the plain row-normalised step (no hooks) through ``torch.compile``d kernels.
    """
    z = torch.cat([x, state.h], dim=-1)
    if normalize_input:
        z = z / (torch.linalg.vector_norm(z, dim=-1, keepdim=True) + NORM_EPS)
    if compiled and row_norm and write is None and read_noise is None:
        h, f = CompiledSTPNStep.apply(z, state.f, weight, bias, decay, plasticity)
    else:
        h, f = FusedSTPNStep.apply(z, state.f, weight, bias, decay, plasticity, row_norm, write,
                                   read_noise)
    return h, STPNState(h, f)
