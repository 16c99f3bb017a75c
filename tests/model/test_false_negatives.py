"""In-batch false negatives: a candidate that answers the query never sits in its denominator."""

from __future__ import annotations

import math
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from src.data.datamodule import PairDataModule, pair_sampler
from src.data.lareqa import LareqaDataset, load_lareqa
from src.data.pairs import PairTable, build_pairs
from src.data.samplers import XY, Hybrid, LanguageBatchSampler, XXMono
from src.data.text import normalise
from src.model.loss import InfoNCELoss, RelevanceKeys, false_negative_mask, info_nce


def test_mask_exact() -> None:
    query_keys = torch.tensor([[5, 7], [3, -1]])
    cand = torch.tensor([5, 3, 7, 3, 9])  # positives 5 (q0), 3 (q1); then 7, 3, 9
    mask = false_negative_mask(query_keys, cand, torch.tensor([0, 1]))
    # q0 is answered by 5 (its label) and 7 (column 2); q1 by 3 at columns 1 (label) and 3
    assert mask.tolist() == [[False, False, True, False, False], [False, False, False, True, False]]
    # -1 pads never match a candidate key of -1
    assert not false_negative_mask(torch.tensor([[-1]]), torch.tensor([-1]), torch.tensor([0])).any()


def test_loss_with_a_planted_shared_answer() -> None:
    # q0 and q1 are different questions with the same answer sentence (key 4): q1's positive is relevant
    # to q0 and must leave q0's denominator (and vice versa); the hard negative (key 9) stays.
    q = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.6, 0.8]])
    p = torch.tensor([[1.0, 0.0], [0.8, 0.6], [0.0, 1.0]])
    n = torch.tensor([[0.0, -1.0]])
    keys = RelevanceKeys(query=torch.tensor([[4], [4], [2]]), positive=torch.tensor([4, 4, 2]),
                         negative=torch.tensor([9]))
    t = 0.5
    e = lambda s: math.exp(s / t)
    l0 = -math.log(e(1.0) / (e(1.0) + e(0.0) + e(0.0)))  # q0: p0 (label), p2, n; p1 masked
    l1 = -math.log(e(0.6) / (e(0.6) + e(1.0) + e(-1.0)))  # q1: p1 (label), p2, n; p0 masked
    l2 = -math.log(e(0.8) / (e(0.6) + e(0.96) + e(0.8) + e(-0.8)))  # q2: nothing shared
    loss_fn = InfoNCELoss(t)
    assert loss_fn(q, p, n, keys=keys).item() == pytest.approx((l0 + l1 + l2) / 3, rel=1e-6)
    assert int(loss_fn.last_masked) == 2
    unmasked = info_nce(q, p, n, t).item()
    assert unmasked > loss_fn(q, p, n, keys=keys).item()  # the relevant candidates were pushed away before
    # paper's equation: own positive + hard negatives; a relevant hard negative is masked there too
    keys_neg = RelevanceKeys(query=torch.tensor([[4], [4], [9]]), positive=torch.tensor([4, 4, 2]),
                             negative=torch.tensor([9]))
    m2 = -math.log(e(0.8) / e(0.8))  # q2's only hard negative answers it
    m0 = -math.log(e(1.0) / (e(1.0) + e(0.0)))
    m1 = -math.log(e(0.6) / (e(0.6) + e(-1.0)))
    got = InfoNCELoss(t, in_batch_positives=False)(q, p, n, keys=keys_neg).item()
    assert got == pytest.approx((m0 + m1 + m2) / 3, rel=1e-6)


class _KeysOnlyEncoder:
    """Just enough of a BiEncoder for PairDataModule.collate: one token per text (the keys are the point)."""

    pretrained = "stub"
    tokenizer: tuple[int, ...] = ()

    def __init__(self) -> None:
        self.prefixes, self.max_lengths = {"query": "", "passage": ""}, {"query": 1, "passage": 1}

    def tokenize(self, texts: list[str], side: str, contexts: Any = None) -> dict[str, list[list[int]]]:
        return {"input_ids": [[1] for _ in texts]}

    def pad(self, features: dict[str, list[list[int]]]) -> dict[str, torch.Tensor]:
        n = len(features["input_ids"])
        return {"input_ids": torch.ones(n, 1, dtype=torch.long), "attention_mask": torch.ones(n, 1, dtype=torch.long)}


def answers(ds: LareqaDataset, pairs: PairTable) -> dict[str, tuple[set[int], set[str]]]:
    """Independently of relevance_keys: each question id's answer passages (by index) and normalised texts."""
    index = {t: i for i, t in enumerate(pairs.passages)}  # build_pairs stores each candidate once, in order
    out: dict[str, tuple[set[int], set[str]]] = {}
    for split in ds.by_lang.values():
        sentence = {c.uid: c.sentence for c in split.candidates}
        for q in split.questions:
            idx, texts = out.setdefault(q.xling_id, (set(), set()))
            idx.add(index[sentence[q.relevant_uid]])
            texts.add(normalise(sentence[q.relevant_uid]))
    return out


@pytest.mark.parametrize("train_set", ["mlqa-r", "xquad-r"])
def test_no_unmasked_relevant_candidate(real_data: Path, train_set: str) -> None:
    langs = {"mlqa-r": ["ar", "de", "en", "es", "hi", "vi", "zh"],
             "xquad-r": ["ar", "de", "el", "en", "es", "hi", "ru", "th", "tr", "vi", "zh"]}[train_set]
    ds = load_lareqa(real_data / train_set, langs, train_set)
    pairs = build_pairs(ds, "sentence", hard_negatives=True, seed=0)
    truth = answers(ds, pairs)
    norm = [normalise(t) for t in pairs.passages]
    seen = hits = 0
    for structure in (XXMono(), XY(), Hybrid(alpha=0.5)):
        kind = structure.name
        sampler = pair_sampler(partial(LanguageBatchSampler, structure), pairs, batch_size=100, seed=1)
        dm = PairDataModule(pairs, _KeysOnlyEncoder(), sampler, batch_size=100)
        dm.setup("fit")
        for b, indices in zip(range(200), dm.batch_sampler):
            batch = dm.collate(indices)
            negs = [int(n) for n in pairs.neg_idx[indices] if n >= 0]
            rows = np.array([*pairs.p_idx[indices], *negs])
            mask = false_negative_mask(batch["query_keys"], batch["passage_keys"], torch.arange(len(indices)))
            for i, pair in enumerate(indices):
                idx, texts = truth[pairs.xling_id[pair]]
                relevant = np.array([r in idx or norm[r] in texts for r in rows])
                relevant[i] = False  # its own positive is the label
                seen += 1
                hits += bool(relevant.any())
                unmasked = relevant & ~mask[i].numpy()
                assert not unmasked.any(), (kind, b, pairs.xling_id[pair], rows[unmasked][:3])
    # not vacuous: shared answers are common on XQuAD-R (16-17 % of queries at batch 100), rarer on MLQA-R
    assert hits / seen > (0.10 if train_set == "xquad-r" else 0.003), hits / seen
