"""MSTPNCell: equivalence with the STPN when ideal, each non-ideality matters, sparse writes, probe."""

from __future__ import annotations

import math

import pytest
import torch
from cell_runs import run_cell

from mstpn.devices import srtio3_weilenmann2024
from mstpn.nn import MSTPNCell, MSTPNConfig, STPNCell

N_IN, H, B, T = 6, 4, 3, 5
PARAMS = ("weight", "bias", "bias_logit", "plasticity")


def inputs(seed=0, dtype=torch.float64):
    return torch.rand(T, B, N_IN, generator=torch.Generator().manual_seed(seed), dtype=dtype)


def test_ideal_matches_stpn_after_load():
    torch.manual_seed(0)
    stpn = STPNCell(N_IN, H).double()
    with torch.no_grad():
        stpn.plasticity.uniform_(-0.5, 0.5)
    cell = MSTPNCell(N_IN, H, config=MSTPNConfig.ideal()).double()
    cell.load_from_stpn(stpn)
    x_seq = inputs()
    hs_m, st_m = run_cell(cell, x_seq)
    hs_s, st_s = run_cell(stpn, x_seq)
    assert (hs_m - hs_s).abs().max().item() < 1e-6
    assert (st_m.f - st_s.f).abs().max().item() < 1e-6
    assert (hs_s[-1] - hs_s[0]).abs().max().item() > 1e-3


def _pair(config_b: MSTPNConfig, base: MSTPNConfig):
    """Two cells with the same learned parameters, configs ``base`` and ``config_b``, float64."""
    torch.manual_seed(1)
    a = MSTPNCell(N_IN, H, config=base).double()
    with torch.no_grad():
        a.plasticity.uniform_(-0.5, 0.5)
    b = MSTPNCell(N_IN, H, config=config_b).double()
    b.load_state_dict({k: v for k, v in a.state_dict().items() if k in PARAMS}, strict=False)
    return a, b


# Base: everything off, a small weight range so that bounds and clipping can bite.
BASE = MSTPNConfig.ideal(w_max=0.4, v_b_min=-0.6, v_b_max=0.6)
TOGGLES = {
    "quantize": {"quantize": True},
    "write_threshold": {"write_threshold": 1.0},
    "soft_bounds": {"soft_bounds": True},
    "clip_range": {"clip_range": True},
    "c2c_noise": {"c2c_noise": True},
    "read_noise": {"read_noise": True},
    "d2d_variability": {"d2d_variability": True},
    "bias_levels": {"bias_levels": 3},
    "presynaptic_norm": {"row_norm": False},
}


def test_identical_configs_give_identical_outputs():
    a, b = _pair(BASE, BASE)
    x_seq = inputs()
    assert torch.equal(run_cell(a, x_seq)[0], run_cell(b, x_seq)[0])


@pytest.mark.parametrize("name", list(TOGGLES))
def test_each_non_ideality_changes_the_output(name):
    a, b = _pair(BASE.replace(**TOGGLES[name]), BASE)
    x_seq = inputs()
    diff = (run_cell(a, x_seq)[0] - run_cell(b, x_seq)[0]).abs().max().item()
    assert diff > 1e-6, f"{name} on did not change the output (max diff {diff:.2e})"


def test_default_config_writes_are_sparse_and_probe_is_sane():
    torch.manual_seed(2)
    cell = MSTPNCell(20, 8)  # the default SrTiO3 preset and MSTPNConfig: every non-ideality on
    assert cell.energy_log is None
    run_cell(cell, torch.rand(T, B, 20))
    assert cell.energy_log is None  # off by default
    cell.enable_energy_probe()
    run_cell(cell, torch.rand(T, B, 20))
    assert len(cell.energy_log) == T
    total_writes = 0.0
    for rec in cell.energy_log:
        for key in ("read_j", "hold_j", "hold_leak_j", "pulse_j", "writes", "pulses"):
            assert math.isfinite(rec[key]) and rec[key] >= 0, key
        assert rec["writes"] < cell.num_synapses * B
        assert rec["read_j"] > 0 and rec["hold_j"] > 0
        assert (rec["pulse_j"] > 0) == (rec["writes"] > 0)
        total_writes += rec["writes"]
    assert total_writes > 0


@pytest.mark.parametrize("levels", [0, 5])
def test_bias_voltage_in_range_and_quantised(levels):
    cfg = MSTPNConfig(v_b_min=-0.5, v_b_max=0.3, bias_levels=levels)
    cell = MSTPNCell(N_IN, H, config=cfg)
    with torch.no_grad():
        cell.bias_logit.normal_(0, 5)
    v = cell.bias_voltage()
    assert v.min() >= cfg.v_b_min and v.max() <= cfg.v_b_max
    if levels:
        grid = torch.linspace(cfg.v_b_min, cfg.v_b_max, levels)
        dist = (v.detach().unsqueeze(-1) - grid).abs().min(-1).values
        assert dist.max() < 1e-6
        assert len(torch.unique(torch.round(v.detach() * 1e5))) == levels
    v.sum().backward()  # straight-through: the bias still learns
    assert cell.bias_logit.grad.abs().sum() > 0
    lam = cell.decay()
    assert lam.min() > 0 and lam.max() < 1
    tau = cell.tau0 * torch.exp(v.detach() / cell.params.v_tau)
    torch.testing.assert_close(lam.detach(), torch.exp(-cfg.dt_step / tau))


def test_accepts_any_device_parameters():
    slow = srtio3_weilenmann2024().replace(tau0=5.0)
    cells = [MSTPNCell(N_IN, H, params=p, config=MSTPNConfig(d2d_variability=False))
             for p in (srtio3_weilenmann2024(), slow)]
    cells[1].load_state_dict({k: v for k, v in cells[0].state_dict().items() if k in PARAMS}, strict=False)
    assert (cells[1].decay() > cells[0].decay()).all()  # larger tau0, slower decay, same bias
