"""Supervised training on the associative retrieval task (ART): STPN, m-STPN, LSTM and RNN cores.

The loop reads top to bottom: data (:mod:`mstpn.tasks.art`), model (a recurrent core run over the 9
symbols, then ``Linear(H -> 10)`` on the last step's h), Adam, one tqdm bar per epoch, validation and
test accuracy after every epoch, and a JSON record rewritten atomically (:mod:`mstpn.atomic`)
after every epoch.

Reported accuracy (``final_test_acc``): the test accuracy measured at the end of the epoch with the
best validation accuracy (model selection on validation; ties go to the earlier epoch). The last
epoch's test accuracy is recorded too (``last_test_acc``). Optional early stopping (``patience``)
ends a run after that many epochs without a new best validation accuracy.

Model sizes follow the STPN paper's parameter-matched ~2k-parameter models: STPN H=11, LSTM H=9,
RNN H=20; the m-STPN uses the STPN's H=11 (its parameters are the STPN's with the free decay replaced
by a bias voltage per synapse, so the counts are equal).
"""

from __future__ import annotations

import copy
import math
import os
import platform
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import torch
from torch import Tensor, nn
from tqdm import tqdm

from mstpn.atomic import atomic_write_json
from mstpn.errors import UserError
from mstpn.nn import LSTMCell, MSTPNCell, MSTPNConfig, RNNCell, STPNCell
from mstpn.tasks import art

MODELS = ("stpn", "mstpn", "lstm", "rnn")
DEFAULT_HIDDEN = {"stpn": 11, "mstpn": 11, "lstm": 9, "rnn": 20}
"""Hidden sizes of the STPN paper's parameter-matched ART models."""


def art_mstpn_config(**overrides) -> MSTPNConfig:
    """The m-STPN configuration used on ART: the default SrTiO3 device, every non-ideality on.

    Device-to-device, cycle-to-cycle and read noise, quantised pulses, the one-pulse write threshold
    (sparse writes), soft bounds, range clipping and the presynaptic input normalisation z / ||z||
    (DESIGN.md's mapping) all stay on, with the default device preset. What differs from
    :class:`MSTPNConfig`'s (Pong) defaults is the driver and the timing, and why:

    - ``dt_step = 0.1`` s: one symbol per 100 ms. With the default bias range [-0.6, +0.6] V the
      device's tau spans 10 ms .. 100 s, so lambda = exp(-dt/tau) spans ~5e-5 .. 0.999.
    - ``max_pulses = 128``, ``pulse_v = 1.0`` V (below v_th = 1.2 V: volatile only), ``pulse_width =
      100 us``, ``w_max = 2``: one pulse moves ~0.012 weight units and one step at most ~1.6 units
      (128 pulses, 12.8 ms of the 100 ms step). ART's short-term memory needs per-step updates of
      order one weight unit; the Pong driver (16 pulses of 0.8 V / 100 us, w_max = 1) caps a step
      at 0.06 units, and with that cap the m-STPN stalls near 40 % (it learns only which digits
      occurred) even with every other non-ideality off, because the straight-through gradient asks
      for updates the driver cannot write.
    - ``plasticity_init = 0.1``: gamma ~ U(+-0.1/sqrt(H)); the Pong default 4.0 is sized for z of
      2,656 unit-normalised inputs and would saturate the writes of 48 inputs from the first step.
    - ``compile = "never"``: 11 x 48 synapses are too small for torch.compile to pay off, and
      evaluation batches of other sizes would recompile.
    """
    settings: dict = {"dt_step": 0.1, "max_pulses": 128, "pulse_v": 1.0, "pulse_width": 1e-4,
                      "w_max": 2.0, "plasticity_init": 0.1, "compile": "never"}
    settings.update(overrides)
    config = MSTPNConfig(**settings)
    if config.max_pulses * config.pulse_width > config.dt_step:
        raise UserError(f"ART m-STPN config: {config.max_pulses} pulses of {config.pulse_width} s do not "
                        f"fit in one step of {config.dt_step} s")
    return config


