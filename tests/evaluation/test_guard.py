"""Zero-shot guard: overlap found by normalised text, reported with count and examples."""

from __future__ import annotations

from pathlib import Path

import pytest

from src.data.lareqa import load_lareqa
from src.evaluation.guard import ZeroShotOverlapError, check_zero_shot, find_overlap, normalise


def test_normalise() -> None:
    assert normalise("  Where  is\tＢerlin? ") == normalise("where is berlin?") == "where is berlin?"


def test_overlap_counts_and_examples(lareqa_dir: Path) -> None:
    ds = load_lareqa(lareqa_dir, ["en", "de", "zh"], "mini")
    train = ["WHERE did the cat   sit?", "Berlin liegt in Deutschland.", "unrelated text here", "It was warm."]
    report = find_overlap(train, {"mini": ds}, min_chars=10)
    # "It was warm." has 9 letters: below min_chars, boilerplate-sized, not counted
    assert report.counts == {"mini": 2}
    assert set(report.examples["mini"]) == {"Where did the cat sit?", "Berlin liegt in Deutschland."}
    with pytest.raises(ZeroShotOverlapError, match=r"2 evaluation texts.*eval.allow_overlap"):
        check_zero_shot(train, {"mini": ds})
    assert check_zero_shot(train, {"mini": ds}, allow_overlap=True).total == 2
    assert find_overlap(train, {"mini": ds}, min_chars=0).counts == {"mini": 3}


def test_real_sets_are_disjoint(real_data: Path) -> None:
    from src.data.pairs import build_pairs

    mlqa = load_lareqa(real_data / "mlqa-r", ["ar", "de", "en", "es", "hi", "vi", "zh"])
    xquad = load_lareqa(real_data / "xquad-r", ["ar", "de", "el", "en", "es", "hi", "ru", "th", "tr", "vi", "zh"], "xquad_r")
    pairs = build_pairs(mlqa)
    assert check_zero_shot(pairs.queries + pairs.passages, {"xquad_r": xquad}).total == 0
    # Only two boilerplate strings are shared ('[citation needed]' in Hindi and 'A.').
    assert find_overlap(pairs.queries + pairs.passages, {"xquad_r": xquad}, min_chars=0).total == 2
