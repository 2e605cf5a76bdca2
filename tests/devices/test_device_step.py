"""The composed device step equals pulse, hold and read applied one after the other."""

from __future__ import annotations

import torch

from mstpn.devices import NoiseSource, physics, srtio3_weilenmann2024
from mstpn.devices.physics import DeviceTensors, initial_state
from mstpn.devices.step import StepResult, device_step


def _inputs(dtype=torch.float32):
    shape = (4, 257)
    gen = torch.Generator().manual_seed(0)
    d = DeviceTensors.sample(srtio3_weilenmann2024(), shape, seed=2, dtype=dtype)
    state = initial_state(d, d.g_min + torch.rand(shape, generator=gen, dtype=dtype) * d.span)
    v = (torch.rand(shape, generator=gen, dtype=dtype) * 4 - 2).clamp_min(-2)
    v_b = torch.rand(shape, generator=gen, dtype=dtype) * 1.2 - 0.6
    noise = NoiseSource(3)
    c2c = (noise.normal(shape, dtype=dtype), noise.normal(shape, dtype=dtype))
    return d, state, v, v_b, c2c, noise.normal(shape, dtype=dtype)


def test_step_equals_its_parts():
    d, state, v, v_b, c2c, read_eps = _inputs()
    out = device_step(state, v, 1e-3, v_b, 0.0667, 0.1, 1e-6, d, c2c, read_eps)
    assert isinstance(out, StepResult)
    s1, e1 = physics.apply_pulse(state, v, 1e-3, d, c2c_eps=c2c)
    s2, e2 = physics.hold(s1, v_b, 0.0667, d)
    current, e3 = physics.read(s2, 0.1, 1e-6, d, read_eps=read_eps)
    torch.testing.assert_close(out.state.g_lt, s2.g_lt)
    torch.testing.assert_close(out.state.g_st, s2.g_st)
    torch.testing.assert_close(out.current, current)
    torch.testing.assert_close(out.energy, e1 + e2 + e3)
    assert out.energy.dtype == torch.float32 and out.current.shape == (4, 257)


def test_noise_free_step_is_deterministic_and_noise_matters():
    d, state, v, v_b, c2c, read_eps = _inputs()
    clean = device_step(state, v, 1e-3, v_b, 0.0667, 0.1, 1e-6, d)
    again = device_step(state, v, 1e-3, v_b, 0.0667, 0.1, 1e-6, d)
    noisy = device_step(state, v, 1e-3, v_b, 0.0667, 0.1, 1e-6, d, c2c, read_eps)
    assert torch.equal(clean.current, again.current)
    assert not torch.allclose(clean.current, noisy.current, rtol=1e-3, atol=0.0)
