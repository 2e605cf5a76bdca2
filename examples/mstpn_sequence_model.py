"""An MSTPNCell inside your own sequence model: a tiny torch classifier trained for a few steps.

    python examples/mstpn_sequence_model.py            # 300 training steps, about 10 s on one core
    python examples/mstpn_sequence_model.py --quick    # 5 steps (what CI runs)

The task needs memory: a sequence of random tokens, and the label is the token seen at step 0. The
cell is an ordinary ``torch.nn.Module``: every synapse sits on a differential pair of simulated
memristors, the short-term weights F are written as quantised, noisy pulses, and the forgetting rate
comes from a learned bias voltage per synapse. Gradients flow through all of it, so training is
hardware-aware. At the end the energy probe reports what one batch of sequences cost the devices.
"""

from __future__ import annotations

import argparse

import torch
from torch import nn

from mstpn.devices import srtio3_weilenmann2024
from mstpn.nn import MSTPNCell, MSTPNConfig

TOKENS, NOISE_CHANNELS, LENGTH = 4, 4, 6


class FirstTokenClassifier(nn.Module):
    """An MSTPNCell over the sequence, then a linear readout of its last hidden state."""

    def __init__(self, hidden: int = 24, seed: int = 0) -> None:
        super().__init__()
        # your own device: any SrTiO3Params (e.g. load_params("params.json") from `mstpn device fit`)
        device = srtio3_weilenmann2024()
        # a driver that may write up to 64 pulses per step (the Pong agent's allows 16)
        self.cell = MSTPNCell(TOKENS + NOISE_CHANNELS, hidden, params=device,
                              config=MSTPNConfig(max_pulses=64), seed=seed)
        self.readout = nn.Linear(hidden, TOKENS)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x``: (time, batch, features) -> logits (batch, TOKENS)."""
        state = None  # zeros: fresh synaptic state for every batch of sequences
        for x_t in x:
            h, state = self.cell(x_t, state)
        return self.readout(h)


def batch(size: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Random one-hot tokens plus noise channels; the label is the first token."""
    tokens = torch.randint(0, TOKENS, (LENGTH, size), generator=generator)
    x = torch.cat([nn.functional.one_hot(tokens, TOKENS).float(),
                   0.3 * torch.rand(LENGTH, size, NOISE_CHANNELS, generator=generator)], dim=-1)
    return x, tokens[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=300, help="training steps (default 300)")
    parser.add_argument("--quick", action="store_true", help="5 steps")
    args = parser.parse_args()
    steps = 5 if args.quick else args.steps
    torch.manual_seed(0)
    generator = torch.Generator().manual_seed(1)
    model = FirstTokenClassifier()
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-2)
    test_x, test_y = batch(512, torch.Generator().manual_seed(2))

    def accuracy() -> float:
        with torch.no_grad():
            return float((model(test_x).argmax(-1) == test_y).float().mean())

    print(f"{model.cell.num_synapses} synapses on {2 * model.cell.num_synapses} devices; "
          f"test accuracy before training {100 * accuracy():.1f} % (chance {100 / TOKENS:.0f} %)")
    for step in range(1, steps + 1):
        x, y = batch(64, generator)
        loss = nn.functional.cross_entropy(model(x), y)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        if step % max(1, steps // 5) == 0 or step == steps:
            print(f"step {step:4d}: loss {loss.item():.3f}")
    print(f"test accuracy after {steps} steps: {100 * accuracy():.1f} %")

    model.cell.enable_energy_probe()  # per-step records of read, hold and pulse energy, and writes
    with torch.no_grad():
        model(test_x)
    log = model.cell.energy_log
    joules = sum(r["read_j"] + r["hold_j"] + r["hold_leak_j"] + r["pulse_j"] for r in log)
    writes = sum(r["writes"] for r in log)
    print(f"one pass over {test_x.shape[1]} test sequences: {1e3 * joules:.3g} mJ in the devices, "
          f"{writes:.0f} synapse writes over {len(log)} steps")


if __name__ == "__main__":
    main()
