"""Several devices: `mstpn device fit --population` recovers the device-to-device spread."""

from __future__ import annotations

import dataclasses
import json
import math

import numpy as np
import pytest

from mstpn.cli import main
from mstpn.devices import load_params
from mstpn.devices.fit import fit_traces
from mstpn.devices.params import srtio3_weilenmann2024
from mstpn.devices.population import SPREAD, fit_population, population_from_fits
from mstpn.devices.protocols import simulate_protocol, simulated_device_params
from mstpn.devices.trace import write_trace_csv

TRUE_SIGMA = 0.2
POPULATION = srtio3_weilenmann2024().replace(d2d_sigma=TRUE_SIGMA)
SEEDS = range(100, 108)  # 8 devices, each its own d2d draw


@pytest.fixture(scope="module")
def eight_devices():
    return [[simulate_protocol("characterise", POPULATION, seed=s)] for s in SEEDS]


def test_population_recovers_d2d_sigma_from_eight_devices(eight_devices):
    result = fit_population(eight_devices)
    assert result.params.d2d_sigma == pytest.approx(TRUE_SIGMA, rel=0.3)
    assert len(result.devices) == 8 and len(result.log_sigma) >= 3
    drawn = [simulated_device_params(POPULATION, seed=s) for s in SEEDS]
    for name in result.log_sigma:  # the population values sit at the devices' median
        median = float(np.exp(np.median(np.log([getattr(d, name) for d in drawn]))))
        assert getattr(result.params, name) == pytest.approx(median, rel=0.15), name
    # g_min is loose in the characterise protocol: flagged, not mixed into d2d_sigma
    assert "g_min" not in result.log_sigma and any(n.startswith("g_min") for n in result.notes)


def test_identical_devices_give_a_small_spread():
    same = srtio3_weilenmann2024().replace(d2d_sigma=0.0)
    fits = [fit_traces([simulate_protocol("characterise", same, seed=s)]) for s in range(3)]
    result = population_from_fits(fits)
    assert result.params.d2d_sigma < 0.1  # what is left is the fits' own error (~6 % here)
    assert set(result.log_sigma) <= set(SPREAD)


def _with_c2c(fit, c2c_sigma, identified):
    fixed = [n for n in fit.fixed if n != "c2c_sigma"] + ([] if identified else ["c2c_sigma"])
    return dataclasses.replace(fit, params=fit.params.replace(c2c_sigma=c2c_sigma), fixed=fixed)


def test_population_pools_the_c2c_sigma_of_the_devices_that_identified_it(eight_devices):
    fit = fit_traces(eight_devices[0])
    fits = [_with_c2c(fit, 0.02, True), _with_c2c(fit, 0.01, False), _with_c2c(fit, 0.04, True)]
    result = population_from_fits(fits)
    assert result.params.c2c_sigma == pytest.approx(math.sqrt((0.02**2 + 0.04**2) / 2))
    assert any("c2c_sigma: pooled over the 2 of 3 devices" in n for n in result.notes)
    none = population_from_fits([_with_c2c(fit, 0.01, False)] * 3)
    assert none.params.c2c_sigma == 0.01
    assert any("no device's traces identified it" in n for n in none.notes)


def test_cli_population_writes_one_parameter_file(tmp_path, capsys, eight_devices):
    paths = []
    for i, (trace,) in enumerate(eight_devices[:4]):
        paths.append(tmp_path / f"dev{i}.csv")
        write_trace_csv(trace, paths[-1])
    out = tmp_path / "population.json"
    assert main(["device", "fit", *map(str, paths), "--population", "--out", str(out)]) == 0
    assert "d2d_sigma" in capsys.readouterr().out
    data = json.loads(out.read_text())
    assert len(data["_device_fits"]) == 4 and data["_population"]["devices"] == 4
    assert load_params(out).d2d_sigma == pytest.approx(data["d2d_sigma"])  # usable as --params


@pytest.mark.parametrize("extra", [[], ["--plot", "fit.png"]])
def test_cli_population_bad_input_exit_2_nothing_written(tmp_path, capsys, eight_devices, extra):
    paths = []
    count = 2 if not extra else 3
    for i, (trace,) in enumerate(eight_devices[:count]):
        paths.append(tmp_path / f"dev{i}.csv")
        write_trace_csv(trace, paths[-1])
    out = tmp_path / "population.json"
    extra = [str(tmp_path / e) if e.endswith(".png") else e for e in extra]
    assert main(["device", "fit", *map(str, paths), "--population", "--out", str(out), *extra]) == 2
    assert not out.exists()
    assert capsys.readouterr().err.count("\n") == 1
