"""Associative retrieval data: correct targets, structure, seeding, encoding."""

from __future__ import annotations

import pytest
import torch

from mstpn.errors import UserError
from mstpn.tasks import art


def test_example_from_the_paper():
    tokens = art.encode("a1b2c3??b")
    assert art.decode(tokens) == "a1b2c3??b"
    assert tokens.tolist() == [0, 27, 1, 28, 2, 29, 36, 36, 1]
    with pytest.raises(UserError):
        art.encode("a1B")


def test_targets_are_the_paired_digit():
    data = art.generate(3000, seed=5)
    assert data.tokens.shape == (3000, art.SEQ_LEN) and data.tokens.dtype == torch.int64
    assert data.targets.shape == (3000,) and len(data) == 3000
    for seq, target in zip(data.tokens.tolist(), data.targets.tolist(), strict=True):
        letters, digits = seq[0:6:2], seq[1:6:2]
        assert all(0 <= t < 26 for t in letters) and len(set(letters)) == 3
        assert all(26 <= t < 36 for t in digits)
        assert seq[6:8] == [art.QUERY_MARK, art.QUERY_MARK]
        assert seq[8] in letters
        assert target == digits[letters.index(seq[8])] - art.DIGIT_OFFSET
    # every query position and every digit occurs
    query_pos = (data.tokens[:, 0:6:2] == data.tokens[:, 8:9]).float().argmax(1)
    assert set(query_pos.tolist()) == {0, 1, 2}
    assert set(data.targets.tolist()) == set(range(10))


def test_text_round_trip_agrees_with_generator():
    data = art.generate(20, seed=1)
    for seq, target in zip(data.tokens, data.targets.tolist(), strict=True):
        text = art.decode(seq)
        assert int(text[text.index(text[-1]) + 1]) == target


def test_seeds_reproduce_and_splits_differ():
    a, b = art.generate(500, seed=3), art.generate(500, seed=3)
    assert torch.equal(a.tokens, b.tokens) and torch.equal(a.targets, b.targets)
    assert not torch.equal(a.tokens, art.generate(500, seed=4).tokens)
    assert not torch.equal(a.tokens, art.generate(500, seed=3, split="test").tokens)
    splits = art.generate_splits(art.ARTSizes(200, 50, 70), seed=3)
    assert [len(splits[s]) for s in ("train", "val", "test")] == [200, 50, 70]
    assert torch.equal(splits["train"].tokens, art.generate(200, seed=3).tokens)
    # the test set does not depend on the training set's size
    bigger = art.generate_splits(art.ARTSizes(400, 50, 70), seed=3)
    assert torch.equal(bigger["test"].tokens, splits["test"].tokens)


def test_one_hot():
    data = art.generate(8, seed=0)
    x = art.one_hot(data.tokens)
    assert x.shape == (8, art.SEQ_LEN, art.NUM_SYMBOLS) == (8, 9, 37) and x.dtype == torch.float32
    assert torch.equal(x.sum(-1), torch.ones(8, 9))
    assert torch.equal(x.argmax(-1), data.tokens)


@pytest.mark.parametrize(("kwargs", "match"), [({"n": 0}, "size"), ({"n": 5, "split": "dev"}, "split")])
def test_bad_arguments(kwargs, match):
    with pytest.raises(UserError, match=match):
        art.generate(**kwargs)
    with pytest.raises(UserError):
        art.ARTSizes(train=0)
