"""Post-hoc debiasing: a planted per-language offset is removed exactly by `center` and by `lir` (k=1)."""

from __future__ import annotations

import numpy as np
import pytest

from src.evaluation.debias import debias_embeddings, language_directions, normalise, remove_language
from src.evaluation.grid import Embeddings

DIM, ITEMS = 16, 40


def planted(seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Parallel items in 3 languages: shared zero-mean content orthogonal to big per-language offsets."""
    rng = np.random.default_rng(seed)
    basis, _ = np.linalg.qr(rng.normal(size=(DIM, DIM)))
    offsets = 5.0 * basis[:3]  # one orthogonal offset direction per language
    content = rng.normal(size=(ITEMS, DIM - 3)) @ basis[3:]
    is_cand = np.tile(np.arange(ITEMS) % 2 == 0, 3)  # half of each language's rows are candidates
    content -= content[::2].mean(axis=0)  # zero mean over the candidates: their language mean is the offset
    langs = np.repeat(np.array(["ar", "de", "en"]), ITEMS)
    emb = np.concatenate([content + o for o in offsets])
    return emb, langs, is_cand, content, offsets


def debias(emb: np.ndarray, langs: np.ndarray, is_cand: np.ndarray, method: str, k: int = 1) -> np.ndarray:
    """The flat test arrays through debias_embeddings: non-candidates play the questions."""
    names = list(dict.fromkeys(langs))
    e = Embeddings({x: emb[(langs == x) & ~is_cand] for x in names}, {x: emb[(langs == x) & is_cand] for x in names})
    out = debias_embeddings(e, method, k)  # type: ignore[arg-type]
    flat = np.empty_like(emb)
    for x in names:
        flat[(langs == x) & ~is_cand], flat[(langs == x) & is_cand] = out.questions[x], out.candidates[x]
    return flat


def test_center_removes_a_planted_offset_exactly() -> None:
    emb, langs, is_cand, _, _ = planted()
    out = debias(emb, langs, is_cand, "center")
    per_lang = out.reshape(3, ITEMS, DIM)
    np.testing.assert_allclose(per_lang[0], per_lang[1], atol=1e-12)  # parallel rows now coincide
    np.testing.assert_allclose(per_lang[0], per_lang[2], atol=1e-12)
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0)


def test_lir_removes_the_top_direction_exactly() -> None:
    emb, langs, is_cand, _, offsets = planted()
    rows = langs == "de"
    v = language_directions(emb[rows & is_cand], 1)[0]
    assert abs(abs(v @ offsets[1] / np.linalg.norm(offsets[1])) - 1.0) < 1e-9  # the offset is the top direction
    out = debias(emb, langs, is_cand, "lir", k=1)
    per_lang = out.reshape(3, ITEMS, DIM)
    np.testing.assert_allclose(per_lang[0], per_lang[1], atol=1e-9)
    np.testing.assert_allclose(per_lang[1], per_lang[2], atol=1e-9)
    assert np.abs(out[rows] @ v).max() < 1e-9


def test_lir_k_directions_are_orthonormal_and_capped() -> None:
    x = np.random.default_rng(1).normal(size=(5, 8))
    v = language_directions(x, 3)
    np.testing.assert_allclose(v @ v.T, np.eye(3), atol=1e-12)
    assert language_directions(x, 50).shape == (5, 8)  # at most rank-many directions
    with pytest.raises(ValueError, match="k must be >= 1"):
        language_directions(x, 0)


def test_none_is_the_identity_and_bad_input_is_named() -> None:
    emb = np.random.default_rng(2).normal(size=(4, 3))
    assert remove_language(emb, emb, "none") is emb
    with pytest.raises(ValueError, match="eval.debias='pca'"):
        remove_language(emb, emb, "pca")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="at least one candidate"):
        remove_language(emb, emb[:0], "center")


def test_normalise_keeps_zero_rows() -> None:
    out = normalise(np.array([[3.0, 4.0], [0.0, 0.0]]))
    np.testing.assert_allclose(out, [[0.6, 0.8], [0.0, 0.0]])


class TableEncoder:
    """Stands in for BiEncoder.encode: each (side, text) maps to a fixed vector."""

    def __init__(self, table: dict[tuple[str, str], np.ndarray]) -> None:
        self.table = table

    def encode(self, texts, side, ctx=None, batch_size=32, autocast_dtype=None, on_batch=None):
        if on_batch is not None:
            on_batch(len(texts))
        return np.stack([self.table[(side, t)] for t in texts])


def test_evaluate_sets_scores_each_method_as_its_own_set(lareqa_dir) -> None:
    from src.core import keys
    from src.data.lareqa import load_lareqa
    from src.evaluation.driver import evaluate_sets
    from tests.evaluation.test_grid import oracle_embeddings

    ds = load_lareqa(lareqa_dir, ["en", "de", "zh"])
    oracle = oracle_embeddings(ds)
    offsets = {lang: np.eye(oracle.questions["en"].shape[1] + 3)[-1 - i] * 3.0 for i, lang in enumerate(ds.languages)}
    pad = lambda v, lang: np.concatenate([v, np.zeros(3)]) + offsets[lang]  # planted language bias
    table = {}
    for lang, split in ds.by_lang.items():
        for rec, v in zip(split.questions, oracle.questions[lang]):
            table[("query", rec.text)] = pad(v, lang)
        for rec, v in zip(split.candidates, oracle.candidates[lang]):
            table[("passage", rec.sentence)] = pad(v, lang)
    metrics, results, embeddings = evaluate_sets(TableEncoder(table), {"mini": ds}, 32, debias=("center", "lir"))
    assert set(results) == set(embeddings) == {"mini", "mini.center", "mini.lir"}
    assert results["mini.lir"].dataset == "mini.lir"
    raw, center, lir = (metrics[keys.key(s, keys.MULTI, "map")] for s in ("mini", "mini.center", "mini.lir"))
    assert raw < 0.9 and center > raw and lir > raw  # the planted bias hurts the pooled setting; both remove it
    assert metrics[keys.key("mini.lir", keys.MULTI, keys.RANK_DISTANCE)] < metrics[keys.key("mini", keys.MULTI, keys.RANK_DISTANCE)]
    assert metrics[keys.time_key("mini.center", "score")] >= 0
