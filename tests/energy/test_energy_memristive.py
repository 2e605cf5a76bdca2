"""Memristive energy per step and per game: hand calculations, game layouts, monotonicity, errors."""

from __future__ import annotations

import math

import pytest
import torch
from energy_helpers import record, run_probe

from mstpn.devices import physics
from mstpn.energy.memristive import (
    CellInfo,
    SystemCosts,
    boundary_total,
    game_energies,
    game_slices,
    step_energy,
    system_step_energy,
)
from mstpn.energy.validate import EnergyConfigError
from mstpn.errors import UserError

INFO = CellInfo(input_size=4, hidden_size=2, dt_step=0.1, v_read=0.2, pulse_v=0.8)
ROUND = SystemCosts(adc_enob=2, adc_fom_walden_j=1e-12, dac_bits=1, dac_fom_j=1e-12,
                    line_c_per_cell_f=1e-15, driver_efficiency=0.5, mac_j=1e-12, sram_j_per_byte=2e-12,
                    param_bytes=1, df_macs_per_synapse=2, norm_macs_per_input=2, tanh_macs=10)


def test_step_energy_divides_by_batch_and_splits_hold():
    parts = step_energy(record(read=4e-12, hold=8e-9, leak=2e-9, pulse=6e-12, writes=8, pulses=12,
                               batch=2), INFO)
    assert parts["read"] == pytest.approx(2e-12)
    assert parts["hold_ohmic"] == pytest.approx(3e-9)
    assert parts["hold_leak"] == pytest.approx(1e-9)
    assert parts["pulses"] == pytest.approx(3e-12)
    assert parts["n_writes"] == 4 and parts["n_pulses"] == 6
    assert "drivers" not in parts  # no system costs asked for


def test_step_duration_rescales_only_the_hold():
    base = step_energy(record(), INFO)
    longer = step_energy(record(), INFO, step_duration_s=0.3)  # 3x the probe's dt_step
    assert longer["hold_ohmic"] == pytest.approx(3 * base["hold_ohmic"])
    assert longer["hold_leak"] == pytest.approx(3 * base["hold_leak"])
    assert longer["read"] == base["read"] and longer["pulses"] == base["pulses"]


def test_system_terms_against_hand_calculation():
    synaptic = {"read": 1.0, "hold_ohmic": 2.0, "hold_leak": 3.0, "pulses": 4.0, "n_pulses": 5.0}
    extra = system_step_energy(synaptic, INFO, ROUND)
    assert ROUND.adc_j == pytest.approx(4e-12) and ROUND.dac_j == pytest.approx(2e-12)
    assert extra["drivers"] == pytest.approx(10.0)  # (1+2+3+4) (1/0.5 - 1)
    # rows: 2 devices x 2 outputs x 1 fF, charged to 0.2 V; each pulse: row + column (6 cells) at 0.8 V
    assert extra["lines"] == pytest.approx(4e-15 * 0.04 + 5 * 10e-15 * 0.64)
    assert extra["dac"] == pytest.approx(6 * 2e-12)
    assert extra["adc"] == pytest.approx(2 * 4e-12)
    assert extra["neuron"] == pytest.approx(1e-12 * (2 * 12 + 2 * 6 + 10 * 2) + 2e-12 * 12)


def test_default_converter_energies_follow_walden():
    costs = SystemCosts()
    assert costs.adc_j == pytest.approx(5e-15 * 256)  # 5 fJ/conv-step at ENOB 8 = 1.28 pJ
    assert costs.dac_j == pytest.approx(1.28e-12)


def test_boundaries_nest_and_bad_boundary_is_refused():
    parts = step_energy(record(), INFO, SystemCosts())
    syn, sys_ = boundary_total(parts, "synaptic"), boundary_total(parts, "system")
    assert syn == pytest.approx(parts["read"] + parts["hold_ohmic"] + parts["hold_leak"] + parts["pulses"])
    assert sys_ > syn
    with pytest.raises(EnergyConfigError, match="boundary: must be one of synaptic, system"):
        boundary_total(parts, "chip")


