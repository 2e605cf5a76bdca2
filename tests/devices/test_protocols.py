"""Every protocol produces a valid trace that follows the trace convention, and means what it says."""

from __future__ import annotations

import math

import numpy as np
import pytest

from mstpn.devices import srtio3_weilenmann2024
from mstpn.devices.protocols import (
    PROTOCOLS,
    PULSE_THRESHOLD_V,
    Recorder,
    characterise_amplitudes,
    run_protocol,
    simulate_protocol,
    simulated_device_params,
)
from mstpn.devices.trace import BiasPhase, Pulse, read_trace_csv, segment, write_trace_csv
from mstpn.errors import UserError

P = srtio3_weilenmann2024()


@pytest.fixture(scope="module")
def runs():
    return {name: run_protocol(name, P, seed=0) for name in PROTOCOLS}


@pytest.mark.parametrize("name", list(PROTOCOLS))
def test_trace_is_valid(runs, name):
    run = runs[name]
    tr = run.trace
    assert 20 <= len(tr) <= 5000
    assert np.all(np.isfinite(tr.time_s)) and np.all(np.isfinite(tr.current_a))
    assert np.all(np.diff(tr.time_s) > 0)
    pulse = np.abs(tr.voltage_v) >= PULSE_THRESHOLD_V
    assert pulse.any() and not pulse[0]
    # pulses are runs of exactly two samples (start, end), separated by reads
    starts = np.flatnonzero(pulse[1:] & ~pulse[:-1]) + 1
    assert all(pulse[s + 1] and not pulse[s + 2] for s in starts)
    assert pulse.sum() == 2 * len(starts)
    # reads are at a nonzero bias; G = I / V lies in the device's range
    reads = ~pulse
    assert np.all(np.abs(tr.voltage_v[reads]) >= 1e-3)
    g = tr.current_a / tr.voltage_v
    dev = run.device_params
    assert np.all(g > 0.9 * dev.g_min) and np.all(g < 1.1 * dev.g_max)
    events = segment(tr)
    assert sum(isinstance(e, Pulse) for e in events) == len(starts)
    assert isinstance(events[0], BiasPhase)


def test_reader_recovers_pulse_widths_and_amplitudes(runs):
    run = runs["characterise"]
    pulses = [e for e in segment(run.trace) if isinstance(e, Pulse)]
    recorded = [ev for ev in run.events if ev["kind"] == "pulse"]
    assert len(pulses) == len(recorded)
    for found, ev in zip(pulses, recorded, strict=True):
        assert found.width == pytest.approx(ev["t_p"], rel=1e-9)
        assert found.amplitude == pytest.approx(ev["v"], rel=1e-12)


def test_characterise_covers_what_a_fit_needs(runs):
    run = runs["characterise"]
    pulses = [e for e in segment(run.trace) if isinstance(e, Pulse)]
    amps = {round(abs(p.amplitude), 3) for p in pulses}
    assert sum(a < P.v_th for a in amps) >= 2 and sum(a > P.v_th for a in amps) >= 3
    assert len({round(p.width, 6) for p in pulses}) >= 3
    assert {np.sign(p.amplitude) for p in pulses} == {-1.0, 1.0}
    levels = {round(e.level, 3) for e in segment(run.trace) if isinstance(e, BiasPhase)}
    assert len(levels) >= 5 and 0.0 not in levels
    assert len(characterise_amplitudes(P)) == 5
    # conductance stays inside the range and spans a good part of it
    g = run.trace.current_a / run.trace.voltage_v
    assert g.min() > P.g_min and g.max() < P.g_max
    assert g.max() - g.min() > 0.4 * (P.g_max - P.g_min)


def test_sampling_is_dense_after_pulses_and_sparse_later(runs):
    ev = runs["stm"].events[0]
    t = runs["stm"].trace.time_s[ev["start"]:ev["stop"]] - ev["t_pulse_end"]
    gaps = np.diff(t)
    assert gaps[-1] > 100 * gaps[0]
    assert np.allclose(np.diff(np.log(t)), np.log(t[1] / t[0]))  # log-spaced


def test_noise_free_stm_decays_with_the_model_time_constant():
    run = run_protocol("stm", P, noise=False)
    ev = run.events[0]
    tr = run.trace
    g0 = (tr.current_a / tr.voltage_v)[ev["baseline"][0]:ev["baseline"][1]].mean()
    sl = slice(ev["start"], ev["stop"])
    t, dg = tr.time_s[sl] - ev["t_pulse_end"], tr.current_a[sl] / tr.voltage_v[sl] - g0
    assert np.allclose(dg, dg[0] * np.exp(-(t - t[0]) / P.tau(ev["v_b"])), rtol=1e-7, atol=1e-20)
    assert ev["v"] < P.v_th  # a short-term pulse: nothing consolidates
    assert abs(dg[-1]) < 1e-3 * dg[0]


