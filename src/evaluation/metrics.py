"""Rank-based retrieval metrics (LAReQA / arXiv 2408.10536 style) computed with plain numpy.

Relevance is a padded ``int64`` array ``rel`` of shape ``(n_queries, max_rel)`` holding candidate
column indices, padded with ``-1``. Ranks are 1-based positions in the *full* ranking of a query's
candidate pool; ties are broken by candidate index (lower column first), i.e. exactly the order a
stable sort of ``-score`` produces. In rank arrays, ``0`` marks a padding slot.

Per-query metrics return ``NaN`` for queries without any relevant candidate so callers can
exclude them and report how many were excluded (see :func:`mean_ignoring_missing`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

from src.core.specs import parse_measure

__all__ = [
    "average_precision",
    "average_precision_at_k",
    "mean_ignoring_missing",
    "ndcg_at_k",
    "ndcg_at_k_topk",
    "per_query_metrics",
    "rank_distance",
    "ranks_from_embeddings",
    "ranks_of_views",
    "recall_at_k",
    "recall_at_k_topk",
    "reciprocal_rank",
    "reciprocal_rank_at_k",
    "relevant_ranks",
    "success_at_k",
    "topk_gains",
    "topk_metrics",
]

# Upper bound on the number of comparisons materialised at once: counting-based ranking builds boolean
# arrays of shape (rows, n_candidates) (top-k gains: (rows, depth, max_rel)); with 10^5+ candidates an
# unbounded block would need gigabytes, so rows are processed in sub-chunks.
_MAX_COMPARISONS = 1 << 24


def _validate_rel(rel: np.ndarray, n_queries: int, n_candidates: int) -> np.ndarray:
    """Check a padded relevance array against the pool shape and return it as int64."""
    rel = np.asarray(rel)
    if rel.ndim != 2 or rel.shape[0] != n_queries:
        raise ValueError(f"rel must have shape ({n_queries}, max_rel), got {rel.shape}")
    if rel.size == 0:
        return rel.astype(np.int64)
    if not np.issubdtype(rel.dtype, np.integer):
        raise TypeError(f"rel must be an integer array, got dtype {rel.dtype}")
    rel = rel.astype(np.int64, copy=False)
    if rel.min() < -1 or rel.max() >= n_candidates:
        raise ValueError(f"rel entries must be -1 (padding) or in [0, {n_candidates}), got "
                         f"range [{rel.min()}, {rel.max()}]")
    # A duplicated relevant index would be counted twice by every metric, silently inflating R.
    srt = np.sort(rel, axis=1)
    if np.any((srt[:, 1:] == srt[:, :-1]) & (srt[:, 1:] >= 0)):
        raise ValueError("rel contains a duplicated candidate index within a row")
    return rel


def _check_scores(scores: np.ndarray) -> None:
    """Reject score dtypes/values for which a total order (and hence a rank) is undefined."""
    if not (np.issubdtype(scores.dtype, np.integer) or np.issubdtype(scores.dtype, np.floating)):
        raise TypeError(f"scores must be a real integer or floating array, got dtype {scores.dtype}")
    # NaN compares false with everything, which would give a relevant item a silently wrong rank.
    if np.issubdtype(scores.dtype, np.floating) and np.isnan(scores).any():
        raise ValueError("scores contain NaN; ranks are undefined")


# From this many relevant columns per row on, sorting each row once and bisecting it is cheaper than one
# counting pass per relevant column (bench/domain_shift.py: ~4x at 10 per row over 22k candidates).
_SORT_FROM_N_RELEVANT = 3


def _ties_before(s: np.ndarray, col: int, value: float) -> int:
    """#{k < col : s_k == value}: the stable-sort tie-break (lower candidate index first)."""
    return int(np.count_nonzero(s[:col] == value))


