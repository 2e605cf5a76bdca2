"""STPNCell: exactness against PAPER.md's equations, fused gradients, energy probe."""

from __future__ import annotations

import math

import pytest
import torch
from cell_runs import run_cell

from mstpn.nn import STPNCell, STPNState
from mstpn.nn.stpn_step import FusedSTPNStep, fused_step, reference_step


def transcription(x_seq, weight, bias, decay, plasticity):
    """PAPER.md's STPN step, per batch element and per synapse index, in plain float64 Python loops."""
    steps, batch, n_in = x_seq.shape
    n_hidden = weight.shape[0]
    n_pre = n_in + n_hidden
    out = torch.zeros(steps, batch, n_hidden, dtype=torch.float64)
    for b in range(batch):
        h = [0.0] * n_hidden
        f = [[0.0] * n_pre for _ in range(n_hidden)]
        for t in range(steps):
            z = [float(v) for v in x_seq[t, b]] + h
            g = [[float(weight[i, j]) + f[i][j] for j in range(n_pre)] for i in range(n_hidden)]
            norm = [math.sqrt(sum(v * v for v in g[i])) + 1e-16 for i in range(n_hidden)]
            h = [math.tanh(sum(g[i][j] * z[j] for j in range(n_pre)) / norm[i] + float(bias[i]))
                 for i in range(n_hidden)]
            f = [[float(decay[i, j]) * f[i][j] / norm[i] + float(plasticity[i, j]) * h[i] * z[j]
                  for j in range(n_pre)] for i in range(n_hidden)]
            out[t, b] = torch.tensor(h, dtype=torch.float64)
    return out


@pytest.mark.parametrize("fused", [True, False])
def test_cell_matches_transcription_float64(fused):
    torch.manual_seed(0)
    cell = STPNCell(5, 4, fused=fused).double()
    with torch.no_grad():  # make the plastic part matter: gamma far above its tiny init
        cell.plasticity.uniform_(-0.5, 0.5)
    x_seq = torch.randn(6, 3, 5, dtype=torch.float64)
    hs, _ = run_cell(cell, x_seq)
    expected = transcription(x_seq, cell.weight.detach(), cell.bias.detach(), cell.decay.detach(),
                             cell.plasticity.detach())
    assert (hs - expected).abs().max().item() < 1e-10
    assert (hs[-1] - hs[0]).abs().max().item() > 1e-3  # the check is not vacuous


def test_parameters_state_and_init():
    cell = STPNCell(7, 5)
    names = dict(cell.named_parameters())
    assert set(names) == {"weight", "bias", "decay", "plasticity"}
    assert cell.weight.shape == cell.decay.shape == cell.plasticity.shape == (5, 12)
    bound = 1 / math.sqrt(5)
    assert cell.weight.abs().max() <= bound and cell.bias.abs().max() <= bound
    assert cell.decay.min() >= 0 and cell.decay.max() <= 1
    assert cell.plasticity.abs().max() <= 0.001 * bound
    h, state = cell(torch.randn(3, 7))
    assert isinstance(state, STPNState) and state.f.shape == (3, 5, 12) and h.shape == (3, 5)
    with pytest.raises(ValueError, match="expected shape"):
        cell(torch.randn(3, 6))


@pytest.mark.parametrize("compile_mode", ["never", "always"])
def test_fused_and_reference_gradients_agree_over_a_window(compile_mode):
    torch.manual_seed(1)
    cell = STPNCell(6, 4, compile=compile_mode).double()
    with torch.no_grad():
        cell.plasticity.uniform_(-0.3, 0.3)
    x_seq = torch.rand(5, 3, 6, dtype=torch.float64)
    grads = {}
    for fused in (True, False):
        cell.fused = fused
        cell.zero_grad()
        hs, state = run_cell(cell, x_seq)
        (hs.sin().sum() + state.f.square().sum()).backward()
        grads[fused] = [p.grad.clone() for p in cell.parameters()]
    for a, b in zip(grads[True], grads[False], strict=True):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-12)


def _plus_offset(f_decayed, d_f):
    """A write hook with the straight-through Jacobian: F_decayed + dF plus a constant."""
    return f_decayed.add_(d_f).add_(0.01)


@pytest.mark.parametrize("row_norm", [True, False])
@pytest.mark.parametrize("write", [None, _plus_offset])
def test_fused_step_gradcheck(row_norm, write):
    gen = torch.Generator().manual_seed(2)
    b, h, n = 2, 3, 5

    def rand(*shape, scale=1.0):
        return (scale * torch.randn(*shape, generator=gen, dtype=torch.float64)).requires_grad_()

    z, f = rand(b, n), rand(b, h, n, scale=0.3)
    weight, bias = rand(h, n), rand(h)
    decay = torch.rand(h, n, generator=gen, dtype=torch.float64).requires_grad_()
    plasticity = rand(h, n, scale=0.5)
    noise = 0.05 * torch.randn(b, h, generator=gen, dtype=torch.float64)
    for read_noise in (None, lambda g, zz: noise):
        def fn(*args, read_noise=read_noise):
            return FusedSTPNStep.apply(*args, row_norm, write, read_noise)
        assert torch.autograd.gradcheck(fn, (z, f, weight, bias, decay, plasticity), eps=1e-6,
                                        atol=1e-7)


def test_fused_step_matches_reference_values():
    torch.manual_seed(3)
    cell = STPNCell(4, 3).double()
    state = STPNState(torch.randn(2, 3, dtype=torch.float64), torch.randn(2, 3, 7, dtype=torch.float64))
    x = torch.randn(2, 4, dtype=torch.float64)
    args = (x, state, cell.weight, cell.bias, cell.decay, cell.plasticity)
    h1, s1 = fused_step(*args)
    h2, s2 = reference_step(*args)
    torch.testing.assert_close(h1, h2, rtol=0, atol=1e-12)
    torch.testing.assert_close(s1.f, s2.f, rtol=0, atol=1e-12)


def test_energy_probe_off_by_default_and_finite():
    torch.manual_seed(4)
    cell = STPNCell(6, 4)
    assert cell.energy_log is None
    run_cell(cell, torch.randn(3, 2, 6))
    assert cell.energy_log is None
    cell.enable_energy_probe()
    run_cell(cell, torch.randn(3, 2, 6))
    assert len(cell.energy_log) == 3
    for rec in cell.energy_log:
        assert math.isfinite(rec["proxy"]) and rec["proxy"] >= 0
    # the proxy by hand for the first step (zero state): sum_ij z_j^2 |W_ij| / ||W_i||
    cell.enable_energy_probe()
    x = torch.randn(2, 6)
    cell(x)
    z = torch.cat([x, torch.zeros(2, 4)], 1)
    w = cell.weight.detach()
    expected = float(((z * z) @ (w.abs() / w.norm(dim=1, keepdim=True)).T).sum())
    assert cell.energy_log[0]["proxy"] == pytest.approx(expected, rel=1e-5)
    cell.enable_energy_probe(False)
    assert cell.energy_log is None
