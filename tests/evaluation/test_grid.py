"""Grid evaluation: pair counts, relevance links, and an oracle encoder scoring perfectly."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from src.data.lareqa import LareqaDataset, load_lareqa
from src.evaluation.grid import Embeddings, relevance, score_grid


def oracle_embeddings(ds: LareqaDataset) -> Embeddings:
    """A question and all its relevant sentences share one vector of their own (one axis per xling_id)."""
    ids = sorted({q.xling_id for s in ds.by_lang.values() for q in s.questions})
    axis = {x: i for i, x in enumerate(ids)}
    dim = len(ids) + 1
    questions, candidates = {}, {}
    for lang, split in ds.by_lang.items():
        q = np.zeros((len(split.questions), dim), dtype=np.float32)
        for i, rec in enumerate(split.questions):
            q[i, axis[rec.xling_id]] = 1.0
        c = np.zeros((len(split.candidates), dim), dtype=np.float32)
        c[:, -1] = 1.0  # non-answer sentences point away from every question
        row = {cand.uid: i for i, cand in enumerate(split.candidates)}
        for rec in split.questions:
            c[row[rec.relevant_uid], -1] = 0.0
            c[row[rec.relevant_uid], axis[rec.xling_id]] = 1.0
        questions[lang] = q
        candidates[lang] = c / np.linalg.norm(c, axis=1, keepdims=True)
    return Embeddings(questions, candidates)


def test_relevance_links_parallel_answers(lareqa_dir: Path) -> None:
    ds = load_lareqa(lareqa_dir, ["en", "de", "zh"])
    # en questions q1..q4 against zh candidates: q3 has no zh version -> -1
    assert relevance(ds, "en", ["zh"])[:, 0].tolist() == [0, 1, -1, 3]
    pooled = relevance(ds, "zh", ["en", "de", "zh"])  # zh asks q1, q2, q4; offsets 0, 5, 10
    assert pooled.tolist() == [[0, 5, 10], [1, 6, 11], [3, 8, 13]]


def test_oracle_scores_perfectly_on_fixture(lareqa_dir: Path) -> None:
    ds = load_lareqa(lareqa_dir, ["en", "de", "zh"])
    res = score_grid(ds, oracle_embeddings(ds))
    assert len(res.pairs) == 9 and len(res.multi) == 3
    s = res.summary()
    for setting in ("mono", "cross", "multi"):
        assert s[f"mini/{setting}/map"] == pytest.approx(1.0)
    # en asks q1..q4: q3 exists in en+de only -> relevant counts 3,3,2,3 -> rank distance 2,2,1,2
    assert s["mini/multi/rank_distance/en"] == pytest.approx(7 / 4)
    assert s["mini/cross/missing_queries"] == 2  # q3 from en and de has no zh answer


def test_real_grid_shape_and_oracle(real_data: Path) -> None:
    for folder, langs, n_pairs in (("xquad-r", "ar de el en es hi ru th tr vi zh", 121),
                                   ("mlqa-r", "ar de en es hi vi zh", 49)):
        ds = load_lareqa(real_data / folder, langs.split(), folder.replace("-", "_"))
        res = score_grid(ds, oracle_embeddings(ds))
        assert len(res.pairs) == n_pairs
        s = res.summary()
        name = ds.name
        assert sum(k.count("/") == 3 and k.startswith(f"{name}/cross/map/") and "-" in k for k in s) == \
            n_pairs - len(ds.languages)
        for setting in ("mono", "cross", "multi"):
            assert s[f"{name}/{setting}/map"] == pytest.approx(1.0)
        if folder == "xquad-r":
            assert s[f"{name}/multi/rank_distance"] == pytest.approx(10.0)
            assert s[f"{name}/cross/missing_queries"] == 0
        else:
            assert s[f"{name}/cross/missing_queries"] > 0
