"""The fit over the parameter space and noise from the data.

CI SUBSET: the round trips here are a fast subset (CI_SETS x the three round-trip protocols) of the
whole family that ``results/fit/roundtrip.py`` runs (24 parameter sets drawn across the documented
user ranges x 3 protocols, plus ``characterise`` references) and reports in the README.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from mstpn.cli import main
from mstpn.devices import SrTiO3Params
from mstpn.devices.fit import fit_traces
from mstpn.devices.protocols import run_protocol
from mstpn.devices.roundtrip import ROUND_TRIP_PROTOCOLS, TOLERANCES, USER_RANGES, draw_params, round_trip
from mstpn.devices.trace import Trace, write_trace_csv

CI_SETS = (0, 3, 4)
"""Parameter sets (draw_params seeds) of the CI subset."""


# ------------------------------------------------------------------------------ parameter space
def test_drawn_parameter_sets_span_the_documented_ranges():
    sets = [draw_params(s) for s in range(24)]
    g = np.array([[p.g_min, p.g_max] for p in sets])
    assert g.min() >= USER_RANGES["g_min"][0] and g.max() <= 1e-5
    assert g[:, 0].min() < 1e-9 and g[:, 1].max() > 1e-6  # sub-nS to uS
    tau0 = np.array([p.tau0 for p in sets])
    assert tau0.min() < 1e-2 and tau0.max() > 10.0
    for name in ("v_tau", "v0", "beta", "v_th", "read_sigma", "c2c_sigma"):
        lo, hi, _ = USER_RANGES[name]
        values = [getattr(p, name) for p in sets]
        assert lo <= min(values) and max(values) <= hi
        assert max(values) - min(values) > 0.5 * (hi - lo), name
    assert draw_params(5) == draw_params(5)


KNOWN_SHORT = {"width_sweep": "the long-term increments of unseen pulses are off by up to 104 % "
                              "(results/fit/roundtrip.md: 12 of 24 round trips within all targets)"}
"""Protocols on which the fitter does not yet meet the targets (issue 14 is open on them); the test
is a strict xfail there, so it turns red the day they pass and the mark must go."""


@pytest.mark.slow
@pytest.mark.parametrize("protocol", [
    pytest.param(p, marks=pytest.mark.xfail(reason=KNOWN_SHORT[p], strict=True)) if p in KNOWN_SHORT else p
    for p in ROUND_TRIP_PROTOCOLS])
def test_round_trips_over_the_parameter_space_ci_subset(protocol):
    """CI subset: each protocol on CI_SETS parameter sets, fitted from the preset: tau0 and v_tau
    within 10 %, increments of pulses not in the trace within 15 %, and the 95 % intervals cover the
    simulated device's values in most cases."""
    covered = []
    for s in CI_SETS:
        row = round_trip(draw_params(s), protocol, seed=s)
        assert "error" not in row, row.get("error")
        for key, tol in TOLERANCES.items():
            assert row[key] <= tol, (s, key, row[key])
        covered += list(row["covered"].values())
    assert np.mean(covered) >= 0.8, covered


def test_fit_does_not_depend_on_the_base_pulse_constants():
    """The pulse constants start from the data, so a base far from the device gives the same fit."""
    params = draw_params(3)
    trace = run_protocol("pulse_trains", params, seed=1).trace
    a = fit_traces([trace]).params
    wild = SrTiO3Params(a_st=1e-6, a_lt=1e-12, v0=3.0, beta=2.0, v_th=0.1, tau0=1e3, v_tau=1.0)
    b = fit_traces([trace], base=wild).params
    for name in ("a_st", "v0", "beta", "a_lt", "v_th", "tau0", "v_tau", "g_max"):
        assert getattr(b, name) == pytest.approx(getattr(a, name), rel=1e-3), name


def test_fit_is_deterministic():
    trace = run_protocol("random_pulses", draw_params(4), seed=2).trace
    a, b = fit_traces([trace]), fit_traces([trace])
    assert a.to_json_dict() == b.to_json_dict()


# ------------------------------------------------------------------------------ noise from the data
QUIET = SrTiO3Params(read_sigma=0.003)


@pytest.mark.parametrize("c2c", [0.02, 0.08])
def test_c2c_from_repeated_identical_pulses(c2c):
    params = QUIET.replace(c2c_sigma=c2c)
    result = fit_traces([run_protocol("pulse_trains", params, seed=5).trace])
    est = result.noise["c2c_sigma"]
    assert est.identified and "c2c_sigma" in result.fitted and "c2c_sigma" not in result.fixed
    assert result.params.c2c_sigma == pytest.approx(c2c, rel=0.35)
    lo, hi = result.intervals["c2c_sigma"]
    assert lo <= c2c <= hi
    assert est.groups >= 8 and est.source == "repeated identical pulses"


def test_c2c_without_repeated_pulses_keeps_the_base_value_and_says_so():
    base = SrTiO3Params(c2c_sigma=0.042)
    result = fit_traces([run_protocol("random_pulses", QUIET.replace(c2c_sigma=0.01), seed=1).trace],
                        base=base)
    assert not result.noise["c2c_sigma"].identified
    assert result.params.c2c_sigma == 0.042 and "c2c_sigma" in result.fixed
    assert "c2c_sigma" not in result.intervals
    assert any(n.startswith("c2c_sigma kept at the base value") for n in result.notes)
    data = result.to_json_dict()
    assert data["_noise"]["c2c_sigma"]["identified"] is False


@pytest.mark.parametrize("read_sigma", [0.004, 0.02])
def test_read_sigma_from_repeated_reads_at_constant_state(read_sigma):
    params = SrTiO3Params(read_sigma=read_sigma)
    result = fit_traces([run_protocol("width_sweep", params, seed=3).trace])
    est = result.noise["read_sigma"]
    assert est.identified and est.source == "repeated reads at constant state" and est.count >= 100
    assert result.params.read_sigma == pytest.approx(read_sigma, rel=0.12)
    lo, hi = result.intervals["read_sigma"]
    assert lo < result.params.read_sigma < hi


# ------------------------------------------------------------------------------ noise floor
def _drifting(trace: Trace, amount: float = 0.06) -> Trace:
    """The trace of a device the model cannot describe: a slow extra drift of the conductance."""
    t = trace.time_s
    drift = 1.0 + amount * np.sin(2 * np.pi * (t - t[0]) / (0.37 * (t[-1] - t[0])))
    return Trace(t, trace.voltage_v, trace.current_a * drift, source="drifting")


def test_noise_floor_is_reached_on_a_model_trace_and_warned_about_otherwise(tmp_path, capsys):
    # random pulses repeat no pulse exactly, so c2c_sigma cannot soak up the misfit
    trace = run_protocol("random_pulses", SrTiO3Params(), seed=0).trace
    good = fit_traces([trace])
    assert good.noise_floor.reached and not any(n.startswith("warning: the fit did not") for n in good.notes)
    assert good.noise_floor.residual_rel_rms == good.residual_rel_rms
    bad = fit_traces([_drifting(trace)])
    assert not bad.noise_floor.reached
    assert bad.residual_rel_rms > bad.noise_floor.limit_rel_rms
    csv = tmp_path / "drift.csv"
    write_trace_csv(_drifting(trace), csv)
    out = tmp_path / "p.json"
    assert main(["device", "fit", str(csv), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "noise floor NOT reached" in printed
    assert "warning: the fit did not reach the noise floor" in printed
    data = json.loads(out.read_text())
    assert data["_noise_floor"]["reached"] is False and data["_noise_floor"]["warnings"]
    assert data["_noise"]["read_sigma"]["source"] == "repeated reads at constant state"
