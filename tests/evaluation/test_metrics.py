"""Hand-computed and property tests for src.evaluation.metrics."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from src.evaluation import metrics
from src.evaluation.metrics import (
    average_precision,
    mean_ignoring_missing,
    ndcg_at_k,
    per_query_metrics,
    rank_distance,
    ranks_from_embeddings,
    ranks_of_views,
    recall_at_k,
    reciprocal_rank,
    relevant_ranks,
    success_at_k,
)

INV_LOG2_3 = 1.0 / math.log2(3)  # discount at rank 2
INV_LOG2_6 = 1.0 / math.log2(6)  # discount at rank 5
INV_LOG2_11 = 1.0 / math.log2(11)  # discount at rank 10


def _stable_sort_ranks(scores: np.ndarray, rel: np.ndarray) -> np.ndarray:
    """Reference ranks: position in a stable argsort of -scores (ties -> lower index first)."""
    order = np.argsort(-scores, axis=1, kind="stable")
    rank_of = np.empty_like(order)
    rows = np.arange(scores.shape[0])[:, None]
    rank_of[rows, order] = np.arange(1, scores.shape[1] + 1)[None, :]
    safe = np.where(rel >= 0, rel, 0)
    return np.where(rel >= 0, np.take_along_axis(rank_of, safe, axis=1), 0)


# ---------------------------------------------------------------------------------------------
# relevant_ranks: hand-worked rankings
# ---------------------------------------------------------------------------------------------


def test_ties_broken_by_lower_column_index_both_orders() -> None:
    scores = np.array(
        [
            # ranking: col1 (0.9), col4 (0.9, tie -> after col1), col0 (0.5), col2 (0.5), col3 (0.1)
            [0.5, 0.9, 0.5, 0.1, 0.9],
            # ranking: col0 (0.9), col3 (0.9), col2 (0.5), col4 (0.5), col1 (0.1)
            [0.9, 0.1, 0.5, 0.9, 0.5],
        ]
    )
    rel = np.array(
        [
            [4, 2, -1],  # col4 -> 2, col2 -> 4 (higher index of each tie listed)
            [3, 0, 1],  # col3 -> 2, col0 -> 1 (tie in both listing orders), col1 last of 5 -> 5
        ]
    )
    np.testing.assert_array_equal(relevant_ranks(scores, rel), [[2, 4, 0], [2, 1, 5]])


def test_tie_where_lower_index_is_relevant_item() -> None:
    # col0 and col2 tie at 0.7 behind col1 (0.8): col0 -> 2, col2 -> 3; col3 (0.2) last -> 4.
    scores = np.array([[0.7, 0.8, 0.7, 0.2]])
    np.testing.assert_array_equal(relevant_ranks(scores, np.array([[0]])), [[2]])
    np.testing.assert_array_equal(relevant_ranks(scores, np.array([[2]])), [[3]])
    np.testing.assert_array_equal(relevant_ranks(scores, np.array([[3]])), [[4]])


def test_all_scores_equal_rank_is_index_plus_one() -> None:
    scores = np.zeros((2, 4))
    rel = np.array([[3, 0], [1, -1]])
    np.testing.assert_array_equal(relevant_ranks(scores, rel), [[4, 1], [2, 0]])


def test_relevant_ranked_last_in_pool() -> None:
    # Descending order: col1 (5), col3 (4), col0 (3), col4 (2), col2 (1) -> col2 is last (5 of 5).
    scores = np.array([[3.0, 5.0, 1.0, 4.0, 2.0]])
    np.testing.assert_array_equal(relevant_ranks(scores, np.array([[2]])), [[5]])
    # Same with every other score tied above it.
    np.testing.assert_array_equal(relevant_ranks(np.array([[1.0, 1.0, 0.0]]), np.array([[2]])), [[3]])


def test_padding_anywhere_and_rows_without_relevant() -> None:
    scores = np.array([[0.1, 0.3, 0.2], [0.3, 0.2, 0.1]])
    # Row 0: order col1, col2, col0; padding first then col0 -> [0, 3]. Row 1: no relevant.
    rel = np.array([[-1, 0], [-1, -1]])
    np.testing.assert_array_equal(relevant_ranks(scores, rel), [[0, 3], [0, 0]])


def test_integer_and_infinite_scores() -> None:
    # Integer scores: order col2 (7), col0 (3), col1 (3, tie) -> col1 is 3rd.
    np.testing.assert_array_equal(relevant_ranks(np.array([[3, 3, 7]]), np.array([[1, 2]])), [[3, 1]])
    # +/-inf are ordinary extremes: order col1 (inf), col2 (0), col0 (-inf).
    s = np.array([[-np.inf, np.inf, 0.0]])
    np.testing.assert_array_equal(relevant_ranks(s, np.array([[0, 1, 2]])), [[3, 1, 2]])


def test_zero_width_rel_gives_empty_ranks() -> None:
    out = relevant_ranks(np.zeros((3, 4)), np.zeros((3, 0), dtype=np.int64))
    assert out.shape == (3, 0)
    assert np.isnan(average_precision(out)).all()


def test_nan_scores_raise() -> None:
    with pytest.raises(ValueError, match="NaN"):
        relevant_ranks(np.array([[0.1, np.nan]]), np.array([[0]]))


@pytest.mark.parametrize(
    "rel",
    [
        np.array([[3]]),  # out of range (3 candidates)
        np.array([[-2]]),  # only -1 is padding
        np.array([[1, 1]]),  # duplicate relevant index
        np.array([0, 1]),  # not 2-D
        np.array([[0], [1]]),  # wrong number of rows
    ],
)
def test_invalid_rel_raises(rel: np.ndarray) -> None:
    with pytest.raises(ValueError):
        relevant_ranks(np.zeros((1, 3)), rel)


def test_float_rel_raises() -> None:
    with pytest.raises(TypeError):
        relevant_ranks(np.zeros((1, 3)), np.array([[0.0]]))


def test_forced_subchunking_matches(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(0)
    scores = rng.integers(0, 3, size=(23, 17)).astype(np.float32)
    rel = np.stack([rng.permutation(17)[:4] for _ in range(23)])
    rel[::5, 2:] = -1
    expected = _stable_sort_ranks(scores, rel)
    # Budget of 1 comparison -> one query row per internal chunk.
    monkeypatch.setattr(metrics, "_MAX_COMPARISONS", 1)
    np.testing.assert_array_equal(relevant_ranks(scores, rel), expected)
    monkeypatch.setattr(metrics, "_MAX_COMPARISONS", 4 * 17 * 3)  # 3 rows per chunk, ragged tail
    np.testing.assert_array_equal(relevant_ranks(scores, rel), expected)


@st.composite
def _tied_problem(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray]:
    """Random (scores, rel) with scores from a handful of integers so ties are common."""
    nq = draw(st.integers(1, 6))
    nc = draw(st.integers(1, 12))
    n_values = draw(st.integers(1, 4))
    flat = draw(st.lists(st.integers(0, n_values - 1), min_size=nq * nc, max_size=nq * nc))
    scores = np.array(flat, dtype=np.float64).reshape(nq, nc) / 2.0
    max_rel = draw(st.integers(0, min(nc, 4)))
    rel = np.full((nq, max_rel), -1, dtype=np.int64)
    for i in range(nq):
        chosen = draw(st.lists(st.integers(0, nc - 1), max_size=max_rel, unique=True))
        slots = draw(st.permutations(range(max_rel)))[: len(chosen)]
        rel[i, slots] = chosen
    return scores, rel


@settings(max_examples=300, deadline=None, database=None)
@given(_tied_problem())
def test_property_counting_equals_stable_argsort(problem: tuple[np.ndarray, np.ndarray]) -> None:
    scores, rel = problem
    np.testing.assert_array_equal(relevant_ranks(scores, rel), _stable_sort_ranks(scores, rel))


def test_numpy_random_many_ties_equals_stable_argsort() -> None:
    rng = np.random.default_rng(1234)
    for _ in range(20):
        nq, nc = rng.integers(1, 40), rng.integers(1, 300)
        scores = rng.integers(-2, 3, size=(nq, nc)).astype(np.float32)
        m = int(rng.integers(0, min(nc, 11) + 1))
        rel = np.stack([rng.permutation(nc)[:m] for _ in range(nq)]).reshape(nq, m)
        rel[rng.random((nq, m)) < 0.2] = -1
        np.testing.assert_array_equal(relevant_ranks(scores, rel), _stable_sort_ranks(scores, rel))


@pytest.mark.parametrize("sort_from", [1, 99])
def test_sorting_and_counting_paths_equal_stable_argsort(monkeypatch: pytest.MonkeyPatch, sort_from: int) -> None:
    # sort_from=1: every block through sort + bisection; 99: every block through one counting pass per column.
    monkeypatch.setattr(metrics, "_SORT_FROM_N_RELEVANT", sort_from)
    rng = np.random.default_rng(99)
    for _ in range(30):
        nq, nc = rng.integers(1, 30), rng.integers(1, 200)
        scores = rng.integers(-2, 3, size=(nq, nc)).astype(np.float32)
        scores[:, :: max(1, nc // 7)] = -np.inf  # excluded columns tie among themselves at -inf
        m = int(rng.integers(0, min(nc, 11) + 1))
        rel = np.stack([rng.permutation(nc)[:m] for _ in range(nq)]).reshape(nq, m)
        rel[rng.random((nq, m)) < 0.2] = -1
        np.testing.assert_array_equal(relevant_ranks(scores, rel), _stable_sort_ranks(scores, rel))


# ---------------------------------------------------------------------------------------------
# ranks_from_embeddings
# ---------------------------------------------------------------------------------------------


def _random_rel(rng: np.random.Generator, nq: int, nc: int, m: int) -> np.ndarray:
    rel = np.stack([rng.permutation(nc)[:m] for _ in range(nq)])
    rel[rng.random((nq, m)) < 0.15] = -1
    rel[3] = -1  # one query with no relevant candidate at all
    return rel


@pytest.mark.parametrize("block_size", [1, 8, 36, 37, 1000])
def test_embeddings_blockwise_equals_full_matrix_with_ties(block_size: int) -> None:
    rng = np.random.default_rng(7)
    # Small-integer embeddings: products are exact in float32, so many exact score ties occur and
    # the blockwise result must match the full-matrix result bit for bit.
    q = rng.integers(-1, 2, size=(37, 4)).astype(np.float32)
    c = rng.integers(-1, 2, size=(90, 4)).astype(np.float32)
    rel = _random_rel(rng, 37, 90, 5)
    full = relevant_ranks(q @ c.T, rel)
    assert len(np.unique(q @ c.T)) < 20  # sanity: the test really exercises ties
    np.testing.assert_array_equal(ranks_from_embeddings(q, c, rel, block_size=block_size), full)
    np.testing.assert_array_equal(full, _stable_sort_ranks(q @ c.T, rel))


def test_embeddings_blockwise_equals_full_matrix_gaussian() -> None:
    rng = np.random.default_rng(11)
    q = rng.standard_normal((50, 32)).astype(np.float32)
    c = rng.standard_normal((400, 32)).astype(np.float32)
    rel = _random_rel(rng, 50, 400, 11)
    np.testing.assert_array_equal(ranks_from_embeddings(q, c, rel, block_size=16), relevant_ranks(q @ c.T, rel))


def test_views_equal_one_call_per_slice_and_exclude_only_where_inside() -> None:
    rng = np.random.default_rng(5)
    q = rng.integers(-1, 2, size=(41, 6)).astype(np.float32)  # exact products: many ties
    c = rng.integers(-1, 2, size=(3 * 30, 6)).astype(np.float32)
    segments = [slice(0, 30), slice(30, 60), slice(60, 90)]
    exclude = 30 + rng.integers(0, 30, size=41)  # one column of the middle segment per query
    exclude[::4] = -1
    rel_seg = [np.stack([rng.permutation(30)[:1] for _ in range(41)]) for _ in segments]
    rel_seg[1] = np.where(rel_seg[1] == (exclude - 30)[:, None], -1, rel_seg[1])
    pooled = np.stack([rng.permutation(90)[:5] for _ in range(41)])
    pooled = np.where(pooled == exclude[:, None], -1, pooled)
    views = [(sl, r) for sl, r in zip(segments, rel_seg)] + [(slice(None), pooled)]
    got = ranks_of_views(q, c, views, block_size=8, exclude=exclude)
    inside = np.where(exclude >= 0, exclude - 30, -1)
    expected = [ranks_from_embeddings(q, c[segments[0]], rel_seg[0]),
                ranks_from_embeddings(q, c[segments[1]], rel_seg[1], exclude=inside),
                ranks_from_embeddings(q, c[segments[2]], rel_seg[2]),
                ranks_from_embeddings(q, c, pooled, exclude=exclude)]
    for g, e in zip(got, expected):
        np.testing.assert_array_equal(g, e)
    with pytest.raises(ValueError, match="contiguous slice"):
        ranks_of_views(q, c, [(slice(0, 90, 2), pooled)])
    with pytest.raises(ValueError, match="select no candidate"):
        ranks_of_views(q, c, [(slice(50, 50), pooled)])
    with pytest.raises(ValueError, match="exclude names a relevant"):
        ranks_of_views(q, c, [(slice(30, 60), np.where(exclude >= 0, exclude - 30, 0)[:, None])], exclude=exclude)


def test_column_slice_of_a_blas_product_equals_the_product_with_the_slice() -> None:
    # ranks_of_views relies on it: X->Y read from X->pool must give the very float32 scores of X->Y alone.
    rng = np.random.default_rng(3)
    q = rng.standard_normal((256, 384)).astype(np.float32)
    pool = rng.standard_normal((5 * 700, 384)).astype(np.float32)
    full = q @ pool.T
    for k in range(5):
        np.testing.assert_array_equal(full[:, k * 700:(k + 1) * 700], q @ pool[k * 700:(k + 1) * 700].T)


def test_embeddings_hand_example() -> None:
    # Scores q0: [1, 2, 1] -> order c1, c0, c2; q1: [0, 0, 3] -> order c2, c0, c1.
    q = np.array([[1.0, 0.0], [0.0, 1.0]], dtype=np.float32)
    c = np.array([[1.0, 0.0], [2.0, 0.0], [1.0, 3.0]], dtype=np.float32)
    rel = np.array([[2, 0], [1, -1]])
    np.testing.assert_array_equal(ranks_from_embeddings(q, c, rel, block_size=1), [[3, 2], [3, 0]])


def test_embeddings_errors() -> None:
    q = np.ones((2, 3), dtype=np.float32)
    c = np.ones((4, 3), dtype=np.float32)
    rel = np.array([[0], [1]])
    with pytest.raises(ValueError):
        ranks_from_embeddings(q, c, rel, block_size=0)
    with pytest.raises(ValueError):
        ranks_from_embeddings(q, np.ones((4, 2), dtype=np.float32), rel)
    bad = c.copy()
    bad[2, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        ranks_from_embeddings(q, bad, rel)


# ---------------------------------------------------------------------------------------------
# Metrics from ranks: exact hand-computed values
# ---------------------------------------------------------------------------------------------

# Row 0: ranks {1, 3}; row 1: {2}; row 2: no relevant; row 3: {5, 2, 10} (unsorted on purpose).
RANKS = np.array([[1, 3, 0], [2, 0, 0], [0, 0, 0], [5, 2, 10]])


def _assert_close_with_nan(actual: np.ndarray, expected: list[float]) -> None:
    np.testing.assert_allclose(actual, np.array(expected, dtype=np.float64), rtol=1e-12, atol=0)


def test_average_precision_exact() -> None:
    # Row 0: (1/1 + 2/3) / 2 = 5/6. Row 1: (1/2) / 1. Row 3: sorted [2, 5, 10] -> (1/2 + 2/5 + 3/10)/3 = 2/5.
    _assert_close_with_nan(average_precision(RANKS), [5 / 6, 1 / 2, np.nan, 2 / 5])


def test_recall_at_k_exact() -> None:
    _assert_close_with_nan(recall_at_k(RANKS, 1), [1 / 2, 0, np.nan, 0])
    _assert_close_with_nan(recall_at_k(RANKS, 5), [1, 1, np.nan, 2 / 3])  # rank 5 counts at k=5
    _assert_close_with_nan(recall_at_k(RANKS, 10), [1, 1, np.nan, 1])  # rank 10 counts at k=10
    _assert_close_with_nan(recall_at_k(RANKS, 9), [1, 1, np.nan, 2 / 3])


def test_success_at_k_exact() -> None:
    _assert_close_with_nan(success_at_k(RANKS, 1), [1, 0, np.nan, 0])
    _assert_close_with_nan(success_at_k(RANKS, 2), [1, 1, np.nan, 1])
    # Single relevant per row: Success@k equals R@k.
    single = np.array([[1], [4], [0], [11]])
    for k in (1, 3, 4, 10, 11):
        _assert_close_with_nan(success_at_k(single, k), list(recall_at_k(single, k)))


def test_reciprocal_rank_exact() -> None:
    _assert_close_with_nan(reciprocal_rank(RANKS), [1, 1 / 2, np.nan, 1 / 2])


def test_ndcg_exact() -> None:
    # Row 0: DCG = 1/log2(2) + 1/log2(4) = 1.5; IDCG = 1 + 1/log2(3).
    # Row 1: DCG = 1/log2(3); IDCG = 1.
    # Row 3 @10: DCG = 1/log2(3) + 1/log2(6) + 1/log2(11); IDCG = 1 + 1/log2(3) + 1/2.
    _assert_close_with_nan(
        ndcg_at_k(RANKS, 10),
        [
            1.5 / (1 + INV_LOG2_3),
            INV_LOG2_3,
            np.nan,
            (INV_LOG2_3 + INV_LOG2_6 + INV_LOG2_11) / (1.5 + INV_LOG2_3),
        ],
    )
    # @2: row 0 DCG = 1 (rank 3 cut), IDCG = 1 + 1/log2(3); row 1 DCG = 1/log2(3), IDCG = 1;
    # row 3 DCG = 1/log2(3), IDCG = 1 + 1/log2(3) (min(R=3, k=2) = 2 ideal slots).
    _assert_close_with_nan(
        ndcg_at_k(RANKS, 2),
        [1 / (1 + INV_LOG2_3), INV_LOG2_3, np.nan, INV_LOG2_3 / (1 + INV_LOG2_3)],
    )
    # @1: only rank 1 counts; IDCG = 1 for any row with a relevant item.
    _assert_close_with_nan(ndcg_at_k(RANKS, 1), [1, 0, np.nan, 0])


def test_rank_distance_exact() -> None:
    # Row 0: 3 - 1; row 1 single relevant -> 0; row 2 none -> NaN; row 3: 10 - 2.
    _assert_close_with_nan(rank_distance(RANKS), [2, 0, np.nan, 8])


def test_end_to_end_from_tied_scores() -> None:
    # All scores equal: rel [3, 0] -> ranks [4, 1]; AP = (1/1 + 2/4)/2 = 3/4; rank distance 3.
    ranks = relevant_ranks(np.full((1, 5), 0.25), np.array([[3, 0]]))
    np.testing.assert_array_equal(ranks, [[4, 1]])
    assert average_precision(ranks)[0] == pytest.approx(3 / 4, abs=1e-15)
    assert rank_distance(ranks)[0] == 3


def test_bad_k_and_ranks_raise() -> None:
    for k in (0, -1, True):
        with pytest.raises(ValueError):
            recall_at_k(RANKS, k)
    with pytest.raises(ValueError):
        average_precision(np.array([[-1, 2]]))
    with pytest.raises(ValueError):
        average_precision(np.array([1, 2]))


def test_per_query_metrics_keys_and_values() -> None:
    out = per_query_metrics(RANKS)
    assert set(out) == {"map", "mrr", "r@1", "r@10", "ndcg@10", "rank_distance", "n_relevant"}
    np.testing.assert_array_equal(out["n_relevant"], [2, 1, 0, 3])
    assert out["n_relevant"].dtype == np.int64
    _assert_close_with_nan(out["map"], [5 / 6, 1 / 2, np.nan, 2 / 5])
    _assert_close_with_nan(out["r@1"], [1 / 2, 0, np.nan, 0])
    _assert_close_with_nan(out["rank_distance"], [2, 0, np.nan, 8])
    assert set(per_query_metrics(RANKS, ks=(5,), ndcg_k=3)) == {
        "map", "mrr", "r@5", "ndcg@3", "rank_distance", "n_relevant"
    }


def test_mean_ignoring_missing() -> None:
    mean, n_missing = mean_ignoring_missing(average_precision(RANKS))
    # (5/6 + 1/2 + 2/5) / 3 = (25 + 15 + 12) / 90 = 26/45; one query excluded.
    assert mean == pytest.approx(26 / 45, rel=1e-12)
    assert n_missing == 1
    mean, n_missing = mean_ignoring_missing(np.array([np.nan, np.nan]))
    assert math.isnan(mean) and n_missing == 2
    assert mean_ignoring_missing(np.array([1, 2, 4])) == (pytest.approx(7 / 3), 0)


# ---------------------------------------------------------------------------------------------
# Cross-check against ir_measures (trec_eval semantics) on a tie-free run
# ---------------------------------------------------------------------------------------------


def test_cross_check_ir_measures() -> None:
    ir_measures = pytest.importorskip("ir_measures")
    from ir_measures import AP, RR, R, nDCG

    rng = np.random.default_rng(2024)
    nq, nc = 30, 60
    # Distinct scores (a random permutation of 0..nq*nc-1) so trec-style docid tie-breaking never applies.
    scores = rng.permutation(nq * nc).reshape(nq, nc).astype(np.float64) / (nq * nc)
    n_rel = rng.integers(0, 7, size=nq)
    n_rel[:3] = [1, 6, 0]  # ensure single-relevant, several-relevant and none are all present
    rel = np.full((nq, 6), -1, dtype=np.int64)
    for i in range(nq):
        rel[i, : n_rel[i]] = rng.permutation(nc)[: n_rel[i]]
    ours = per_query_metrics(relevant_ranks(scores, rel), ks=(10,), ndcg_k=10)

    qrels = [ir_measures.Qrel(f"q{i}", f"d{j}", 1) for i in range(nq) for j in rel[i] if j >= 0]
    run = [ir_measures.ScoredDoc(f"q{i}", f"d{j}", float(scores[i, j])) for i in range(nq) for j in range(nc)]
    measures = {"map": AP, "ndcg@10": nDCG @ 10, "r@10": R @ 10, "mrr": RR}
    theirs: dict[str, dict[int, float]] = {key: {} for key in measures}
    by_measure = {str(m): key for key, m in measures.items()}
    for m in ir_measures.iter_calc(list(measures.values()), qrels, run):
        theirs[by_measure[str(m.measure)]][int(m.query_id[1:])] = m.value

    has_rel = n_rel > 0
    for key in measures:
        # trec_eval only reports queries that have qrels; ours are NaN for the rest.
        assert sorted(theirs[key]) == list(np.flatnonzero(has_rel)), key
        assert np.isnan(ours[key][~has_rel]).all(), key
        expected = np.array([theirs[key][i] for i in np.flatnonzero(has_rel)])
        np.testing.assert_allclose(ours[key][has_rel], expected, rtol=1e-6, atol=1e-9, err_msg=key)
