"""LSTM and RNN baselines: the STPN cell interface, and torch.nn's numbers."""

from __future__ import annotations

import math

import pytest
import torch

from mstpn.nn import LSTMCell, LSTMState, RNNCell, RNNState


@pytest.mark.parametrize(("cls", "state_type", "n_state"), [(LSTMCell, LSTMState, 2), (RNNCell, RNNState, 1)])
def test_interface(cls, state_type, n_state):
    cell = cls(5, 3)
    state0 = cell.initial_state(4)
    assert isinstance(state0, state_type) and len(state0) == n_state
    assert all(t.shape == (4, 3) and not t.any() for t in state0)
    h, state = cell(torch.randn(4, 5))
    assert h.shape == (4, 3) and isinstance(state, state_type)
    torch.testing.assert_close(state.h, h)
    h_none, _ = cell(torch.ones(4, 5))
    h_zero, _ = cell(torch.ones(4, 5), state0)
    torch.testing.assert_close(h_none, h_zero)  # None means the zero state
    # masking the state the way the RL code does keeps the type
    masked = type(state)(*(t * 0 for t in state))
    assert isinstance(masked, state_type)
    assert "input_size=5, hidden_size=3" in repr(cell)
    with pytest.raises(ValueError, match="expected shape"):
        cell(torch.randn(4, 6))
    before = [p.clone() for p in cell.parameters()]
    cell.reset_parameters()
    bound = 1 / math.sqrt(3)
    for p, old in zip(cell.parameters(), before, strict=True):
        assert p.abs().max() <= bound and not torch.equal(p, old)
    dtype_state = cell.initial_state(2, dtype=torch.float64)
    assert dtype_state.h.dtype == torch.float64


def test_lstm_matches_torch():
    torch.manual_seed(0)
    ours, ref = LSTMCell(5, 3), torch.nn.LSTMCell(5, 3)
    ours.load_state_dict(ref.state_dict())
    state, hc = None, None
    for x in torch.randn(4, 2, 5):
        h, state = ours(x, state)
        hc = ref(x, hc)
        torch.testing.assert_close(h, hc[0])
        torch.testing.assert_close(state.c, hc[1])


def test_rnn_matches_torch():
    torch.manual_seed(1)
    ours, ref = RNNCell(5, 3), torch.nn.RNNCell(5, 3)
    ours.load_state_dict(ref.state_dict())
    state, hr = None, None
    for x in torch.randn(4, 2, 5):
        h, state = ours(x, state)
        hr = ref(x, hr)
        torch.testing.assert_close(h, hr)


@pytest.mark.parametrize("cls", [LSTMCell, RNNCell])
def test_gradients_flow_through_time(cls):
    cell = cls(4, 3)
    x = torch.randn(3, 2, 4, requires_grad=True)
    state = None
    for t in range(3):
        h, state = cell(x[t], state)
    h.sum().backward()
    assert x.grad[0].abs().sum() > 0  # the first input reaches the last output