def _ranks_by_counting(s: np.ndarray, c: np.ndarray) -> np.ndarray:
    """Ranks of columns `c` (b, m) in rows `s` (b, nc), one comparison pass over the rows per column."""
    out = np.empty(c.shape, dtype=np.int64)
    rel_scores = np.take_along_axis(s, c, axis=1)  # (b, m)
    for j in range(c.shape[1]):
        r = rel_scores[:, j:j + 1]
        # rank - 1 = #{k : s_k > s_j} + #{k < j : s_k == s_j}
        n_greater = np.count_nonzero(s > r, axis=1)
        tied = np.flatnonzero(np.count_nonzero(s == r, axis=1) > 1)  # rows where s_j is not unique
        out[:, j] = 1 + n_greater
        for i in tied:
            out[i, j] += _ties_before(s[i], c[i, j], rel_scores[i, j])
    return out


def _ranks_by_sorting(s: np.ndarray, c: np.ndarray) -> np.ndarray:
    """The same ranks as :func:`_ranks_by_counting` from one sort per row and a bisection per column."""
    out = np.empty(c.shape, dtype=np.int64)
    rel_scores = np.take_along_axis(s, c, axis=1)
    ordered = np.sort(s, axis=1)
    n_cand = s.shape[1]
    for i in range(len(s)):
        right = np.searchsorted(ordered[i], rel_scores[i], side="right")
        out[i] = 1 + n_cand - right  # 1 + #{k : s_k > s_j}
        for j in np.flatnonzero(right - np.searchsorted(ordered[i], rel_scores[i], side="left") > 1):
            out[i, j] += _ties_before(s[i], c[i, j], rel_scores[i, j])
    return out


