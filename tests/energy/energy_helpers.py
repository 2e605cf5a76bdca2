"""Shared helpers of the energy tests: probe records from a real (small) MSTPNCell."""

from __future__ import annotations

import torch

from mstpn.nn import MSTPNCell, MSTPNConfig


def run_probe(input_size: int = 12, hidden_size: int = 4, steps: int = 6, batch: int = 1, seed: int = 0,
              **config) -> tuple[list[dict], MSTPNCell]:
    """Run a small MSTPNCell with its energy probe on random relu inputs; its records and the cell."""
    torch.manual_seed(seed)
    cell = MSTPNCell(input_size, hidden_size, config=MSTPNConfig(**config), seed=seed)
    cell.enable_energy_probe()
    gen = torch.Generator().manual_seed(seed + 1)
    state = None
    with torch.no_grad():
        for _ in range(steps):
            _, state = cell(torch.relu(torch.randn(batch, input_size, generator=gen)), state)
    return cell.energy_log, cell


def record(read=1e-12, hold=2e-9, leak=1e-9, pulse=3e-12, writes=4.0, pulses=6.0, synapses=64.0,
           batch=1) -> dict:
    """A synthetic probe record with round numbers."""
    return {"read_j": read, "hold_j": hold, "hold_leak_j": leak, "pulse_j": pulse, "writes": writes,
            "pulses": pulses, "synapses": synapses, "batch": batch, "tau_mean_s": 1.0}
