"""Analytical GPU model: operation bytes and FLOPs, roofline with latency, modes, calibration."""

from __future__ import annotations

import pytest

from mstpn.energy import gpu
from mstpn.energy.paper import PAPER_MJ, PaperAssumptions
from mstpn.energy.validate import EnergyConfigError
from mstpn.errors import UserError

S, H = 169_984, 64
A100 = gpu.a100_40gb()


def test_operation_bytes_and_flops_by_hand():
    ops = {op.name: op for op in gpu.synaptic_ops(S, H, "fp16")}
    n = S // H  # 2656 presynaptic inputs
    assert ops["transmission"].bytes == 2 * (2 * S + n + H)
    assert ops["decay"].bytes == 2 * 3 * S
    assert ops["update"].bytes == 2 * (3 * S + H + n)
    assert [ops[k].flops for k in ("transmission", "decay", "update")] == [3 * S, S, 3 * S]
    fp32 = {op.name: op for op in gpu.synaptic_ops(S, H, "fp32")}
    assert fp32["decay"].bytes == 2 * ops["decay"].bytes


def test_roofline_with_latency_by_hand():
    cal = gpu.GPUCalibration(host_overhead_s=5e-6, bandwidth_efficiency=0.5)
    small = gpu.SynapticOp("x", bytes=685_376, flops=0)
    assert gpu.op_time(small, A100, "fp16", cal) == 5e-6  # 1 us + 0.88 us < host overhead
    big = gpu.SynapticOp("y", bytes=4 * 3 * 2**21, flops=2**21)
    expected = 1e-6 + 4 * 3 * 2**21 / (0.5 * 1.555e12)
    assert gpu.op_time(big, A100, "fp32", cal) == pytest.approx(expected)
    slow_alu = A100.replace(peak_flops_fp32=1e9)  # now arithmetic-bound
    assert gpu.op_time(big, slow_alu, "fp32", cal) == pytest.approx(1e-6 + 2**21 / 1e9)


def test_step_energy_modes():
    cal = gpu.GPUCalibration(host_overhead_s=5e-6, bandwidth_efficiency=0.5)
    written = gpu.step_energy(A100, "fp16", S, H, "as_written", cal)
    times = [gpu.op_time(op, A100, "fp16", cal) for op in gpu.synaptic_ops(S, H, "fp16")]
    assert written.board_j == pytest.approx(400.0 * sum(times))
    optimal = gpu.step_energy(A100, "fp16", S, H, "optimal", cal)
    big = [gpu.op_time(op, A100, "fp16", cal) for op in gpu.synaptic_ops(2**21, H, "fp16")]
    assert optimal.board_j == pytest.approx(400.0 * sum(big) * S / 2**21)
    ops = gpu.synaptic_ops(S, H, "fp16")
    assert written.dynamic_memory_j == pytest.approx(sum(o.bytes for o in ops) * A100.dram_j_per_byte)
    assert written.dynamic_j == pytest.approx(written.dynamic_memory_j
                                              + sum(o.flops for o in ops) * A100.flop_j_fp16)
    assert written.dynamic_memory_j / written.dynamic_j > 0.98  # the paper: over 98 % memory traffic


def test_larger_layers_than_the_efficient_size_run_as_they_are():
    cal = gpu.GPUCalibration()
    s = 2**23
    assert gpu.step_energy(A100, "fp32", s, H, "optimal", cal).board_j == pytest.approx(
        gpu.step_energy(A100, "fp32", s, H, "as_written", cal).board_j)


def test_calibration_reproduces_the_fp16_figures_and_the_stored_defaults():
    a = PaperAssumptions()
    cal = gpu.calibrate(A100, PAPER_MJ["a100_fp16_optimal"] * 1e-3, PAPER_MJ["a100_fp16_as_written"] * 1e-3,
                        a.steps, a.synapses, a.hidden)
    for mode in ("optimal", "as_written"):
        mj = gpu.game_energy_j(A100, "fp16", mode, a.steps, S, H, cal) * 1e3
        assert mj == pytest.approx(PAPER_MJ[f"a100_fp16_{mode}"], rel=1e-6)
    stored = gpu.GPUCalibration()
    assert stored.host_overhead_s == pytest.approx(cal.host_overhead_s, rel=1e-3)
    assert stored.bandwidth_efficiency == pytest.approx(cal.bandwidth_efficiency, rel=1e-3)


def test_impossible_targets_are_refused():
    with pytest.raises(EnergyConfigError, match="calibration"):
        gpu.calibrate(A100, 1e-9, 1e-9, 2922, S, H)


def test_efficient_size_rule():
    rule = A100.replace(optimal_synapses=None)
    assert gpu.efficient_synapses(rule, "fp32") == 2**21  # the paper's ~2^21 (docstring of GPUSpec)
    assert gpu.efficient_synapses(rule, "fp16") == 2**22
    assert gpu.efficient_synapses(gpu.h200_sxm(), "fp16") >= gpu.efficient_synapses(rule, "fp16")


def test_faster_memory_lowers_the_optimal_energy_per_joule_of_power():
    table = gpu.gpu_table(2922, S, H)
    for precision in ("fp16", "fp32"):
        a100 = table["a100"][precision]["optimal"] / 400
        h200 = table["h200"][precision]["optimal"] / 700
        assert h200 < a100  # same power, 3x the bandwidth: less time


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"memory_bandwidth_bps": 0.0}, r"GPUSpec.memory_bandwidth_bps: must be in \[1e\+06, 1e\+15\] B/s"),
    ({"board_power_w": -5.0}, r"GPUSpec.board_power_w: must be in"),
    ({"optimal_synapses": 0}, r"GPUSpec.optimal_synapses: must be None or in"),
])
def test_invalid_spec_names_the_field(kwargs, message):
    with pytest.raises(UserError, match=message):
        A100.replace(**kwargs)


def test_invalid_precision_mode_and_calibration():
    with pytest.raises(EnergyConfigError, match="precision: must be one of fp16, fp32, got 'fp8'"):
        gpu.synaptic_ops(S, H, "fp8")
    with pytest.raises(EnergyConfigError, match="mode: must be one of optimal, as_written"):
        gpu.step_energy(A100, "fp16", S, H, "fastest")
    message = r"GPUCalibration.bandwidth_efficiency: must be in \[0.001, 1\]"
    with pytest.raises(EnergyConfigError, match=message):
        gpu.GPUCalibration(bandwidth_efficiency=1.5)