@dataclass(frozen=True)
class ARTTrainConfig:
    """One ART training run; every field has the STPN paper's value unless noted."""

    model: str = "stpn"
    """Recurrent core: one of stpn, mstpn, lstm, rnn."""
    hidden_size: int = 0
    """Hidden units; 0 = the parameter-matched default of the model (DEFAULT_HIDDEN)."""
    epochs: int = 50
    """Most epochs to train (the paper allows up to 200)."""
    seed: int = 0
    """Seeds the data, the initialisation, the batch order and the device noise."""
    train_size: int = 100_000
    """Training sequences."""
    val_size: int = 10_000
    """Validation sequences."""
    test_size: int = 20_000
    """Test sequences."""
    batch_size: int = 128
    """Training batch size."""
    lr: float = 1e-3
    """Adam learning rate."""
    patience: int = 0
    """Stop after this many epochs without a better validation accuracy; 0 = never stop early."""
    eval_batch_size: int = 1000
    """Batch size for validation and test (no effect on the numbers of noise-free models)."""
    mstpn: dict = field(default_factory=dict)
    """Overrides of :func:`art_mstpn_config` for the m-STPN (field name -> value)."""

    def __post_init__(self) -> None:
        if self.model not in MODELS:
            raise UserError(f"ART model: must be one of {', '.join(MODELS)}, got {self.model!r}")
        positive = {"epochs": self.epochs, "train_size": self.train_size, "val_size": self.val_size,
                    "test_size": self.test_size, "batch_size": self.batch_size,
                    "eval_batch_size": self.eval_batch_size}
        for name, value in positive.items():
            if value < 1:
                raise UserError(f"ART {name.replace('_', '-')}: must be >= 1, got {value}")
        if self.hidden_size < 0:
            raise UserError(f"ART hidden-size: must be >= 1 (or 0 for the default), got {self.hidden_size}")
        if self.patience < 0:
            raise UserError(f"ART patience: must be >= 0, got {self.patience}")
        if not (math.isfinite(self.lr) and self.lr > 0):
            raise UserError(f"ART lr: must be > 0, got {self.lr}")

    @property
    def hidden(self) -> int:
        """The hidden size actually used."""
        return self.hidden_size or DEFAULT_HIDDEN[self.model]


class ARTModel(nn.Module):
    """A recurrent core run over the sequence, then ``Linear(H -> 10)`` on the last step's h."""

    def __init__(self, core: nn.Module, hidden_size: int) -> None:
        super().__init__()
        self.core = core
        self.readout = nn.Linear(hidden_size, art.NUM_DIGITS)

    def forward(self, x: Tensor) -> Tensor:
        """One-hot sequences (B, L, 37) -> digit logits (B, 10)."""
        state = None
        h = x.new_zeros(())
        for t in range(x.shape[1]):
            h, state = self.core(x[:, t], state)
        return self.readout(h)


def build_model(config: ARTTrainConfig) -> ARTModel:
    """The model of ``config``, initialised from the global torch RNG (seed it first)."""
    hidden = config.hidden
    if config.model == "stpn":
        core: nn.Module = STPNCell(art.NUM_SYMBOLS, hidden)
    elif config.model == "mstpn":
        try:
            cfg = art_mstpn_config(**config.mstpn)
        except TypeError as exc:
            raise UserError(f"ART m-STPN config: {exc}") from None
        core = MSTPNCell(art.NUM_SYMBOLS, hidden, config=cfg, seed=config.seed)
    elif config.model == "lstm":
        core = LSTMCell(art.NUM_SYMBOLS, hidden)
    else:
        core = RNNCell(art.NUM_SYMBOLS, hidden)
    return ARTModel(core, hidden)


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters (buffers such as device properties are not counted)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


@torch.no_grad()
def evaluate(model: ARTModel, data: art.ARTData, batch_size: int = 1000) -> tuple[float, float]:
    """Mean cross-entropy and accuracy of ``model`` on ``data``."""
    was_training = model.training
    model.eval()
    loss_sum, correct = 0.0, 0
    for start in range(0, len(data), batch_size):
        tokens = data.tokens[start:start + batch_size]
        targets = data.targets[start:start + batch_size]
        logits = model(art.one_hot(tokens))
        loss_sum += float(nn.functional.cross_entropy(logits, targets, reduction="sum"))
        correct += int((logits.argmax(1) == targets).sum())
    model.train(was_training)
    return loss_sum / len(data), correct / len(data)


def train_epoch(model: ARTModel, optimizer: torch.optim.Optimizer, data: art.ARTData, batch_size: int,
                generator: torch.Generator, desc: str = "", progress: bool = True) -> tuple[float, float]:
    """One pass over ``data`` in a random order; returns the mean training loss and accuracy."""
    model.train()
    order = torch.randperm(len(data), generator=generator)
    loss_sum, correct, seen = 0.0, 0, 0
    bar = tqdm(range(0, len(data), batch_size), desc=desc, disable=not progress, leave=False,
               mininterval=1.0, unit="batch")
    for start in bar:
        idx = order[start:start + batch_size]
        targets = data.targets[idx]
        logits = model(art.one_hot(data.tokens[idx]))
        loss = nn.functional.cross_entropy(logits, targets)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if not math.isfinite(loss.item()):
            raise FloatingPointError(f"ART training diverged: loss {loss.item()} at {desc}")
        loss_sum += loss.item() * len(idx)
        correct += int((logits.detach().argmax(1) == targets).sum())
        seen += len(idx)
        bar.set_postfix(loss=f"{loss_sum / seen:.3f}", acc=f"{correct / seen:.3f}", refresh=False)
    bar.close()
    return loss_sum / seen, correct / seen


