"""Pure statistics for comparing runs: t intervals, Holm, per-query shares and seed-aware clustered tests.

Significance (`seed_cluster_test`) asks whether two *samplers* differ, not two trained models. The report's
number, the mean over seeds of each run's macro mAP, varies for two reasons:

- questions: the 11 translations of one question (`xling_id`) are strongly correlated, so the independent
  unit is the question, never a (language, query) share; flipping single shares over-rejects (simulated null,
  per-query difference with within-question correlation 0.1 / 0.3 / 0.5: 15 / 32 / 43 % at a nominal 5 %);
- seeds: retraining moves every query at once, and S seeds leave S-1 degrees of freedom for that variance;
  3 seeds give 8 sign patterns only (p >= 1/8), too few to resample.

So the variance of the difference T (mean over seeds of the per-seed macro differences) has a question part
G (sampler x question effects that persist across seeds, estimated without bias from cross-seed products per
question; thousands of questions make it precise) and a seed part B/S (B = variance of the per-seed
differences: training noise plus each run's own per-query noise; S-1 df). W = T / sqrt(G + B/S) is compared
with draws of (question part + seed part) / sqrt(chi2_df / df): the question part flips whole questions (a
resamples x questions sign matrix, drawn and multiplied in blocks, scaled to variance G), the seed part is
normal with variance B/S, and the denominator is the noise of the estimated standard error.

df is Satterthwaite's (S-1)(1 + G S / B)^2 with the question part's weight damped by DF_DAMPING. Undamped (plain
Welch) over-rejects with 3 seeds, up to 7.8 % at a nominal 5 % when the seed part is ~10x the question part,
because B is small exactly when W is large; DF_DAMPING -> 0 (t with S-1 df throughout) falls to ~0 % when the
question part dominates. With DF_DAMPING = 0.4 the level over every mix of the two parts is 4.1-5.7 % with
3 seeds and 4.1-5.0 % with 4-10 (normal theory, 400k draws per mix); through the report, 3 seeds, 60
questions: 3.6-5.7 % (tests/reporting/test_calibration.py, 1,000 comparisons per mix). Seed effects are
taken as normal: 3 seeds cannot show otherwise.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

from src.core import keys

# Seeds needed before the report tests anything: 2 seeds leave 1 df for the seed variance (t_1, Cauchy).
MIN_SEEDS = 3
# Weight of the question part in the Satterthwaite degrees of freedom (module docstring); 1 = plain Welch.
DF_DAMPING = 0.4
# Sign-matrix entries per block: 4M float64 = 32 MB whatever the number of questions.
_BLOCK_ENTRIES = 1 << 22


def mean_ci(values: Sequence[float], confidence: float = 0.95) -> tuple[float, float]:
    """(mean, half-width of the t confidence interval); the half-width is NaN for fewer than 2 values."""
    x = np.asarray(values, dtype=np.float64)
    x = x[np.isfinite(x)]
    if x.size == 0:
        return float("nan"), float("nan")
    if x.size < 2:
        return float(x.mean()), float("nan")
    sem = x.std(ddof=1) / np.sqrt(x.size)
    return float(x.mean()), float(stats.t.ppf(0.5 + confidence / 2, x.size - 1) * sem)


def holm(pvalues: Sequence[float]) -> np.ndarray:
    """Holm–Bonferroni adjusted p-values (step-down, monotone, capped at 1), in the input order."""
    p = np.asarray(pvalues, dtype=np.float64)
    m = p.size
    adjusted = np.empty(m)
    running = 0.0
    for rank, i in enumerate(np.argsort(p, kind="stable")):
        running = max(running, min(1.0, (m - rank) * p[i]))  # never below a smaller p's adjusted value
        adjusted[i] = running
    return adjusted


def query_contributions(arrays: Mapping[str, np.ndarray], languages: Sequence[str], setting: str,
                        metric: str = "map") -> np.ndarray:
    """Each query's share of the setting's macro average, so that their sum *is* the macro average.

    Array names as in `per_query.npz` (src/evaluation/artifacts/per_query.py: `mono/de-de/map`,
    `cross/de-zh/map`, `multi/de/map`). The macro average is the mean over query languages of the mean over
    that language's pairs of the mean over queries (NaN = query without a relevant candidate, left out as
    the grid does); a cross query's share sums over its target languages. Returns a vector over all queries,
    languages concatenated in order; left-out queries contribute 0.
    """
    if setting not in keys.SETTINGS:
        raise ValueError(f"setting must be one of {keys.SETTINGS}, got {setting!r}")
    per_lang = []
    scored = {name.rpartition("/")[0] for name in arrays}  # `{setting}/{group}` of every saved array
    for x in languages:
        if setting == keys.MULTI:
            names = [keys.array_key(keys.MULTI, x, metric)]
        else:
            names = [keys.pair_array_key(x, y, metric) for y in languages if keys.pair_setting(x, y) == setting]
        # Kinds that score fewer pairs (translation retrieval, Tatoeba's pair tables) save only those; a scored
        # pair without the metric is a wrong metric name.
        names = [k for k in names if k.rpartition("/")[0] in scored]
        missing = [k for k in names if k not in arrays]
        if missing:
            raise KeyError(f"per-query arrays lack {missing[0]!r} (have e.g. {sorted(arrays)[:3]})")
        pairs = [np.asarray(arrays[k], dtype=np.float64) for k in names]
        if not pairs:  # no pair of this setting for x: its queries contribute nothing, but keep their places
            pairs = [np.full(_rows_of(arrays, x), np.nan)]
        valid = [p for p in pairs if np.isfinite(p).any()]
        share = np.zeros_like(pairs[0]) if pairs else np.zeros(0)
        for p in valid:
            finite = np.isfinite(p)
            share += np.where(finite, p, 0.0) / finite.sum() / len(valid)
        per_lang.append((share, bool(valid)))
    n_groups = sum(ok for _, ok in per_lang)
    if n_groups == 0:
        return np.concatenate([s for s, _ in per_lang]) if per_lang else np.zeros(0)
    return np.concatenate([s / n_groups for s, _ in per_lang])


def _rows_of(arrays: Mapping[str, np.ndarray], lang: str) -> int:
    """How many queries `lang` has: the length of any of its per-query arrays; KeyError if it has none."""
    for name, values in arrays.items():
        if keys.parse_array_key(name)[1] == lang:
            return len(values)
    raise KeyError(f"per-query arrays have no query language {lang!r} (have e.g. {sorted(arrays)[:3]})")


def question_clusters(qids: Mapping[str, np.ndarray], languages: Sequence[str],
                      units: Mapping[str, np.ndarray] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(sorted question ids, question index of every query) for queries in query_contributions' order.

    A qid is `{lang}:{xling_id}` (src/data/lareqa.py): all translations of a question share the xling_id.
    `units` (per_query.npz's `clusters/{x}`) overrides it per language where rows are not independent
    (NTREX lines: every line of a document is one unit).
    """
    units = units or {}

    def unit_ids(x: str) -> list[str]:
        return (np.asarray(units[x]).tolist() if x in units else
                [q.split(":", 1)[-1] for q in np.asarray(qids[x]).tolist()])

    first_seen: dict[str, int] = {}
    index = np.fromiter((first_seen.setdefault(u, len(first_seen)) for x in languages for u in unit_ids(x)),
                        dtype=np.int64)
    names = np.array(list(first_seen), dtype=str)
    order = np.argsort(names, kind="stable")
    rank = np.empty_like(order)
    rank[order] = np.arange(order.size)
    return names[order], rank[index]