def test_sequential_and_lockstep_layouts():
    seq = [record(read=float(i)) for i in range(5)]
    games = game_slices(seq, [2, 3])
    assert [[r["read_j"] for r in g] for g in games] == [[0.0, 1.0], [2.0, 3.0, 4.0]]
    lock = [record(batch=3, read=float(i)) for i in range(4)]
    games = game_slices(lock, [4, 2, 3])
    assert [len(g) for g in games] == [4, 2, 3]
    with pytest.raises(EnergyConfigError, match="steps_per_game: 2 games of 7 steps"):
        game_slices(seq, [3, 4])
    with pytest.raises(UserError, match="missing hold_j"):
        game_slices([{"read_j": 1.0}], [1])


def test_game_energies_sum_the_steps():
    recs = [record(read=1e-12 * (i + 1)) for i in range(3)]
    (game,) = game_energies(recs, [3], INFO)
    assert game["read"] == pytest.approx(6e-12)
    assert game["synaptic_total"] == pytest.approx(6e-12 + 3 * (2e-9 + 3e-12))
    assert game["steps"] == 3


def test_more_writes_cost_more_energy():
    few = game_energies([record(pulse=1e-12, pulses=2)], [1], INFO, SystemCosts())[0]
    many = game_energies([record(pulse=5e-12, pulses=10)], [1], INFO, SystemCosts())[0]
    assert many["synaptic_total"] > few["synaptic_total"]
    assert many["system_total"] - few["system_total"] > many["synaptic_total"] - few["synaptic_total"]


def test_probe_hold_and_read_match_the_device_formulas():
    records, cell = run_probe(steps=3, batch=2)
    rec = records[0]  # F = 0 and h = 0 at the first step
    v_b = cell.bias_voltage().detach()
    dt = cell.config.dt_step
    leak = 2 * physics.leak_power(v_b, cell.params).sum() * dt * 2  # 2 devices, batch 2
    assert rec["hold_leak_j"] == pytest.approx(float(leak), rel=1e-5)
    g_pair = 2 * cell.g_min + cell.g_unit * cell.weight.detach().abs()
    assert rec["hold_j"] - rec["hold_leak_j"] == pytest.approx(float((v_b**2 * g_pair).sum()) * dt * 2,
                                                               rel=1e-4)
    assert 0 < rec["read_j"] < rec["hold_j"] and rec["synapses"] == 16 * 4


def test_higher_bias_costs_more_hold_energy():
    low, cell_low = run_probe(steps=2, v_b_min=-0.3, v_b_max=0.3)
    high, _ = run_probe(steps=2, v_b_min=-0.6, v_b_max=0.6)
    info = CellInfo.from_cell(cell_low, program=False)
    e_low = game_energies(low, [2], info)[0]
    e_high = game_energies(high, [2], info)[0]
    assert e_high["hold_leak"] > e_low["hold_leak"] and e_high["hold_ohmic"] > e_low["hold_ohmic"]


def test_cell_info_from_cell_prices_programming():
    _, cell = run_probe(steps=1)
    info = CellInfo.from_cell(cell)
    assert info.synapses == cell.num_synapses and info.dt_step == cell.config.dt_step
    assert info.programming_j > 0 and info.programming_pulses > 0
    with torch.no_grad():
        cell.weight.mul_(2.0)
    assert CellInfo.from_cell(cell).programming_j > info.programming_j


@pytest.mark.parametrize(("field", "value", "message"), [
    ("driver_efficiency", 0.0, r"SystemCosts.driver_efficiency: must be in \[0.001, 1\]"),
    ("adc_enob", 40.0, r"SystemCosts.adc_enob: must be in \[1, 24\] bits, got 40.0"),
    ("mac_j", math.nan, r"SystemCosts.mac_j: must be in"),
    ("line_c_per_cell_f", "big", r"SystemCosts.line_c_per_cell_f: expected a number"),
])
def test_invalid_system_costs_name_the_field_and_range(field, value, message):
    with pytest.raises(UserError, match=message):
        SystemCosts(**{field: value})


def test_invalid_cell_info_is_refused():
    with pytest.raises(EnergyConfigError, match=r"CellInfo.devices_per_synapse: must be in \[1, 2\]"):
        CellInfo(input_size=4, hidden_size=2, devices_per_synapse=3)