def test_noise_free_ppf_facilitates_more_at_short_intervals():
    run = run_protocol("ppf", P, noise=False)
    g = run.trace.current_a / run.trace.voltage_v
    index = []
    for ev in run.events:
        base = g[ev["baseline"][0]:ev["baseline"][1]].mean()
        index.append((g[ev["after_second"]] - base) / (g[ev["after_first"]] - base))
    assert np.all(np.diff(index) < 0)
    assert index[0] > 1.8 and index[-1] == pytest.approx(1.0, abs=0.02)


def test_seeds_reproduce_and_noise_switches_off():
    a = simulate_protocol("ppf", P, seed=3)
    b = simulate_protocol("ppf", P, seed=3)
    c = simulate_protocol("ppf", P, seed=4)
    assert np.array_equal(a.current_a, b.current_a) and np.array_equal(a.time_s, b.time_s)
    assert not np.array_equal(a.current_a, c.current_a)
    clean1 = simulate_protocol("ppf", P, seed=3, noise=False)
    clean2 = simulate_protocol("ppf", P, seed=4, noise=False)
    assert np.array_equal(clean1.current_a, clean2.current_a)


def test_current_noise_matches_its_sigma():
    clean = simulate_protocol("ltp_ltd", P, noise=False)
    noisy = simulate_protocol("ltp_ltd", P, noise=False, current_noise=0.05, seed=1)
    rel = noisy.current_a / clean.current_a - 1.0
    assert abs(rel.mean()) < 0.01
    assert rel.std() == pytest.approx(0.05, rel=0.1)
    with pytest.raises(UserError, match="current noise"):
        simulate_protocol("stm", P, current_noise=-0.1)


def test_device_params_are_the_drawn_device():
    run = run_protocol("stm", P, seed=9)
    assert run.device_params == simulated_device_params(P, seed=9)
    assert run.device_params.tau0 != P.tau0 and run.device_params.v_tau == P.v_tau
    assert simulated_device_params(P, seed=9, noise=False) == P


def test_unknown_protocol_is_a_user_error():
    with pytest.raises(UserError, match=r"unknown protocol 'nope'.*characterise"):
        simulate_protocol("nope", P)


def test_protocols_adapt_to_other_parameters():
    other = P.replace(tau0=20.0, v_tau=0.2, v_th=0.9, a_lt=2e-9, g_max=60e-9)
    run = run_protocol("characterise", other, seed=2)
    g = run.trace.current_a / run.trace.voltage_v
    assert g.max() < 1.05 * run.device_params.g_max
    pulses = [e for e in segment(run.trace) if isinstance(e, Pulse)]
    assert any(abs(p.amplitude) < other.v_th for p in pulses)
    assert any(abs(p.amplitude) > other.v_th for p in pulses)


def test_recorder_refuses_invalid_sequences():
    rec = Recorder(P, noise=False)
    with pytest.raises(ValueError, match="read"):
        rec.pulse(1.0, 1e-3)
    rec.read(0.1, 1e-3)
    with pytest.raises(ValueError, match="read level"):
        rec.read(0.0, 2e-3)
    with pytest.raises(ValueError, match="read level"):
        rec.read(0.6, 2e-3)
    rec.pulse(1.0, 1e-3)
    with pytest.raises(ValueError, match="two pulses"):
        rec.pulse(1.0, 1e-3)
    with pytest.raises(ValueError, match="not after"):
        rec.read(0.1, 1e-3)


def test_write_trace_csv_round_trips_atomically(runs, tmp_path):
    tr = runs["characterise"].trace
    path = write_trace_csv(tr, tmp_path / "sub" / "trace.csv")
    assert path.read_text().splitlines()[0] == "time_s,voltage_v,current_a"
    back = read_trace_csv(path)
    assert np.array_equal(back.time_s, tr.time_s)
    assert np.allclose(back.current_a, tr.current_a, rtol=1e-9, atol=0)
    assert np.array_equal(back.voltage_v, tr.voltage_v)
    assert [p.name for p in path.parent.iterdir()] == ["trace.csv"]  # no temporary file left
    widths = [e.width for e in segment(back) if isinstance(e, Pulse)]
    assert min(widths) == pytest.approx(1e-4, rel=1e-9)
    assert math.isclose(max(widths), 1e-2, rel_tol=1e-9)
