"""Long-term programming of W from g_min: pulse count and energy against a hand calculation."""

from __future__ import annotations

import math

import pytest
import torch

from mstpn.devices.params import srtio3_weilenmann2024
from mstpn.devices.physics import DeviceTensors
from mstpn.energy.programming import ProgrammingConfig, program_from_gmin
from mstpn.errors import UserError

P = srtio3_weilenmann2024()


def _nominal(shape=(1,)):
    return DeviceTensors.sample(P, shape, variability=False, dtype=torch.float64)


def _by_hand(target: float, v=1.5, t_p=1e-3, v_r=0.2, t_r=1e-6):
    """Program-and-verify on one nominal device, written out with the preset's numbers."""
    span = P.g_max - P.g_min
    lt_step = P.a_lt * (v - P.v_th) / P.v0 * (t_p / P.t0) ** P.beta      # 3 nS far from the bound
    st_step = P.a_st * math.expm1(v / P.v0) * (t_p / P.t0) ** P.beta     # volatile part of the pulse
    g, pulses, pulse_j, verify_j = P.g_min, 0, 0.0, 0.0
    while target - g > 0.5 * lt_step * (P.g_max - g) / span:
        bound = (P.g_max - g) / span
        g_new = min(g + lt_step * bound, P.g_max)
        g_total = min(g_new + st_step * bound, P.g_max)                  # volatile part, clipped
        pulse_j += v * v * 0.5 * (g + g_total) * t_p
        verify_j += v_r * v_r * g_new * t_r
        g, pulses = g_new, pulses + 1
    return pulses, pulse_j, verify_j, g


@pytest.mark.parametrize("target_ns", [4.0, 10.0, 40.0])
def test_one_device_matches_hand_calculation(target_ns):
    result = program_from_gmin(torch.tensor([target_ns * 1e-9]), _nominal())
    pulses, pulse_j, verify_j, _ = _by_hand(target_ns * 1e-9)
    assert result.pulses == pulses
    assert result.pulse_j == pytest.approx(pulse_j, rel=1e-9)
    assert result.verify_j == pytest.approx(verify_j, rel=1e-9)
    assert result.total_j == pytest.approx(pulse_j + verify_j, rel=1e-9)
    assert result.unconverged == 0 and result.devices == 1


def test_lands_within_half_a_pulse_of_the_target():
    target = 25e-9
    _, _, _, g = _by_hand(target)
    step = P.a_lt * 0.6 * (P.g_max - g) / (P.g_max - P.g_min)
    assert abs(target - g) <= 0.5 * step + 1e-18


def test_larger_weights_cost_more_and_zero_weights_cost_nothing():
    devices = _nominal((3,))
    result = program_from_gmin(torch.tensor([P.g_min, 20e-9, 60e-9]), devices)
    small = program_from_gmin(torch.tensor([P.g_min, 20e-9, 20e-9]), devices)
    assert result.total_j > small.total_j > 0
    assert program_from_gmin(torch.full((3,), P.g_min), devices).pulses == 0


def test_unreachable_targets_stop_at_max_pulses():
    result = program_from_gmin(torch.tensor([P.g_max]), _nominal(), ProgrammingConfig(max_pulses=20))
    assert result.pulses == 20 and result.unconverged == 1


def test_invalid_programming_config():
    with pytest.raises(UserError, match=r"ProgrammingConfig.t_prog: must be in \[1e-12, 10\] s"):
        ProgrammingConfig(t_prog=0.0)
