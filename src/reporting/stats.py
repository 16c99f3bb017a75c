"""Pure statistics for comparing runs: t confidence intervals, paired sign-flip tests, Holm correction."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from scipy import stats

SETTINGS = ("mono", "cross", "multi")


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

    Keys as in `per_query.npz` (`mono/de-de/map`, `cross/de-zh/map`, `multi/de/map`). The macro average is the
    mean over query languages of the mean over that language's pairs of the mean over queries (NaN =
    query without a relevant candidate, left out as the grid does); a cross query's share sums over its
    target languages, so a sign flip moves all of one query's results together (they are not independent).
    Returns a vector over all queries, languages concatenated in order; left-out queries contribute 0.
    """
    if setting not in SETTINGS:
        raise ValueError(f"setting must be one of {SETTINGS}, got {setting!r}")
    per_lang = []
    for x in languages:
        if setting == "multi":
            keys = [f"multi/{x}/{metric}"]
        elif setting == "mono":
            keys = [f"mono/{x}-{x}/{metric}"]
        else:
            keys = [f"cross/{x}-{y}/{metric}" for y in languages if y != x]
        missing = [k for k in keys if k not in arrays]
        if missing:
            raise KeyError(f"per-query arrays lack {missing[0]!r} (have e.g. {sorted(arrays)[:3]})")
        pairs = [np.asarray(arrays[k], dtype=np.float64) for k in keys]
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


def paired_sign_flip_test(a: np.ndarray, b: np.ndarray, n_resamples: int = 9999, seed: int = 0) -> float:
    """Two-sided paired randomisation test of sum(a - b) = 0 over the same units (e.g. per-query shares).

    Under the null each unit's difference is as likely to have either sign; scipy's permutation_test with
    one sample and permutation_type='samples' flips the signs (exact when 2**n <= n_resamples).
    """
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(f"paired test needs two 1-D arrays of the same length, got {a.shape} and {b.shape}")
    d = a - b
    res = stats.permutation_test(
        (d,), lambda x, axis: np.sum(x, axis=axis), permutation_type="samples", vectorized=True,
        n_resamples=n_resamples, alternative="two-sided", batch=max(1, min(n_resamples, 2_000_000 // d.size)),
        random_state=np.random.default_rng(seed),
    )
    return float(res.pvalue)
