"""Properties of the compact model: range, decay law, soft bounds, energies, noise, seeds, params."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mstpn.devices import DeviceArray, ParamsError, SrTiO3Params, load_params, physics, srtio3_weilenmann2024
from mstpn.devices.params import PARAM_NAMES
from mstpn.devices.physics import DeviceTensors

P = srtio3_weilenmann2024()
IDEAL = P.ideal()

op = st.one_of(
    st.tuples(st.just("pulse"), st.floats(-3.0, 3.0), st.floats(1e-6, 1.0), st.integers(1, 5)),
    st.tuples(st.just("hold"), st.floats(-0.6, 0.6), st.floats(0.0, 1e3), st.just(1)),
)
param_sets = st.builds(
    SrTiO3Params,
    a_st=st.floats(0.0, 1e-7), a_lt=st.floats(0.0, 1e-7), v0=st.floats(0.1, 1.0),
    beta=st.floats(0.1, 1.5), v_th=st.floats(0.0, 2.5), tau0=st.floats(1e-3, 1e3),
    c2c_sigma=st.floats(0.0, 1.0), read_sigma=st.floats(0.0, 0.2), d2d_sigma=st.floats(0.0, 0.5),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(params=param_sets, ops=st.lists(op, min_size=1, max_size=25), seed=st.integers(0, 1000),
       g_frac=st.floats(0.0, 1.0))
def test_conductance_stays_in_range(params, ops, seed, g_frac):
    dev = DeviceArray(params, (6,), seed=seed, noise=True)
    d = dev.devices
    dev.state = physics.initial_state(d, d.g_min + g_frac * d.span)
    tol = 1e-9 * d.g_max
    for kind, a, b, count in ops:
        energy = dev.pulse(a, b, count=count) if kind == "pulse" else dev.hold(a, b)
        g = dev.conductance
        assert torch.all(g >= d.g_min - tol) and torch.all(g <= d.g_max + tol)
        assert torch.all(dev.state.g_lt >= d.g_min - tol) and torch.all(dev.state.g_lt <= d.g_max + tol)
        assert torch.all(torch.isfinite(energy)) and torch.all(energy >= 0)


@settings(max_examples=40, deadline=None)
@given(v_b=st.floats(-0.6, 0.6), dt=st.floats(1e-4, 50.0), split=st.floats(0.05, 0.95))
def test_decay_follows_exponential_with_bias_time_constant(v_b, dt, split):
    dev = DeviceArray(IDEAL, (), noise=False, variability=False, g_init=20e-9)
    dev.pulse(1.0, 1e-2)
    g_st0 = float(dev.state.g_st)
    assert g_st0 > 0
    tau = IDEAL.tau0 * math.exp(v_b / IDEAL.v_tau)
    dev.hold(v_b, split * dt)
    dev.hold(v_b, (1 - split) * dt)  # two holds compose into one
    assert float(dev.state.g_st) == pytest.approx(g_st0 * math.exp(-dt / tau), rel=1e-9, abs=1e-25)
    assert float(dev.time_constant(v_b)) == pytest.approx(tau, rel=1e-12)
    assert float(dev.state.g_lt) == pytest.approx(20e-9, rel=1e-12)  # holds never touch g_lt


def test_time_constant_spans_the_documented_range():
    assert P.tau(-0.6) == pytest.approx(0.01, rel=0.01)
    assert P.tau(0.6) == pytest.approx(100.0, rel=0.01)


@pytest.mark.parametrize("sign", [1.0, -1.0])
def test_soft_bounds_shrink_increments_towards_the_bound(sign):
    dev = DeviceArray(IDEAL, (), noise=False, variability=False,
                      g_init=IDEAL.g_min if sign > 0 else IDEAL.g_max)
    steps = []
    for _ in range(40):
        before = float(dev.state.g_lt)
        dev.pulse(sign * 1.8, 1e-3)
        dev.hold(-0.6, 10.0)  # let the volatile part go
        steps.append(float(dev.state.g_lt) - before)
    steps = np.array(steps) * sign
    assert np.all(steps > 0)
    assert np.all(np.diff(steps) < 0)  # strictly shrinking
    assert steps[-1] < 0.2 * steps[0]
    # and each step is the drive times the room left: dg / B is constant
    g = IDEAL.g_min if sign > 0 else IDEAL.g_max
    ratios = []
    for step in steps[:10] * sign:
        room = (IDEAL.g_max - g) if sign > 0 else (g - IDEAL.g_min)
        ratios.append(abs(step) / (room / (IDEAL.g_max - IDEAL.g_min)))
        g += step
    assert np.allclose(ratios, ratios[0], rtol=1e-6)


def test_pulse_increments_match_the_equations():
    g = 30e-9
    dev = DeviceArray(IDEAL, (), noise=False, variability=False, g_init=g)
    v, t_p = 1.6, 2e-3
    dev.pulse(v, t_p)
    p = IDEAL
    bound = (p.g_max - g) / (p.g_max - p.g_min)
    w = (t_p / p.t0) ** p.beta
    assert float(dev.state.g_st) == pytest.approx(p.a_st * math.expm1(v / p.v0) * w * bound, rel=1e-9)
    assert float(dev.state.g_lt) - g == pytest.approx(p.a_lt * (v - p.v_th) / p.v0 * w * bound, rel=1e-9)


def test_small_pulses_are_volatile_only():
    dev = DeviceArray(IDEAL, (), noise=False, variability=False, g_init=30e-9)
    dev.pulse(0.9 * IDEAL.v_th, 1e-2)
    assert float(dev.state.g_lt) == pytest.approx(30e-9, rel=1e-12)
    assert float(dev.state.g_st) > 0
    dev.pulse(-0.9 * IDEAL.v_th, 1e-2)
    assert float(dev.state.g_lt) == pytest.approx(30e-9, rel=1e-12)


def test_energies_equal_hand_calculations():
    p = IDEAL
    g0 = 40e-9
    dev = DeviceArray(p, (), noise=False, variability=False, g_init=g0)
    v, t_p = 1.5, 1e-3
    e_pulse = float(dev.pulse(v, t_p))
    g1 = float(dev.conductance)
    assert e_pulse == pytest.approx(v * v * 0.5 * (g0 + g1) * t_p, rel=1e-9)

    g_lt, g_st = float(dev.state.g_lt), float(dev.state.g_st)
    v_b, dt = 0.3, 0.7
    tau = p.tau0 * math.exp(v_b / p.v_tau)
    e_hold = float(dev.hold(v_b, dt))
    integral = g_lt * dt + g_st * tau * (1 - math.exp(-dt / tau))
    leak = p.p_leak_ref * (v_b / p.v_leak_ref) ** 2 * dt
    assert e_hold == pytest.approx(v_b**2 * integral + leak, rel=1e-9)

    _, e_read = dev.read(0.1, 2e-6)
    assert float(e_read) == pytest.approx(0.1**2 * float(dev.conductance) * 2e-6, rel=1e-9)
    # the published idle power: 4.3 nW at G = 0 under 0.6 V
    assert float(physics.leak_power(0.6, p)) == pytest.approx(4.3e-9, rel=1e-12)


def test_cycle_to_cycle_noise_matches_its_sigma():
    p = P.replace(d2d_sigma=0.0, c2c_sigma=0.08)
    clean = DeviceArray(p, (40_000,), noise=False, g_init=30e-9)
    noisy = DeviceArray(p, (40_000,), seed=3, noise=True, g_init=30e-9)
    clean.pulse(1.6, 1e-3)
    noisy.pulse(1.6, 1e-3)
    for part in ("g_lt", "g_st"):
        d_clean = getattr(clean.state, part) - (30e-9 if part == "g_lt" else 0.0)
        d_noisy = getattr(noisy.state, part) - (30e-9 if part == "g_lt" else 0.0)
        rel = (d_noisy / d_clean - 1.0).numpy()
        assert abs(rel.mean()) < 0.003
        assert rel.std() == pytest.approx(0.08, rel=0.03)
    # independent pulses add up: sigma of `count` pulses at once shrinks as 1/sqrt(count)
    many = DeviceArray(p, (40_000,), seed=4, noise=True, g_init=30e-9)
    many.pulse(1.0, 1e-3, count=4)
    ref = DeviceArray(p, (1,), noise=False, g_init=30e-9)
    ref.pulse(1.0, 1e-3, count=4)
    rel = (many.state.g_st / ref.state.g_st - 1.0).numpy()
    assert rel.std() == pytest.approx(0.08 / 2, rel=0.04)


def test_read_noise_matches_its_sigma():
    p = P.replace(d2d_sigma=0.0, read_sigma=0.02)
    dev = DeviceArray(p, (50_000,), seed=5, g_init=25e-9)
    current, _ = dev.read(0.2)
    rel = (current / (dev.conductance * 0.2) - 1.0).numpy()
    assert abs(rel.mean()) < 0.001
    assert rel.std() == pytest.approx(0.02, rel=0.03)


def test_device_to_device_spread_is_log_normal_with_its_sigma():
    p = P.replace(d2d_sigma=0.15)
    d = DeviceTensors.sample(p, (50_000,), seed=11, dtype=torch.float64)
    for name in ("a_st", "a_lt", "tau0", "g_min"):
        logs = torch.log(getattr(d, name) / getattr(p, name)).numpy()
        assert abs(logs.mean()) < 0.004, name
        assert logs.std() == pytest.approx(0.15, rel=0.03), name
    assert torch.all(d.g_max > d.g_min)
    nominal = DeviceTensors.sample(p, (10,), seed=11, variability=False)
    assert torch.all(nominal.tau0 == torch.tensor(p.tau0, dtype=nominal.tau0.dtype))


def test_seeds_reproduce_and_differ():
    def run(seed):
        dev = DeviceArray(P, (50,), seed=seed)
        dev.pulse(1.5, 1e-3)
        dev.hold(0.2, 0.5)
        current, _ = dev.read(0.1)
        return current

    assert torch.equal(run(7), run(7))
    assert not torch.equal(run(7), run(8))


@pytest.mark.parametrize(("changes", "field"), [
    ({"g_min": 2e-7}, "g_min"),
    ({"g_max": -1.0}, "g_max"),
    ({"tau0": 0.0}, "tau0"),
    ({"v_tau": -0.1}, "v_tau"),
    ({"t0": float("nan")}, "t0"),
    ({"a_st": -1e-9}, "a_st"),
    ({"c2c_sigma": 1.5}, "c2c_sigma"),
    ({"d2d_sigma": -0.1}, "d2d_sigma"),
    ({"read_sigma": float("inf")}, "read_sigma"),
    ({"beta": "0.5"}, "beta"),
    ({"v_th": True}, "v_th"),
])
def test_params_validation_names_the_field(changes, field):
    with pytest.raises(ParamsError, match=rf"^{field}:"):
        SrTiO3Params(**changes)


def test_params_json_round_trip_and_errors(tmp_path):
    path = tmp_path / "p.json"
    path.write_text(json.dumps({**P.to_dict(), "residual_rel_rms": 0.01}))
    assert load_params(path) == P
    assert set(P.to_dict()) == set(PARAM_NAMES)
    path.write_text('{"tau0": 1.0, "tau_zero": 2.0}')
    with pytest.raises(ParamsError, match="tau_zero"):
        load_params(path)
    path.write_text('{"tau0": ')
    with pytest.raises(ParamsError, match="not valid JSON"):
        load_params(path)
    with pytest.raises(ParamsError, match="cannot read"):
        load_params(tmp_path / "missing.json")


@pytest.mark.parametrize("shape", [(), (3,)])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_operations_keep_the_array_dtype(shape, dtype):
    dev = DeviceArray(P, shape, dtype=dtype, g_init=30e-9)
    energies = [dev.pulse(1.5, 1e-3), dev.hold(0.2, 0.3), dev.read(0.1)[1]]
    current, _ = dev.read(0.1)
    assert dev.state.g_lt.dtype == dev.state.g_st.dtype == current.dtype == dtype
    assert all(e.dtype == dtype for e in energies)
