"""Training pairs: every ordered language pair per xling_id, positives and hard negatives."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from src.data.lareqa import load_lareqa
from src.data.pairs import build_pairs


def test_pairs_cover_every_ordered_language_pair(lareqa_dir: Path) -> None:
    ds = load_lareqa(lareqa_dir, ["en", "de", "zh"])
    pairs = build_pairs(ds, hard_negatives=True, seed=0)
    # q1, q2, q4 exist in 3 languages (9 ordered pairs each), q3 in 2 (4 pairs).
    assert len(pairs) == 3 * 9 + 4
    counts = Counter(pairs.xling_id)
    assert counts == {"q1": 9, "q2": 9, "q3": 4, "q4": 9}
    i = next(k for k in range(len(pairs)) if pairs.xling_id[k] == "q3" and pairs.q_lang[k] == "en"
             and pairs.p_lang[k] == "de")
    assert pairs.queries[pairs.q_idx[i]] == "Where is Berlin?"
    assert pairs.passages[pairs.p_idx[i]] == "Berlin liegt in Deutschland."
    # the hard negative is the other sentence of the same German paragraph
    assert pairs.passages[pairs.neg_idx[i]] == "Paris liegt in Frankreich."


def test_no_negatives_and_context_text(lareqa_dir: Path) -> None:
    ds = load_lareqa(lareqa_dir, ["en", "de"])
    pairs = build_pairs(ds, candidate_text="sentence_context", hard_negatives=False)
    assert (pairs.neg_idx == -1).all()
    assert pairs.passage_contexts is not None
    assert pairs.passage_contexts[0].startswith("The cat sat on the mat. It was warm.")
    with pytest.raises(ValueError, match="candidate_text"):
        build_pairs(ds, candidate_text="paragraph")  # type: ignore[arg-type]


def test_real_mlqa_pair_count(real_data: Path) -> None:
    ds = load_lareqa(real_data / "mlqa-r", ["ar", "de", "en", "es", "hi", "vi", "zh"])
    pairs = build_pairs(ds)
    # 820 ids in 4 languages, 263 in 3, 65 in 2 -> 820*16 + 263*9 + 65*4
    assert len(pairs) == 15_747
    assert sum(a == b for a, b in zip(pairs.q_lang, pairs.p_lang)) == 4_199