def machine_info() -> dict:
    """Where a run happened: platform, CPU count, torch version and threads."""
    return {"platform": platform.platform(), "processor": platform.processor() or platform.machine(),
            "cpu_count": os.cpu_count(), "torch": torch.__version__, "threads": torch.get_num_threads()}


def run(config: ARTTrainConfig, json_path: str | os.PathLike | None = None, *,
        progress: bool = True, log: Callable[[str], None] | None = None) -> dict:
    """Train and evaluate one model; returns the result record (also written to ``json_path``).

    ``progress`` shows a tqdm bar per epoch; ``log`` receives one summary line per epoch.
    """
    splits = art.generate_splits(art.ARTSizes(config.train_size, config.val_size, config.test_size),
                                 seed=config.seed)
    torch.manual_seed(config.seed)
    model = build_model(config)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
    generator = torch.Generator().manual_seed(config.seed)
    record: dict = {
        "task": "associative_retrieval", "model": config.model, "hidden_size": config.hidden,
        "parameters": count_parameters(model), "config": asdict(config),
        "core": repr(model.core), "machine": machine_info(), "history": [],
        "final_test_acc_definition": "test accuracy at the epoch with the best validation accuracy",
    }
    if isinstance(model.core, MSTPNCell):
        record["mstpn_config"] = asdict(model.core.config)
        record["device_params"] = model.core.params.to_dict()
    best_val, best_epoch, start = -1.0, 0, time.perf_counter()
    best_state: dict = {}
    for epoch in range(1, config.epochs + 1):
        t0 = time.perf_counter()
        train_loss, train_acc = train_epoch(model, optimizer, splits["train"], config.batch_size,
                                            generator, f"{config.model} epoch {epoch}", progress)
        val_loss, val_acc = evaluate(model, splits["val"], config.eval_batch_size)
        _, test_acc = evaluate(model, splits["test"], config.eval_batch_size)
        if val_acc > best_val:
            best_val, best_epoch = val_acc, epoch
            record["final_test_acc"] = test_acc
            best_state = copy.deepcopy(model.state_dict())
        row = {"epoch": epoch, "train_loss": train_loss, "train_acc": train_acc, "val_loss": val_loss,
               "val_acc": val_acc, "test_acc": test_acc, "seconds": time.perf_counter() - t0}
        record["history"].append(row)
        record.update(epochs_run=epoch, best_epoch=best_epoch, best_val_acc=best_val,
                      last_test_acc=test_acc, seconds=time.perf_counter() - start)
        stop = config.patience > 0 and epoch - best_epoch >= config.patience
        record["stopped_early"] = stop
        if log is not None:
            log(f"{config.model} seed {config.seed} epoch {epoch}: loss {train_loss:.4f} "
                f"train {train_acc:.4f} val {val_acc:.4f} test {test_acc:.4f} ({row['seconds']:.1f} s)")
        if json_path is not None:
            atomic_write_json(json_path, record)
        if stop:
            break
    if isinstance(model.core, MSTPNCell):
        model.load_state_dict(best_state)
        record["write_probe"] = write_probe(model, splits["test"])
        if json_path is not None:
            atomic_write_json(json_path, record)
    return record


@torch.no_grad()
def write_probe(model: ARTModel, data: art.ARTData, n: int = 1000) -> dict:
    """Writes and device energy of an m-STPN core over ``n`` sequences (energy probe, eval mode).

    Fractions are of synapse-steps (synapses x sequences x steps); energies are per sequence (J).
    """
    core = model.core
    model.eval()
    core.enable_energy_probe()
    try:
        model(art.one_hot(data.tokens[:n]))
        log = core.energy_log
    finally:
        core.enable_energy_probe(False)
    n = min(n, len(data))
    synapse_steps = core.num_synapses * n
    return {
        "sequences": n,
        "write_fraction_per_step": [rec["writes"] / synapse_steps for rec in log],
        "write_fraction": sum(rec["writes"] for rec in log) / (synapse_steps * len(log)),
        "pulses_per_write": sum(rec["pulses"] for rec in log) / max(1.0, sum(rec["writes"] for rec in log)),
        "energy_per_sequence_j": {key: sum(rec[key] for rec in log) / n
                                  for key in ("read_j", "hold_j", "pulse_j")},
        "nominal_pulse_step": core.nominal_pulse_step(),
        "mean_abs_plasticity": float(core.plasticity.abs().mean()),
        "mean_decay": float(core.decay().mean()),
    }
