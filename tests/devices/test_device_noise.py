"""NoiseSource: standard-normal statistics, reproducibility, shapes."""

from __future__ import annotations

import pytest
import torch

from mstpn.devices import NoiseSource


@pytest.mark.parametrize("exact", [False, True])
def test_noise_is_standard_normal(exact):
    noise = NoiseSource(0, exact=exact)
    x = torch.cat([noise.normal((200, 500)).reshape(-1) for _ in range(4)])
    assert abs(float(x.mean())) < 0.01
    assert float(x.std()) == pytest.approx(1.0, abs=0.01)
    # within one call values are independent: neighbours uncorrelated
    y = noise.normal((100_000,))
    assert abs(float(torch.corrcoef(torch.stack([y[:-1], y[1:]]))[0, 1])) < 0.02


@pytest.mark.parametrize("exact", [False, True])
def test_noise_reproduces_with_its_seed(exact):
    a, b, c = NoiseSource(5, exact=exact), NoiseSource(5, exact=exact), NoiseSource(6, exact=exact)
    for _ in range(3):
        xa, xb, xc = a.normal((64, 33)), b.normal((64, 33)), c.normal((64, 33))
        assert torch.equal(xa, xb)
        assert not torch.equal(xa, xc)


def test_pooled_noise_varies_between_calls_and_keeps_shape_and_dtype():
    noise = NoiseSource(1, refresh_every=4)
    draws = [noise.normal((3, 1000), dtype=torch.float64) for _ in range(10)]
    assert all(d.shape == (3, 1000) and d.dtype == torch.float64 for d in draws)
    assert all(not torch.equal(draws[i], draws[i + 1]) for i in range(9))


def test_state_dict_resumes_the_same_stream():
    a = NoiseSource(2, refresh_every=3)
    for _ in range(4):
        a.normal((50, 20))
    state = a.state_dict()
    expected = [a.normal((50, 20)).clone() for _ in range(5)]
    b = NoiseSource(99, refresh_every=3)
    b.load_state_dict(state)
    assert all(torch.equal(b.normal((50, 20)), x) for x in expected)


def test_negative_windows_are_exact_negatives_of_the_pool():
    noise = NoiseSource(4)
    draws = [noise.normal((1000,)) for _ in range(20)]
    pool = noise._pool
    for d in draws:  # every draw is +window or -window of the one pool
        found = any(torch.equal(d, s * pool[i:i + 1000]) for s in (1, -1)
                    for i in torch.nonzero(pool == s * d[0]).flatten().tolist())
        assert found
