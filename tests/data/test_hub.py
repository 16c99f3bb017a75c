"""Parallel hub datasets (mMARCO layout) -> pairs; loaded here from local save_to_disk folders."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import datasets
import pytest

from src.data.hub import build_parallel_pairs

ROWS = {
    "english": [("what is a cat", "a cat is an animal", "paris is a city"),
                ("where is berlin", "berlin is in germany", "cats sleep a lot")],
    "german": [("was ist eine katze", "eine katze ist ein tier", "paris ist eine stadt"),
               ("wo liegt berlin", "berlin liegt in deutschland", "katzen schlafen viel")],
}


@pytest.fixture
def mmarco_dir(tmp_path: Path) -> Path:
    for subset, rows in ROWS.items():
        q, p, n = zip(*rows)
        datasets.Dataset.from_dict({"query": q, "positive": p, "negative": n}).save_to_disk(tmp_path / subset)
    return tmp_path


def test_parallel_pairs_every_language_pair(mmarco_dir: Path) -> None:
    pairs = build_parallel_pairs(str(mmarco_dir), ["en", "de"], {"en": "english", "de": "german"})
    assert len(pairs) == 2 * 4
    assert Counter(zip(pairs.q_lang, pairs.p_lang)) == {("en", "en"): 2, ("en", "de"): 2, ("de", "en"): 2,
                                                         ("de", "de"): 2}
    i = next(k for k in range(len(pairs)) if (pairs.q_lang[k], pairs.p_lang[k], pairs.xling_id[k]) == ("de", "en", "1"))
    assert pairs.queries[pairs.q_idx[i]] == "wo liegt berlin"
    assert pairs.passages[pairs.p_idx[i]] == "berlin is in germany"
    assert pairs.passages[pairs.neg_idx[i]] == "cats sleep a lot"


def test_without_negatives_and_row_cap(mmarco_dir: Path) -> None:
    pairs = build_parallel_pairs(str(mmarco_dir), ["en", "de"], {"en": "english", "de": "german"},
                                 max_rows=1, columns={"negative": None})
    assert len(pairs) == 4 and (pairs.neg_idx == -1).all()


def test_errors_name_the_problem(mmarco_dir: Path) -> None:
    with pytest.raises(ValueError, match="subsets has no entry"):
        build_parallel_pairs(str(mmarco_dir), ["en", "fr"], {"en": "english"})
    with pytest.raises(ValueError, match=r"columns \['answer'\] missing"):
        build_parallel_pairs(str(mmarco_dir), ["en"], {"en": "english"}, columns={"positive": "answer"})
    with pytest.raises(FileNotFoundError, match="save_to_disk"):
        build_parallel_pairs(str(mmarco_dir / "nowhere"), ["en"], {"en": "english"})