def _ranks_of_block(scores: np.ndarray, rel: np.ndarray) -> np.ndarray:
    """Count-based 1-based ranks of ``rel`` columns in each row of an already-validated block."""
    n_rows, n_cand = scores.shape
    max_rel = rel.shape[1]
    out = np.zeros((n_rows, max_rel), dtype=np.int64)
    if n_rows == 0 or max_rel == 0:
        return out
    pad = rel < 0
    cols = np.where(pad, 0, rel)  # padding points at column 0 only so indexing stays in range
    ranks_of = _ranks_by_sorting if max_rel >= _SORT_FROM_N_RELEVANT else _ranks_by_counting
    # Temporaries are (rows, n_candidates) at most, so memory stays linear in the pool even when the number
    # of relevant candidates per query grows with it (the pooled setting).
    step = max(1, _MAX_COMPARISONS // max(n_cand, 1))
    for start in range(0, n_rows, step):
        out[start:start + step] = ranks_of(scores[start:start + step], cols[start:start + step])
    out[pad] = 0
    return out


def relevant_ranks(scores: np.ndarray, rel: np.ndarray) -> np.ndarray:
    """1-based full-ranking rank of each relevant candidate (ties by lower index); 0 for padding."""
    scores = np.asarray(scores)
    if scores.ndim != 2:
        raise ValueError(f"scores must be 2-D (n_queries, n_candidates), got shape {scores.shape}")
    _check_scores(scores)
    rel = _validate_rel(rel, scores.shape[0], scores.shape[1])
    return _ranks_of_block(scores, rel)


def ranks_from_embeddings(
    queries: np.ndarray,
    candidates: np.ndarray,
    rel: np.ndarray,
    block_size: int = 256,
    exclude: np.ndarray | None = None,
) -> np.ndarray:
    """Ranks as in :func:`relevant_ranks` for float32 inner-product scores, built per query block.

    Scores are ``float32`` inner products ``q @ c.T`` computed by BLAS ``block_size`` queries at a
    time, so peak memory is ``block_size * n_candidates`` floats instead of the full matrix. The
    result equals ``relevant_ranks(queries @ candidates.T, rel)`` whenever BLAS produces the same
    float32 products for a row block as for the full matrix (always true for exactly representable
    products, e.g. small-integer embeddings; float rounding could otherwise only flip near-exact ties).

    `exclude` (n_queries,) names one candidate column per query that is not in its pool (-1: none), e.g. the
    query sentence itself when every sentence is both a query and a candidate: it is ranked below every
    other candidate, so the ranks are those of the pool without it. It must not be a relevant column.
    """
    (ranks,) = ranks_of_views(queries, candidates, [(slice(None), rel)], block_size=block_size, exclude=exclude)
    return ranks


def ranks_of_views(
    queries: np.ndarray,
    candidates: np.ndarray,
    views: Sequence[tuple[slice, np.ndarray]],
    block_size: int = 256,
    exclude: np.ndarray | None = None,
) -> list[np.ndarray]:
    """:func:`ranks_from_embeddings` for several candidate ranges of one score matrix, one matmul per block.

    Each view is ``(columns, rel)``: a contiguous slice of the candidates (one language of a pool) and the
    relevant columns counted from the slice's start. The cross pairs X->Y and the pooled setting X->all are
    views of one ``q_X @ pool.T``, so the pool is scored once per query language instead of twice; a column
    slice of a BLAS product holds the same float32 values as the product with the slice alone (checked by
    ``tests/evaluation/test_metrics.py`` on the BLAS in use), so every view's ranks are those of its own call.
    `exclude` counts columns of the whole matrix and only affects views that contain the excluded column.
    """
    if isinstance(block_size, bool) or not isinstance(block_size, (int, np.integer)) or block_size < 1:
        raise ValueError(f"block_size must be a positive int, got {block_size!r}")
    q = np.asarray(queries, dtype=np.float32)
    c = np.asarray(candidates, dtype=np.float32)
    if q.ndim != 2 or c.ndim != 2 or q.shape[1] != c.shape[1]:
        raise ValueError(f"queries (nq, d) and candidates (nc, d) must share d, got {q.shape} and {c.shape}")
    spans = [_view_span(cols, c.shape[0]) for cols, _ in views]
    rels = [_validate_rel(rel, q.shape[0], stop - start) for (start, stop), (_, rel) in zip(spans, views)]
    excluded = None
    if exclude is not None:
        excluded = _validate_exclude(exclude, np.zeros((q.shape[0], 0), dtype=np.int64), c.shape[0])
        for (start, stop), rel in zip(spans, rels):
            inside = np.where((excluded >= start) & (excluded < stop), excluded - start, -1)
            _validate_exclude(inside, rel, stop - start)
    outs = [np.zeros(rel.shape, dtype=np.int64) for rel in rels]
    c_t = c.T  # a transposed view: BLAS reads it with a trans flag, no copy of the candidate matrix
    for start in range(0, q.shape[0], block_size):
        block_scores = q[start:start + block_size] @ c_t
        # NaN can arise from NaN/inf embeddings (inf * 0); check per block since no full matrix exists.
        _check_scores(block_scores)
        if excluded is not None:
            # -inf is below every finite score and equals none: the other candidates' ranks are unchanged.
            rows = np.flatnonzero(excluded[start:start + block_size] >= 0)
            block_scores[rows, excluded[start + rows]] = -np.inf
        for (lo, hi), rel, out in zip(spans, rels, outs):
            out[start:start + block_size] = _ranks_of_block(block_scores[:, lo:hi], rel[start:start + block_size])
    return outs


def _view_span(cols: slice, n_candidates: int) -> tuple[int, int]:
    """(start, stop) of a contiguous column slice of the candidates; a step or an empty slice is an error."""
    if not isinstance(cols, slice) or cols.step not in (None, 1):
        raise ValueError(f"a view's columns must be a contiguous slice, got {cols!r}")
    start, stop, _ = cols.indices(n_candidates)
    if stop <= start:
        raise ValueError(f"a view's columns {cols!r} select no candidate of {n_candidates}")
    return start, stop


def _validate_exclude(exclude: np.ndarray, rel: np.ndarray, n_candidates: int) -> np.ndarray:
    """An (n_queries,) int64 column per query (-1 = none), in range and never one of the query's relevant."""
    ex = np.asarray(exclude)
    if ex.shape != (rel.shape[0],) or (ex.size and not np.issubdtype(ex.dtype, np.integer)):
        raise ValueError(f"exclude must be an integer array of shape ({rel.shape[0]},), got {ex.shape} {ex.dtype}")
    ex = ex.astype(np.int64, copy=False)
    if ex.size and (ex.min() < -1 or ex.max() >= n_candidates):
        raise ValueError(f"exclude entries must be -1 or in [0, {n_candidates}), got [{ex.min()}, {ex.max()}]")
    if rel.size and np.any((rel == ex[:, None]) & (ex[:, None] >= 0)):
        raise ValueError("exclude names a relevant candidate of its query")
    return ex


def _as_ranks(ranks: np.ndarray) -> np.ndarray:
    """Validate a rank array (2-D, integers >= 0 where 0 is padding) and return it as int64."""
    ranks = np.asarray(ranks)
    if ranks.ndim != 2:
        raise ValueError(f"ranks must be 2-D (n_queries, max_rel), got shape {ranks.shape}")
    if ranks.size and not np.issubdtype(ranks.dtype, np.integer):
        raise TypeError(f"ranks must be an integer array, got dtype {ranks.dtype}")
    ranks = ranks.astype(np.int64, copy=False)
    if ranks.size and ranks.min() < 0:
        raise ValueError("ranks must be >= 1 for relevant items and 0 for padding")
    return ranks


def _check_k(k: int) -> int:
    """Cutoffs are positive integers; a 0 or negative cutoff is almost certainly a config bug."""
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"k must be a positive int, got {k!r}")
    return int(k)


