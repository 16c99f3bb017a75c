"""Validation split: by question id, the same for every seed and sampler, never in training."""

from __future__ import annotations

from pathlib import Path

import pytest

from src.data.lareqa import load_lareqa
from src.data.pairs import build_pairs
from src.data.validation import held_out, retrieval_subset, split_by_question


def test_held_out_is_a_pure_function_of_the_id() -> None:
    ids = [f"q{i}" for i in range(20000)]
    share = sum(held_out(x, 0.05) for x in ids) / len(ids)
    assert 0.045 < share < 0.055
    assert [held_out(x, 0.05) for x in ids[:50]] == [held_out(x, 0.05) for x in ids[:50]]
    assert not any(held_out(x, 0.0) for x in ids[:100])
    with pytest.raises(ValueError, match=r"fraction=1.0: expected a fraction in \[0, 1\)"):
        held_out("q1", 1.0)


def test_split_on_real_mlqa_r(real_data: Path) -> None:
    langs = ["ar", "de", "en", "es", "hi", "vi", "zh"]
    full = load_lareqa(real_data / "mlqa-r", langs, "mlqa_r")
    train, val = split_by_question(full, 0.05)
    train_ids = {q.xling_id for s in train.by_lang.values() for q in s.questions}
    val_ids = {q.xling_id for s in val.by_lang.values() for q in s.questions}
    assert train_ids.isdisjoint(val_ids) and len(train_ids | val_ids) == len(
        {q.xling_id for s in full.by_lang.values() for q in s.questions})
    assert 0.03 < len(val_ids) / len(train_ids | val_ids) < 0.07
    assert train.num_questions + val.num_questions == full.num_questions
    # a held-out question is held out in every language it exists in: no translation leaks into training
    pairs = build_pairs(train, "sentence", True, seed=3)
    assert val_ids.isdisjoint(pairs.xling_id)
    sub = retrieval_subset(val)
    for lang, split in sub.by_lang.items():
        uids = {c.uid for c in split.candidates}
        assert all(q.relevant_uid in uids for q in split.questions), lang
        assert len(split.candidates) < len(full.by_lang[lang].candidates) / 5  # small: answer paragraphs only
