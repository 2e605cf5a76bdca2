"""LSTM and Elman-RNN baselines with the cell interface of :class:`mstpn.nn.STPNCell`.

Both cells take one time step per call, ``forward(x, state=None) -> (h, state)``, keep their state in a
NamedTuple (:class:`LSTMState` ``(h, c)``, :class:`RNNState` ``(h,)``) that is all zeros when ``None``,
and offer ``initial_state(batch)``, ``reset_parameters()`` and ``extra_repr()``. Code that only touches
the state through ``type(state)(*(t * mask for t in state))`` therefore treats every core alike.

Parameters are named and initialised as in ``torch.nn.LSTMCell`` / ``torch.nn.RNNCell``
(``weight_ih``, ``weight_hh``, ``bias_ih``, ``bias_hh``; all U(+-1/sqrt(H))), and the numbers agree
with those modules given the same parameters.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
from torch import Tensor, nn


class LSTMState(NamedTuple):
    """Recurrent state of an LSTM cell: hidden output h (B, H) and cell memory c (B, H)."""

    h: Tensor
    c: Tensor


class RNNState(NamedTuple):
    """Recurrent state of an Elman RNN cell: hidden output h (B, H)."""

    h: Tensor


class _RecurrentCell(nn.Module):
    """Shared plumbing: ``gates`` x (I) and ``gates`` x (H) weights, biases, init, shape checks."""

    state_type: type[tuple] = tuple
    gates: int = 1

    def __init__(self, input_size: int, hidden_size: int) -> None:
        super().__init__()
        if input_size < 1 or hidden_size < 1:
            raise ValueError(f"input_size and hidden_size must be >= 1, got {input_size}, {hidden_size}")
        self.input_size = input_size
        self.hidden_size = hidden_size
        rows = self.gates * hidden_size
        self.weight_ih = nn.Parameter(torch.empty(rows, input_size))
        self.weight_hh = nn.Parameter(torch.empty(rows, hidden_size))
        self.bias_ih = nn.Parameter(torch.empty(rows))
        self.bias_hh = nn.Parameter(torch.empty(rows))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Every parameter ~ U(+-1/sqrt(H)), as torch.nn's recurrent cells."""
        bound = 1.0 / math.sqrt(self.hidden_size)
        for p in self.parameters():
            nn.init.uniform_(p, -bound, bound)

    def initial_state(self, batch_size: int, *, device: torch.device | None = None,
                      dtype: torch.dtype | None = None) -> tuple:
        """All-zero state for ``batch_size`` sequences."""
        device = device or self.weight_ih.device
        dtype = dtype or self.weight_ih.dtype
        n_tensors = len(self.state_type._fields)
        return self.state_type(*(torch.zeros(batch_size, self.hidden_size, device=device, dtype=dtype)
                                 for _ in range(n_tensors)))

    def _check(self, x: Tensor, state: tuple | None) -> tuple:
        if x.dim() != 2 or x.shape[1] != self.input_size:
            raise ValueError(f"x: expected shape (batch, {self.input_size}), got {tuple(x.shape)}")
        if state is None:
            return self.initial_state(x.shape[0], device=x.device, dtype=x.dtype)
        return state

    def _preactivation(self, x: Tensor, h: Tensor) -> Tensor:
        """W_ih x + b_ih + W_hh h + b_hh, shape (B, gates * H)."""
        return torch.addmm(self.bias_ih, x, self.weight_ih.t()) + torch.addmm(self.bias_hh, h,
                                                                               self.weight_hh.t())

    def extra_repr(self) -> str:
        return f"input_size={self.input_size}, hidden_size={self.hidden_size}"


class LSTMCell(_RecurrentCell):
    """Long short-term memory cell (gates i, f, g, o in torch's order), one time step per call."""

    state_type = LSTMState
    gates = 4

    def forward(self, x: Tensor, state: LSTMState | None = None) -> tuple[Tensor, LSTMState]:
        """One step: x (B, I) -> h (B, H) and the new :class:`LSTMState`."""
        h, c = self._check(x, state)
        i, f, g, o = self._preactivation(x, h).chunk(4, dim=1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        h = torch.sigmoid(o) * torch.tanh(c)
        return h, LSTMState(h, c)


class RNNCell(_RecurrentCell):
    """Elman RNN cell, h' = tanh(W_ih x + b_ih + W_hh h + b_hh), one time step per call."""

    state_type = RNNState
    gates = 1

    def forward(self, x: Tensor, state: RNNState | None = None) -> tuple[Tensor, RNNState]:
        """One step: x (B, I) -> h (B, H) and the new :class:`RNNState`."""
        (h,) = self._check(x, state)
        h = torch.tanh(self._preactivation(x, h))
        return h, RNNState(h)
