"""Per-game report from real probe records of a small MSTPNCell, its figure, and the sweeps."""

from __future__ import annotations

import csv
import io

import pytest
from energy_helpers import run_probe

from mstpn.energy import gpu
from mstpn.energy.memristive import SYNAPTIC_PARTS, SYSTEM_EXTRA_PARTS, CellInfo
from mstpn.energy.report import energy_report_from_probe, format_report
from mstpn.energy.sweep import SweepConfig, run_sweeps, sweep_csv, sweep_markdown
from mstpn.energy.validate import EnergyConfigError
from mstpn.report.energy_plot import render_report_png, render_sweep_png

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def lockstep():
    records, cell = run_probe(steps=6, batch=3)  # three games in lockstep, lasting 6, 4 and 5 steps
    return records, cell, CellInfo.from_cell(cell)


def test_report_totals_and_ratios(lockstep):
    records, cell, info = lockstep
    report = energy_report_from_probe(records, [6, 4, 5], info)
    syn, sys_ = report["memristive_mj"]["synaptic"], report["memristive_mj"]["system"]
    assert syn["total"] == pytest.approx(sum(syn[k] for k in SYNAPTIC_PARTS))
    assert sys_["total"] == pytest.approx(sum(sys_[k] for k in SYNAPTIC_PARTS + SYSTEM_EXTRA_PARTS))
    assert sys_["total"] > syn["total"] > 0
    assert report["memristive_mj_per_game"]["synaptic"][0] > report["memristive_mj_per_game"]["synaptic"][1]
    a100 = gpu.game_energy_j(gpu.a100_40gb(), "fp16", "optimal", 5.0, cell.num_synapses, 4) * 1e3
    assert report["gpu_mj"]["a100"]["fp16"]["optimal"] == pytest.approx(a100)  # mean of 6, 4, 5 steps
    assert report["ratios"]["synaptic"]["a100.fp16.optimal"] == pytest.approx(a100 / syn["total"])
    assert 0 <= report["write_density"] <= 1 and report["programming_mj_per_deployment"] > 0
    text = format_report(report)
    assert "synaptic" in text and "h200.fp32.as_written" in text and "formulas:" in text


def test_report_is_the_mean_over_sequential_games():
    records, cell = run_probe(steps=6, batch=1)
    info = CellInfo.from_cell(cell, program=False)
    one = energy_report_from_probe(records, [6], info)
    two = energy_report_from_probe(records, [3, 3], info)
    assert 2 * two["memristive_mj"]["synaptic"]["total"] == pytest.approx(
        one["memristive_mj"]["synaptic"]["total"])


def test_report_refuses_mismatched_records(lockstep):
    records, _, info = lockstep
    with pytest.raises(EnergyConfigError, match="synapse count"):
        energy_report_from_probe(records, [6, 4, 5], CellInfo(input_size=3, hidden_size=4))
    with pytest.raises(EnergyConfigError, match="no probe records"):
        energy_report_from_probe([], [1], info)


def test_report_figure_is_a_png(lockstep):
    records, _, info = lockstep
    png = render_report_png(energy_report_from_probe(records, [6, 4, 5], info))
    assert png.startswith(PNG) and len(png) > 20_000


def test_small_sweep_measures_sparsity_and_is_monotone():
    cfg = SweepConfig(input_size=16, hidden_size=4, steps=4, thresholds=(0.0, 0.5, 4.0), biases=(0.2, 0.6),
                      g_scales=(1.0, 4.0))
    sweeps = run_sweeps(cfg)
    density = [r["write_density"] for r in sweeps["threshold"]]
    assert density == sorted(density, reverse=True) and density[0] > density[-1]
    pulses = [r["pulses_mj"] for r in sweeps["threshold"]]
    assert pulses == sorted(pulses, reverse=True)
    low, high = sweeps["bias"]
    assert high["worst_case_synaptic_mj"] > low["worst_case_synaptic_mj"]
    assert high["tau_max_s"] > low["tau_max_s"]
    g1, g4 = sweeps["conductance"]
    assert g4["hold_mj"] > g1["hold_mj"] and g4["ratio_a100_fp16_optimal"] < g1["ratio_a100_fp16_optimal"]
    rows = list(csv.DictReader(io.StringIO(sweep_csv(sweeps))))
    assert len(rows) == 7 and {r["sweep"] for r in rows} == {"threshold", "bias", "conductance"}
    assert "| write_threshold_pulses |" in sweep_markdown(sweeps)
    assert render_sweep_png(sweeps).startswith(PNG)


def test_invalid_sweep_config():
    with pytest.raises(EnergyConfigError, match=r"SweepConfig.biases: need values in \[0, 5\]"):
        SweepConfig(biases=(-1.0,))
