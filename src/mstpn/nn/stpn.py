"""The STPN cell (Garcia Rodriguez, Guo, Moraitis, ICML 2022), faithful to its reference step."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from mstpn.nn.stpn_step import NORM_EPS, STPNState, fused_step, reference_step, use_compiled, zero_state


class STPNCell(nn.Module):
    """Short-Term Plasticity Neuron layer, one time step per call, in the style of ``nn.RNNCell``.

    Parameters (all learned by BPTT): ``weight`` W (H x (I+H)), ``bias`` b (H), ``decay`` lambda
    (H x (I+H)), ``plasticity`` gamma (H x (I+H)). State: :class:`STPNState` (h, f), zeros when None.

    ``fused=True`` uses the hand-written backward of :mod:`mstpn.nn.stpn_step`; ``fused=False`` the
    literal autograd transcription. Both compute the same numbers. ``compile`` ("auto", "always",
    "never") runs the fused step through ``torch.compile``d kernels (auto: on the CPU at Pong-like
    sizes); it is kept as ``compile_mode``.
    """

    def __init__(self, input_size: int, hidden_size: int, *, fused: bool = True,
                 compile: str = "auto") -> None:
        super().__init__()
        if input_size < 1 or hidden_size < 1:
            raise ValueError(f"input_size and hidden_size must be >= 1, got {input_size}, {hidden_size}")
        self.input_size = input_size
        self.hidden_size = hidden_size
        if compile not in ("auto", "always", "never"):
            raise ValueError(f"compile: must be auto, always or never, got {compile!r}")
        self.fused = fused
        self.compile_mode = compile
        n = input_size + hidden_size
        self.weight = nn.Parameter(torch.empty(hidden_size, n))
        self.bias = nn.Parameter(torch.empty(hidden_size))
        self.decay = nn.Parameter(torch.empty(hidden_size, n))
        self.plasticity = nn.Parameter(torch.empty(hidden_size, n))
        self.energy_log: list[dict[str, float]] | None = None
        self.reset_parameters()

    @property
    def num_synapses(self) -> int:
        """Number of plastic synapses, H x (I+H)."""
        return self.weight.numel()

    def reset_parameters(self) -> None:
        """W, b ~ U(+-1/sqrt(H)); lambda ~ U(0, 1); gamma ~ U(+-0.001/sqrt(H)) (reference init)."""
        bound = 1.0 / math.sqrt(self.hidden_size)
        nn.init.uniform_(self.weight, -bound, bound)
        nn.init.uniform_(self.bias, -bound, bound)
        nn.init.uniform_(self.decay, 0.0, 1.0)
        nn.init.uniform_(self.plasticity, -0.001 * bound, 0.001 * bound)

    def initial_state(self, batch_size: int, *, device: torch.device | None = None,
                      dtype: torch.dtype | None = None) -> STPNState:
        """All-zero state (h, F) for ``batch_size`` sequences."""
        return zero_state(self.weight, batch_size, device=device, dtype=dtype)

    def forward(self, x: Tensor, state: STPNState | None = None) -> tuple[Tensor, STPNState]:
        """One step: x (B, I) -> h (B, H) and the new state."""
        if x.dim() != 2 or x.shape[1] != self.input_size:
            raise ValueError(f"x: expected shape (batch, {self.input_size}), got {tuple(x.shape)}")
        if state is None:
            state = self.initial_state(x.shape[0], device=x.device, dtype=x.dtype)
        if self.energy_log is not None:
            self.energy_log.append(self._energy_proxy(x, state))
        args = (x, state, self.weight, self.bias, self.decay, self.plasticity)
        if not self.fused:
            return reference_step(*args)
        return fused_step(*args, compiled=use_compiled(self.compile_mode, x.shape[0] * self.num_synapses,
                                                    x.device))

    @torch.no_grad()
    def _energy_proxy(self, x: Tensor, state: STPNState) -> dict[str, float]:
        """The STPN paper's proxy sum_ij z_j^2 |G_ij| / n_i, summed over the batch."""
        z = torch.cat([x, state.h], dim=-1)
        g = self.weight + state.f
        n = torch.linalg.vector_norm(g, dim=-1) + NORM_EPS
        proxy = (torch.bmm((z * z).unsqueeze(-2), g.abs_().mT).squeeze(-2) / n).sum()
        return {"proxy": float(proxy), "batch": x.shape[0]}

    def enable_energy_probe(self, enabled: bool = True) -> None:
        """Record the energy proxy of every step in ``energy_log`` (off by default: no cost)."""
        self.energy_log = [] if enabled else None

    def extra_repr(self) -> str:
        return f"input_size={self.input_size}, hidden_size={self.hidden_size}, fused={self.fused}"
