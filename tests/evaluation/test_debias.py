"""Post-hoc debiasing: a planted per-language offset is removed exactly by `center` and by `lir` (k=1)."""

from __future__ import annotations

import numpy as np
import pytest

from src.evaluation.debias import debias, language_directions, normalise, remove_language

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
    emb, langs, is_cand, _, _ = planted()
    assert debias(emb, langs, is_cand, "none") is emb
    with pytest.raises(ValueError, match="eval.debias='pca'"):
        remove_language(emb[:4], emb[:4], "pca")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="at least one candidate"):
        remove_language(emb[:4], emb[:0], "center")
    with pytest.raises(ValueError, match="differ in length"):
        debias(emb, langs[:-1], is_cand, "center")


def test_normalise_keeps_zero_rows() -> None:
    out = normalise(np.array([[3.0, 4.0], [0.0, 0.0]]))
    np.testing.assert_allclose(out, [[0.6, 0.8], [0.0, 0.0]])