def cluster_sums(values: np.ndarray, index: np.ndarray, n_clusters: int) -> np.ndarray:
    """Sum of `values` per cluster (`index` from question_clusters)."""
    values = np.asarray(values, dtype=np.float64)
    if values.shape != index.shape:
        raise ValueError(f"{values.shape[0] if values.ndim else 0} values for {index.size} cluster labels")
    return np.bincount(index, weights=values, minlength=n_clusters)


def random_sign_sums(values: np.ndarray, n_resamples: int, rng: np.random.Generator) -> np.ndarray:
    """sum_i s_i * values_i for n_resamples random sign vectors s, drawn and multiplied in blocks."""
    v = np.asarray(values, dtype=np.float64)
    out = np.empty(n_resamples)
    rows = max(1, _BLOCK_ENTRIES // max(v.size, 1))
    for start in range(0, n_resamples, rows):
        stop = min(start + rows, n_resamples)
        bits = rng.integers(0, 2, size=(stop - start, v.size), dtype=np.int8)
        out[start:stop] = v.sum() - 2.0 * (bits @ v)  # s = 1 - 2 * bit: one matmul per block
    return out


def all_sign_sums(values: np.ndarray) -> np.ndarray:
    """sum_i s_i * values_i for all 2**n sign vectors (the exact randomisation distribution)."""
    v = np.asarray(values, dtype=np.float64)
    bits = (np.arange(2 ** v.size)[:, None] >> np.arange(v.size)) & 1
    return v.sum() - 2.0 * (bits @ v)


def _at_least(x: np.ndarray, observed: float) -> np.ndarray:
    """|x| >= |observed| up to rounding (sums of the same numbers in another order)."""
    return np.abs(x) >= abs(observed) * (1 - 1e-9) - 1e-15


def paired_sign_flip_test(a: np.ndarray, b: np.ndarray, n_resamples: int = 9999, seed: int = 0,
                          clusters: np.ndarray | None = None) -> float:
    """Two-sided randomisation test of sum(a - b) = 0 for two fixed models (one run each).

    `clusters` (e.g. question_clusters' index) makes each cluster's summed difference one unit whose sign
    flips as a whole; without it every element is a unit. Exact (all sign patterns) when 2**units <=
    n_resamples, else (1 + hits) / (1 + n_resamples) over random patterns.
    """
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(f"paired test needs two 1-D arrays of the same length, got {a.shape} and {b.shape}")
    d = a - b
    if clusters is not None:
        d = cluster_sums(d, np.asarray(clusters), int(np.max(clusters, initial=-1)) + 1)
    observed = float(d.sum())
    if d.size < 30 and 2 ** d.size <= n_resamples:
        return float(np.mean(_at_least(all_sign_sums(d), observed)))
    hits = int(_at_least(random_sign_sums(d, n_resamples, np.random.default_rng(seed)), observed).sum())
    return (1 + hits) / (1 + n_resamples)


@dataclass(frozen=True)
class SeedClusterTest:
    """Result of seed_cluster_test: p-value, the difference and its standard error by source."""

    p: float
    difference: float  # mean over seeds of the per-seed differences (= difference of the table's means)
    se_questions: float  # sqrt(G): sampler x question effects that persist across seeds
    se_seeds: float  # sqrt(B / S): seed-to-seed variation of the difference (incl. each run's query noise)
    df: float  # degrees of freedom of the standard error, (S-1)(1 + DF_DAMPING G S / B)^2


def seed_cluster_test(diff: np.ndarray, n_resamples: int = 9999, seed: int = 0,
                      damping: float = DF_DAMPING) -> SeedClusterTest:
    """Two-sided test that two samplers do not differ, from diff[s, c] = a - b of question c's share, seed s.

    Rows are matched seeds (same seed on both sides), columns questions (per-query shares summed per
    xling_id), so diff.sum(1) are the per-seed differences of the macro averages. Null distribution: module
    docstring; p = (1 + #{|W*| >= |W|}) / (1 + n_resamples).
    """
    diff = np.asarray(diff, dtype=np.float64)
    if diff.ndim != 2 or diff.shape[0] < 2:
        raise ValueError(f"need a (seeds >= 2, questions) matrix, got shape {diff.shape}")
    n_seeds = diff.shape[0]
    nu = n_seeds - 1
    per_seed = diff.sum(axis=1)
    mean = diff.mean(axis=0)
    difference = float(per_seed.mean())
    seed_var = float(per_seed.var(ddof=1)) / n_seeds  # B / S
    # E[m_c^2] = g_c + noise/S and E[d_sc^2] = g_c + noise: the cross-seed products isolate g_c.
    per_question = (n_seeds ** 2 * mean ** 2 - (diff ** 2).sum(axis=0)) / (n_seeds * nu)
    question_var = max(float(per_question.sum()), 0.0)
    se = np.sqrt(question_var + seed_var)
    ratio = question_var / seed_var if seed_var > 0 else np.inf
    df = float(nu * (1 + damping * ratio) ** 2)
    result = {"difference": difference, "se_questions": float(np.sqrt(question_var)),
              "se_seeds": float(np.sqrt(seed_var)), "df": df}
    if se == 0:  # identical runs: nothing to test
        return SeedClusterTest(p=1.0, **result)
    rng = np.random.default_rng(seed)
    flip_var = float((mean ** 2).sum())  # variance of the sign-flip sums of `mean`
    scale = np.sqrt(question_var / flip_var) if flip_var > 0 else 0.0
    # Numerator on T's scale: the question part by flipping whole questions, the seed part normal.
    null = scale * random_sign_sums(mean, n_resamples, rng) + np.sqrt(seed_var) * rng.standard_normal(n_resamples)
    if np.isfinite(df):  # denominator: the standard error's own noise, chi2 with the damped df
        null = null / np.sqrt(rng.chisquare(df, n_resamples) / df)
    hits = int(_at_least(null, difference).sum())
    return SeedClusterTest(p=(1 + hits) / (1 + n_resamples), **result)
