"""Associative retrieval task (ART; Ba et al. 2016, used by the STPN paper), PAPER.md.

A sequence of 9 symbols from an alphabet of 37 (26 letters, 10 digits, '?'): three (letter, digit)
pairs with distinct letters, '??', then a query letter that is one of the three; the target is the
digit paired with the query. ``"a1b2c3??b" -> 2``.

Symbols are indices: letters 0-25 ('a'-'z'), digits 26-35 ('0'-'9'), '?' 36. Sequences are stored
as int64 index tensors (n, 9) and turned into one-hot (n, 9, 37) floats per batch by :func:`one_hot`.
Generation is vectorised (numpy), seeded, and each split (train / val / test) has its own stream,
so the validation and test sets do not change with the training set's size.
"""

from __future__ import annotations

import string
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import torch
from torch import Tensor

from mstpn.errors import UserError

NUM_LETTERS = 26
NUM_DIGITS = 10
NUM_SYMBOLS = NUM_LETTERS + NUM_DIGITS + 1
"""Alphabet size: 26 letters, 10 digits, '?'."""
DIGIT_OFFSET = NUM_LETTERS
QUERY_MARK = NUM_LETTERS + NUM_DIGITS
SEQ_LEN = 9
"""Three pairs (6), '??' (2), the query letter (1)."""
NUM_PAIRS = 3
ALPHABET = string.ascii_lowercase + string.digits + "?"

_SPLIT_IDS = {"train": 0, "val": 1, "test": 2}


class ARTData(NamedTuple):
    """One split: symbol indices (n, 9) int64 and targets (n,) int64, the paired digit 0-9."""

    tokens: Tensor
    targets: Tensor

    def __len__(self) -> int:
        return int(self.targets.shape[0])


@dataclass(frozen=True)
class ARTSizes:
    """Number of sequences per split (the STPN paper: 100k / 10k / 20k)."""

    train: int = 100_000
    """Training sequences."""
    val: int = 10_000
    """Validation sequences (model selection, early stopping)."""
    test: int = 20_000
    """Test sequences (reported accuracy)."""

    def __post_init__(self) -> None:
        for name in ("train", "val", "test"):
            if getattr(self, name) < 1:
                raise UserError(f"ART {name} size: must be >= 1, got {getattr(self, name)}")


def generate(n: int, seed: int = 0, split: str = "train") -> ARTData:
    """``n`` random ART sequences, reproducible from (seed, split)."""
    if n < 1:
        raise UserError(f"ART size: must be >= 1, got {n}")
    if split not in _SPLIT_IDS:
        raise UserError(f"ART split: must be one of {', '.join(_SPLIT_IDS)}, got {split!r}")
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), _SPLIT_IDS[split]]))
    # Three distinct letters per sequence: the first three of a random permutation of 26.
    letters = np.argsort(rng.random((n, NUM_LETTERS)), axis=1)[:, :NUM_PAIRS]
    digits = rng.integers(0, NUM_DIGITS, size=(n, NUM_PAIRS))
    query = rng.integers(0, NUM_PAIRS, size=n)
    rows = np.arange(n)
    tokens = np.empty((n, SEQ_LEN), dtype=np.int64)
    tokens[:, 0:2 * NUM_PAIRS:2] = letters
    tokens[:, 1:2 * NUM_PAIRS:2] = DIGIT_OFFSET + digits
    tokens[:, 2 * NUM_PAIRS:2 * NUM_PAIRS + 2] = QUERY_MARK
    tokens[:, -1] = letters[rows, query]
    return ARTData(torch.from_numpy(tokens), torch.from_numpy(digits[rows, query].astype(np.int64)))


def generate_splits(sizes: ARTSizes | None = None, seed: int = 0) -> dict[str, ARTData]:
    """Train, val and test splits of ``sizes`` from ``seed`` (independent streams per split)."""
    sizes = sizes or ARTSizes()
    return {split: generate(getattr(sizes, split), seed, split) for split in _SPLIT_IDS}


def one_hot(tokens: Tensor, dtype: torch.dtype = torch.float32) -> Tensor:
    """Symbol indices (..., L) -> one-hot (..., L, 37)."""
    return torch.nn.functional.one_hot(tokens, NUM_SYMBOLS).to(dtype)


def encode(text: str) -> Tensor:
    """A sequence as text ("a1b2c3??b") -> symbol indices (L,)."""
    try:
        return torch.tensor([ALPHABET.index(ch) for ch in text], dtype=torch.int64)
    except ValueError:
        raise UserError(f"ART sequence {text!r}: symbols must be in {ALPHABET!r}") from None


def decode(tokens: Tensor) -> str:
    """Symbol indices (L,) -> text."""
    return "".join(ALPHABET[int(t)] for t in tokens)
