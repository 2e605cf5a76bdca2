"""Shared helper of the cell tests: run a cell over a sequence."""

import torch


def run_cell(cell, x_seq, state=None):
    """Outputs of ``cell`` at every step of ``x_seq`` (stacked) and the final state."""
    hs = []
    for x in x_seq:
        h, state = cell(x, state)
        hs.append(h)
    return torch.stack(hs), state
