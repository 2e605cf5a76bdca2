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


def _transcription(cell: MSTPNCell, x_seq: torch.Tensor):
    """The ideal presynaptic m-STPN with autograd: h = tanh(G z + b), F' = lambda F + gamma h z."""
    f = torch.zeros(x_seq.shape[1], cell.hidden_size, cell.input_size + cell.hidden_size, dtype=x_seq.dtype)
    h = torch.zeros(x_seq.shape[1], cell.hidden_size, dtype=x_seq.dtype)
    decay, hs = cell.decay(), []
    for x in x_seq:
        z = torch.cat([x, h], -1)
        z = z / (z.norm(dim=-1, keepdim=True) + 1e-16)
        h = torch.tanh(torch.einsum("bhn,bn->bh", cell.weight + f, z) + cell.bias)
        f = decay * f + cell.plasticity * h.unsqueeze(-1) * z.unsqueeze(-2)
        hs.append(h)
    return torch.stack(hs)


@pytest.mark.parametrize("compile_mode", ["never", "always"])
def test_presynaptic_step_gradients_match_autograd(compile_mode):
    torch.manual_seed(3)
    cell = MSTPNCell(N_IN, H, config=MSTPNConfig.ideal(row_norm=False, compile=compile_mode)).double()
    with torch.no_grad():
        cell.plasticity.uniform_(-0.5, 0.5)
    x_seq = inputs(4).requires_grad_()
    weights = torch.rand(T, B, H, dtype=torch.float64)
    grads = []
    for run in (lambda: run_cell(cell, x_seq)[0], lambda: _transcription(cell, x_seq)):
        cell.zero_grad()
        x_seq.grad = None
        (run() * weights).sum().backward()
        grads.append([x_seq.grad.clone(), *(getattr(cell, n).grad.clone() for n in PARAMS)])
    for name, a, b in zip(("x", *PARAMS), *grads, strict=True):
        assert b.abs().max() > 0, name
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-9, msg=name)


def test_step_constants_follow_parameter_changes():
    torch.manual_seed(4)
    cell = MSTPNCell(N_IN, H).double()
    first = cell.step_constants(torch.float64)
    assert cell.step_constants(torch.float64) is first  # cached while nothing changed
    optimizer = torch.optim.SGD(cell.parameters(), lr=1.0)
    run_cell(cell, inputs())[0].sum().backward()
    optimizer.step()
    second = cell.step_constants(torch.float64)
    assert second is not first
    torch.testing.assert_close(second.decay, cell.decay().detach())
    assert not torch.equal(second.decay, first.decay)


@torch.no_grad()
def test_probe_energies_match_device_physics(monkeypatch):
    """Read, hold and pulse energy of the probe equal those of physics on each device of the pairs."""
    from mstpn.devices import physics

    torch.manual_seed(5)
    cfg = MSTPNConfig(c2c_noise=False, read_noise=False, clip_range=False, plasticity_init=60.0)
    cell = MSTPNCell(20, 8, config=cfg).double()
    x_seq = torch.rand(3, B, 20, dtype=torch.float64)
    _, state = run_cell(cell, x_seq[:2])
    cell.enable_energy_probe()
    probe, seen = cell._energy, {}

    def keep_pulses(x, state, f_new, pulses):
        seen["pulses"] = pulses
        return probe(x, state, f_new, pulses)

    monkeypatch.setattr(cell, "_energy", keep_pulses)
    _, new = cell(x_seq[2], state)
    rec = cell.energy_log[-1]
    devices, c = cell.devices(), cell.step_constants(torch.float64)
    z = torch.cat([x_seq[2], state.h], -1)
    z = z / z.norm(dim=-1, keepdim=True)
    read = hold = pulse_j = 0.0
    written = 0
    for sign in (1.0, -1.0):
        device = physics.DeviceState(cell.g_min + cell.g_unit * torch.relu(sign * c.weight),
                                     cell.g_unit * torch.relu(sign * state.f))
        read += float(physics.read(device, (cfg.v_read * z).unsqueeze(-2), cfg.t_read, devices)[1].sum())
        hold += float(physics.hold(device, cell.bias_voltage(), cfg.dt_step, devices)[1].sum())
        # pulses: n on the written device of each pair, starting from lambda F (after the decay)
        n = torch.relu(sign * seen["pulses"])
        decayed = c.decay * state.f
        device = physics.DeviceState(device.g_lt, cell.g_unit * torch.relu(sign * decayed))
        after, energy = physics.apply_pulse(device, cfg.pulse_v, cfg.pulse_width, devices, count=n)
        mask = n > 0
        pulse_j += float(energy[mask].sum())
        written += int(mask.sum())
        # and what physics adds to that device is what the cell wrote (in weight units)
        added = (after.g_st - device.g_st) / cell.g_unit
        torch.testing.assert_close((sign * (new.f - decayed))[mask], added[mask], rtol=1e-9, atol=1e-15)
    assert rec["read_j"] == pytest.approx(read, rel=1e-9)
    assert rec["hold_j"] == pytest.approx(hold, rel=1e-9)
    assert written > 0 and rec["writes"] == written
    assert rec["pulse_j"] == pytest.approx(pulse_j, rel=1e-9)


def test_cells_get_independent_devices_and_noise_unless_seeded():
    torch.manual_seed(6)
    a, b = MSTPNCell(N_IN, H), MSTPNCell(N_IN, H)
    assert not torch.equal(a.tau0, b.tau0)
    assert not torch.equal(a.noise.normal((50,)), b.noise.normal((50,)))
    c, d = MSTPNCell(N_IN, H, seed=11), MSTPNCell(N_IN, H, seed=11)
    assert torch.equal(c.tau0, d.tau0) and c.seed == 11
    assert torch.equal(c.noise.normal((50,)), d.noise.normal((50,)))


def test_noise_state_travels_with_the_state_dict():
    torch.manual_seed(7)
    cell = MSTPNCell(N_IN, H)
    x_seq = inputs(dtype=torch.float32)
    _, state = run_cell(cell, x_seq[:2])
    saved = {k: (v.clone() if torch.is_tensor(v) else v) for k, v in cell.state_dict().items()}
    assert "_extra_state" in saved
    expected, _ = run_cell(cell, x_seq[2:], state)
    other = MSTPNCell(N_IN, H, seed=99)
    other.load_state_dict(saved)
    got, _ = run_cell(other, x_seq[2:], state)
    assert torch.equal(got, expected)


def test_a_state_dict_without_noise_state_still_loads():
    cell = MSTPNCell(N_IN, H, seed=3)
    legacy = {k: v for k, v in cell.state_dict().items() if k != "_extra_state"}
    other = MSTPNCell(N_IN, H, seed=4)
    other.load_state_dict(legacy)  # strict: the missing noise state is not an error
    assert other.noise.seed == MSTPNCell.LEGACY_NOISE_SEED