def _n_relevant(ranks: np.ndarray) -> np.ndarray:
    """Number of non-padding entries per row."""
    return np.count_nonzero(ranks > 0, axis=1)


def _divide_or_nan(num: np.ndarray, n_rel: np.ndarray) -> np.ndarray:
    """num / n_rel as float64, NaN where a query has no relevant candidate."""
    out = np.full(num.shape, np.nan, dtype=np.float64)
    has = n_rel > 0
    out[has] = num[has] / n_rel[has]
    return out


def average_precision(ranks: np.ndarray) -> np.ndarray:
    """Per-query AP over the full ranking: (1/R) * sum_i i / r_i for sorted relevant ranks r_i."""
    ranks = _as_ranks(ranks)
    n_rel = _n_relevant(ranks)
    # Push padding to the end of each row so position i (1-based) is the i-th best relevant rank.
    srt = np.sort(np.where(ranks > 0, ranks, np.iinfo(np.int64).max), axis=1)
    pos = np.arange(1, ranks.shape[1] + 1, dtype=np.float64)
    prec = np.where(srt < np.iinfo(np.int64).max, pos / srt, 0.0)
    return _divide_or_nan(prec.sum(axis=1), n_rel)


def recall_at_k(ranks: np.ndarray, k: int) -> np.ndarray:
    """Per-query R@k: fraction of the query's relevant candidates ranked <= k (NaN if none)."""
    ranks = _as_ranks(ranks)
    k = _check_k(k)
    hits = np.count_nonzero((ranks > 0) & (ranks <= k), axis=1)
    return _divide_or_nan(hits.astype(np.float64), _n_relevant(ranks))


def success_at_k(ranks: np.ndarray, k: int) -> np.ndarray:
    """Per-query Success@k: 1.0 if any relevant candidate is ranked <= k, else 0.0 (NaN if none)."""
    ranks = _as_ranks(ranks)
    k = _check_k(k)
    hit = np.any((ranks > 0) & (ranks <= k), axis=1).astype(np.float64)
    return np.where(_n_relevant(ranks) > 0, hit, np.nan)


