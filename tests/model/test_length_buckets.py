"""Length buckets: rows grouped by length, each group trimmed to its longest row; same embeddings and gradients."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from src.data.padding import LengthBuckets, round_up
from src.model.encoder import BiEncoder
from src.model.loss import InfoNCELoss
from src.model.weights.tiny import build_tiny_model
from tests.model.test_gradcache import NEGATIVES, PASSAGES, QUERIES, assert_same_grads, grads

# Lengths that differ a lot, as MLQA-R sentences do (5 to ~60 tokens).
LONG = [" ".join(f"word{j} of sentence {i}" for j in range(1 + 4 * i)) for i in range(8)]


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_model(QUERIES + PASSAGES + NEGATIVES + LONG, tmp_path_factory.mktemp("tiny") / "m",
                            vocab_size=300)


def test_from_lengths_groups_longest_first() -> None:
    b = LengthBuckets.from_lengths(np.array([3, 9, 5, 9, 1, 7, 2]), groups=3)
    assert [r.tolist() for r in b.rows] == [[1, 3, 5], [2, 0], [6, 4]]  # stable: the first 9 first
    assert b.widths == (9, 5, 2)
    order = torch.cat(b.rows)
    assert torch.equal(order[b.inverse], torch.arange(7))  # inverse restores the original row order


def test_widths_rounded_up_to_the_multiple() -> None:
    b = LengthBuckets.from_lengths(np.array([3, 9, 5, 16, 1, 7, 2]), groups=3, multiple=8)
    assert b.widths == (16, 8, 8)  # 16, 7, 3 rounded up
    assert [round_up(w, 8) for w in (1, 8, 9, 17)] == [8, 8, 16, 24]
    assert round_up(13, 1) == 13


def test_from_lengths_edge_cases() -> None:
    assert len(LengthBuckets.from_lengths(np.array([4, 2]), groups=8).rows) == 2  # never an empty group
    assert LengthBuckets.from_lengths(np.array([4, 2]), groups=1).widths == (4,)
    with pytest.raises(ValueError, match="groups must be >= 1, got 0"):
        LengthBuckets.from_lengths(np.array([1]), groups=0)


@pytest.mark.parametrize(("groups", "multiple"), [(2, 1), (3, 1), (8, 1), (3, 8)])
def test_same_embeddings_and_gradients(tiny_dir: Path, groups: int, multiple: int) -> None:
    enc = BiEncoder(str(tiny_dir), max_passage_length=96, pad_to_multiple_of=multiple)
    enc.eval()  # no dropout: both paths must see the same function
    texts = PASSAGES + LONG + NEGATIVES
    side = enc.pad(enc.tokenize(texts, "passage"))
    queries = enc.pad(enc.tokenize(QUERIES + QUERIES[:len(LONG) + len(NEGATIVES)], "query"))
    buckets = LengthBuckets.from_lengths(side["attention_mask"].sum(1).numpy(), groups, multiple)
    assert all(w % multiple == 0 for w in buckets.widths) and side["input_ids"].shape[1] % multiple == 0
    exact = BiEncoder.pad(SimpleNamespace(tokenizer=enc.tokenizer, pad_to_multiple_of=1), enc.tokenize(texts, "passage"))
    torch.testing.assert_close(enc(**side), enc(**exact), rtol=1e-5, atol=1e-6)  # padding is masked
    assert sum(len(r) * w for r, w in zip(buckets.rows, buckets.widths)) < side["input_ids"].numel()
    loss_fn = InfoNCELoss(temperature=0.05)

    plain = enc.embed(side)
    loss_fn(enc(**queries), plain).backward()
    g_plain = grads(enc)
    bucketed = enc.embed(side, buckets)
    loss_fn(enc(**queries), bucketed).backward()
    g_bucketed = grads(enc)
    torch.testing.assert_close(bucketed, plain, rtol=1e-5, atol=1e-6)
    assert_same_grads(g_bucketed, g_plain, rtol=1e-4, atol=1e-6)
