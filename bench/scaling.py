"""Comparison 4: evaluation time and peak memory as the pool grows (1x, 2x, 4x the set).

The set is replicated with `common.replicate` (copy k of language X is language `X{k}`, a parallel group of
its own), so queries, candidates, languages and pairs all grow. Goals: encoding time linear in the number
of texts; peak memory no worse than linear (blocked score matrices, never a full pooled score matrix).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bench import common
from bench.harness import run_once
from src.core import keys
from src.evaluation.driver import evaluate_sets

GOAL_LINEAR = 1.25  # growth per unit of size, relative to the 1x point, still counted as linear


@dataclass(frozen=True)
class Size:
    """Base slice of XQuAD-R and the replication factors."""

    languages: tuple[str, ...] | None
    articles: int
    factors: tuple[int, ...]
    model: str = "tiny"
    batch_size: int = 128


QUICK = Size(languages=("en", "de"), articles=1, factors=(1, 2))
FULL = Size(languages=None, articles=6, factors=(1, 2, 4))


def growth(values: list[float], factors: list[int]) -> list[float]:
    """Each point's value per unit of size, relative to the first point (1.0 everywhere = linear)."""
    if len(values) != len(factors) or not values or values[0] <= 0:
        raise ValueError("need one positive base value and one value per factor")
    return [(v / f) / (values[0] / factors[0]) for v, f in zip(values, factors)]


def run(quick: bool = False) -> dict[str, Any]:
    """Evaluate each replicated set twice (timed; then traced for Python/numpy peak memory)."""
    size = QUICK if quick else FULL
    base = common.article_subset(common.xquad_r(size.languages), size.articles)
    enc = common.encoder(size.model)
    evaluate_sets(enc, {"xquad_r": common.article_subset(base, 1)}, size.batch_size)  # warm-up
    points = []
    for f in size.factors:
        ds = common.replicate(base, f)
        n_texts = ds.num_questions + ds.num_candidates
        timed, (metrics, _, _) = run_once(lambda d=ds: evaluate_sets(enc, {"xquad_r": d}, size.batch_size))
        traced, _ = run_once(lambda d=ds: evaluate_sets(enc, {"xquad_r": d}, size.batch_size), trace_python=True)
        points.append({
            "factor": f, "languages": len(ds.languages), "texts": n_texts,
            "pool": ds.num_candidates, "pairs": len(ds.languages) ** 2,
            "total_s": timed.seconds, "encode_s": metrics[keys.time_key("xquad_r", "encode")],
            "score_s": metrics[keys.time_key("xquad_r", "score")],
            "rss_peak_mib": timed.rss_peak_mib, "py_peak_mib": traced.py_peak_mib,
            "py_retained_mib": traced.py_retained_mib,
            # what scoring needs beyond the results it returns (per-query metrics of every pair: L^2 x queries)
            "py_working_mib": traced.py_peak_mib - traced.py_retained_mib,
            "embeddings_mib": n_texts * enc.dim * 4 / 2**20,
        })
        print(f"  x{f}: {n_texts} texts, {len(ds.languages)} languages: {timed.seconds:.2f} s "
              f"(encode {points[-1]['encode_s']:.2f}, score {points[-1]['score_s']:.2f}), "
              f"numpy/Python peak {traced.py_peak_mib:.1f} MiB, RSS +{timed.rss_peak_mib or 0:.0f} MiB")
    factors = [p["factor"] for p in points]
    enc_growth = growth([p["encode_s"] for p in points], factors)
    score_growth = growth([p["score_s"] for p in points], factors)
    mem_growth = growth([p["py_working_mib"] for p in points], factors)
    kept_growth = growth([p["py_retained_mib"] for p in points], factors)
    last = points[-1]
    rows = [
        {"comparison": "4 scaling", "setting": f"{size.model} model, {len(base.languages)} languages x "
         f"{size.articles} articles replicated x{'/'.join(map(str, factors))}: encoding time per text",
         "project_s": last["encode_s"], "reference_s": points[0]["encode_s"],
         "ratio": None, "goal": f"linear (per-text growth <= {GOAL_LINEAR})",
         "met": max(enc_growth) <= GOAL_LINEAR,
         "extra": "per-text encoding time vs x1: " + ", ".join(f"x{f} {g:.2f}" for f, g in zip(factors, enc_growth))},
        {"comparison": "4 scaling", "setting": "same: working memory per text (tracemalloc peak minus the "
         "returned results)", "project_s": None, "reference_s": None, "ratio": None,
         "goal": f"no worse than linear (<= {GOAL_LINEAR})", "met": max(mem_growth) <= GOAL_LINEAR,
         "extra": "per-text working memory vs x1: " + ", ".join(f"x{f} {g:.2f}" for f, g in zip(factors, mem_growth))
                  + f"; x{factors[-1]} peak {last['py_peak_mib']:.0f} MiB of which {last['py_retained_mib']:.0f} MiB "
                  "returned (embeddings + per-query metrics of every pair, per text vs x1: "
                  + ", ".join(f"x{f} {g:.2f}" for f, g in zip(factors, kept_growth)) + ")"},
        {"comparison": "4 scaling", "setting": "same: scoring time (all pairs + pooled) per text",
         "project_s": last["score_s"], "reference_s": points[0]["score_s"], "ratio": None,
         "goal": "recorded (pairs grow as L², pooled as queries × pool)", "met": None,
         "extra": "per-text scoring vs x1: " + ", ".join(f"x{f} {g:.2f}" for f, g in zip(factors, score_growth))},
    ]
    return {"size": size.__dict__, "rows": rows, "points": points,
            "growth": {"encode": enc_growth, "score": score_growth, "py_working": mem_growth,
                       "py_retained": kept_growth},
            "dense_pooled_matrix_mib_at_max": float(4 * (last["texts"] - last["pool"]) * last["pool"] / 2**20)}