def _min_max_rank(ranks: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Best and worst relevant rank per row (float64, NaN where the row has no relevant item)."""
    valid = ranks > 0
    has = valid.any(axis=1)
    lo = np.full(ranks.shape[0], np.nan)
    hi = np.full(ranks.shape[0], np.nan)
    if ranks.shape[1]:
        lo[has] = np.where(valid, ranks, np.iinfo(np.int64).max).min(axis=1)[has]
        hi[has] = ranks.max(axis=1)[has]  # padding is 0, so it never wins the max of a non-empty row
    return lo, hi, has


def reciprocal_rank(ranks: np.ndarray) -> np.ndarray:
    """Per-query reciprocal rank of the best-ranked relevant candidate (NaN if none)."""
    lo, _, _ = _min_max_rank(_as_ranks(ranks))
    return 1.0 / lo


def ndcg_at_k(ranks: np.ndarray, k: int) -> np.ndarray:
    """Per-query binary-gain nDCG@k with 1/log2(rank+1) discounts (NaN if no relevant)."""
    ranks = _as_ranks(ranks)
    k = _check_k(k)
    in_top = (ranks > 0) & (ranks <= k)
    # log2(rank + 1) for padding/out-of-cutoff slots is computed on a safe dummy rank, then masked.
    dcg = np.where(in_top, 1.0 / np.log2(np.where(in_top, ranks, 1) + 1.0), 0.0).sum(axis=1)
    n_rel = _n_relevant(ranks)
    # Ideal DCG places min(R, k) relevant items at ranks 1..min(R, k); cumulative discounts table.
    ideal = np.concatenate(([0.0], np.cumsum(1.0 / np.log2(np.arange(2, k + 2, dtype=np.float64)))))
    idcg = ideal[np.minimum(n_rel, k)]
    out = np.full(ranks.shape[0], np.nan)
    has = n_rel > 0
    out[has] = dcg[has] / idcg[has]
    return out


def rank_distance(ranks: np.ndarray) -> np.ndarray:
    """Per-query max minus min relevant rank (language-bias metric; 0 for one relevant, NaN for none)."""
    lo, hi, _ = _min_max_rank(_as_ranks(ranks))
    return hi - lo


def per_query_metrics(
    ranks: np.ndarray,
    ks: Iterable[int] = (1, 10),
    ndcg_k: int = 10,
) -> dict[str, np.ndarray]:
    """All per-query metrics: map, mrr, r@k for each k, ndcg@<ndcg_k>, rank_distance, n_relevant."""
    ranks = _as_ranks(ranks)
    out: dict[str, np.ndarray] = {
        "map": average_precision(ranks),
        "mrr": reciprocal_rank(ranks),
    }
    for k in ks:
        out[f"r@{_check_k(k)}"] = recall_at_k(ranks, k)
    out[f"ndcg@{_check_k(ndcg_k)}"] = ndcg_at_k(ranks, ndcg_k)
    out["rank_distance"] = rank_distance(ranks)
    out["n_relevant"] = _n_relevant(ranks).astype(np.int64)
    return out


def mean_ignoring_missing(values: np.ndarray) -> tuple[float, int]:
    """(mean over finite entries, number of non-finite entries excluded); mean is NaN if none finite."""
    values = np.asarray(values, dtype=np.float64).ravel()
    finite = np.isfinite(values)
    n_missing = int(values.size - np.count_nonzero(finite))
    # Avoid numpy's "mean of empty slice" RuntimeWarning: an all-missing column is a valid outcome.
    mean = float(values[finite].mean()) if finite.any() else float("nan")
    return mean, n_missing


# --- Top-k metrics over a retrieved list (large corpora: FAISS returns only the top k) -----------------
# A run is `retrieved` (n_queries, depth) of corpus indices, best first, -1 where nothing was returned;
# judgements are a padded `rel` (n_queries, max_rel) of corpus indices (-1 padding) with `grades`
# (same shape, > 0 = relevant). Definitions follow trec_eval / ir_measures: linear gains for nDCG,
# relevant documents that were not retrieved count in the denominators of R@k and AP@k, and a query whose
# judgements are all non-relevant scores 0 (it is averaged in, unlike the NaN of the full-ranking metrics).


def topk_gains(retrieved: np.ndarray, rel: np.ndarray, grades: np.ndarray) -> np.ndarray:
    """(n_queries, depth) relevance grade of each retrieved document (0 when not judged relevant)."""
    retrieved, rel, grades = np.asarray(retrieved), np.asarray(rel), np.asarray(grades, dtype=np.float64)
    if retrieved.ndim != 2 or rel.ndim != 2 or rel.shape != grades.shape or rel.shape[0] != retrieved.shape[0]:
        raise ValueError(f"retrieved (n, depth), rel and grades (n, max_rel) disagree: {retrieved.shape}, "
                         f"{rel.shape}, {grades.shape}")
    out = np.zeros(retrieved.shape, dtype=np.float64)
    positive = np.maximum(grades, 0.0)
    # (block, depth, max_rel) match tensors, in query blocks so deep runs stay within _MAX_COMPARISONS.
    step = max(1, _MAX_COMPARISONS // max(1, retrieved.shape[1] * rel.shape[1]))
    for s in range(0, retrieved.shape[0], step):
        r, j = retrieved[s:s + step, :, None], rel[s:s + step, None, :]
        match = (r == j) & (j >= 0) & (r >= 0)
        out[s:s + step] = np.where(match, positive[s:s + step, None, :], 0.0).max(axis=2, initial=0.0)
    return out


def n_judged_relevant(grades: np.ndarray) -> np.ndarray:
    """Number of relevant (grade > 0) judgements per query."""
    return np.count_nonzero(np.asarray(grades) > 0, axis=1)


def _divide_or_zero(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """num / den as float64, 0 where den is 0 (trec_eval's value for a query without relevant judgements)."""
    num, den = np.asarray(num, dtype=np.float64), np.asarray(den, dtype=np.float64)
    return np.divide(num, den, out=np.zeros_like(num), where=den > 0)


def _cut(gains: np.ndarray, k: int) -> np.ndarray:
    """The first k columns of a gain matrix (all of them when the run is shallower than k)."""
    return np.asarray(gains, dtype=np.float64)[:, :_check_k(k)]


def ndcg_at_k_topk(gains: np.ndarray, grades: np.ndarray, k: int) -> np.ndarray:
    """Per-query nDCG@k: sum gain_i / log2(i + 1) over the top k, over the same for the ideal order."""
    g = _cut(gains, k)
    discounts = 1.0 / np.log2(np.arange(2, k + 2, dtype=np.float64))
    dcg = (g * discounts[: g.shape[1]]).sum(axis=1)
    ideal = -np.sort(-np.maximum(np.asarray(grades, dtype=np.float64), 0.0), axis=1)[:, :k]
    idcg = (ideal * discounts[: ideal.shape[1]]).sum(axis=1)
    return _divide_or_zero(dcg, idcg)


def recall_at_k_topk(gains: np.ndarray, grades: np.ndarray, k: int) -> np.ndarray:
    """Per-query R@k: relevant documents in the top k over all relevant judgements (0 if none)."""
    hits = np.count_nonzero(_cut(gains, k) > 0, axis=1)
    return _divide_or_zero(hits, n_judged_relevant(grades))


def reciprocal_rank_at_k(gains: np.ndarray, grades: np.ndarray, k: int) -> np.ndarray:
    """Per-query RR@k: 1 / position of the first relevant document in the top k, else 0."""
    hit = _cut(gains, k) > 0
    return _divide_or_zero(hit.any(axis=1), hit.argmax(axis=1) + 1.0)


def average_precision_at_k(gains: np.ndarray, grades: np.ndarray, k: int) -> np.ndarray:
    """Per-query AP@k: sum of precision@i at relevant positions i <= k, over all relevant judgements (0 if none)."""
    hit = _cut(gains, k) > 0
    precision = np.cumsum(hit, axis=1) / np.arange(1, hit.shape[1] + 1, dtype=np.float64)
    return _divide_or_zero((precision * hit).sum(axis=1), n_judged_relevant(grades))


# ir_measures names of the measures above (`nDCG@10`, `R@100`, `RR@10`, `AP@1000`).
TOPK_MEASURES = {
    "nDCG": ndcg_at_k_topk,
    "R": recall_at_k_topk,
    "RR": reciprocal_rank_at_k,
    "AP": average_precision_at_k,
}


def topk_metrics(retrieved: np.ndarray, rel: np.ndarray, grades: np.ndarray,
                 measures: Iterable[str]) -> dict[str, np.ndarray]:
    """Per-query values of each named measure (e.g. `nDCG@10`) for one top-k run."""
    gains = topk_gains(retrieved, rel, grades)
    out = {}
    for name in measures:
        measure, k = parse_measure(name)
        out[name] = TOPK_MEASURES[measure](gains, grades, k)
    return out
