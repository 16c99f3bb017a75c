"""Null calibration and power of the report's significance tests on simulated runs (issue 13, parts 3-4).

Simulated per-query AP (continuous, not clipped to [0, 1]): the run of sampler a with seed s scores query
(l, c) -- language l, question c -- as

    base[l, c] + effect[a] + eta[a, s] + sigma * (sqrt(persist) * q[a, l, c] + sqrt(1 - persist) * e[a, s, l, c])

q (sampler x query, shared by all seeds of a sampler) and e (the run's own query noise) are standard normal
with correlation rho between the languages of one question (sqrt(rho) * question + sqrt(1 - rho) * query);
eta ~ N(0, SE^2) is the seed effect, SE = sigma * sqrt((1 + (L - 1) rho) / (L C)) the standard error of a
run's mAP from its per-query noise. Under the null effect = 0. Old = today's test before issue 13: sign flips
per (language, query) share of the per-query AP averaged over seeds.
"""

from __future__ import annotations

import numpy as np
import pytest

from src.evaluation.artifacts.per_query import PerQuery
from src.reporting.stats import paired_sign_flip_test, query_contributions, question_clusters
from src.reporting.tables import ReportedRun, group_runs, significance

RHO = 0.3
SEEDS = ("1", "2", "3")
COLUMN = "sim/multi/map"


def _correlated(rng: np.random.Generator, n_lang: int, n_q: int, rho: float,
                size: tuple[int, ...] = ()) -> np.ndarray:
    """Standard normals of shape size + (n_lang, n_q), correlation rho within a question (column)."""
    question = rng.standard_normal((*size, 1, n_q))
    return np.sqrt(rho) * question + np.sqrt(1 - rho) * rng.standard_normal((*size, n_lang, n_q))


def _simulate(rng: np.random.Generator, n_lang: int, n_q: int, persist: float, sigma: float = 0.15,
              effect: float = 0.0) -> dict[str, np.ndarray]:
    """AP[(sampler)] of shape (seeds, languages, questions) for samplers xx and xy (xy gains `effect`)."""
    se = sigma * np.sqrt((1 + (n_lang - 1) * RHO) / (n_lang * n_q))
    base = rng.uniform(0.2, 0.8, (n_lang, n_q))
    out = {}
    for sampler, gain in (("xx", 0.0), ("xy", effect)):
        shared = np.sqrt(persist) * _correlated(rng, n_lang, n_q, RHO)
        own = np.sqrt(1 - persist) * _correlated(rng, n_lang, n_q, RHO, (len(SEEDS),))
        eta = rng.normal(0.0, se, (len(SEEDS), 1, 1))
        out[sampler] = base + gain + eta + sigma * (shared + own)
    return out


def _experiments(n: int, n_lang: int, n_q: int, persist: float, effect: float = 0.0, seed: int = 0
                 ) -> tuple[list[ReportedRun], dict[str, PerQuery], list[dict[str, np.ndarray]]]:
    """n independent 2-sampler x 3-seed experiments, one configuration (model) each, as the report reads them."""
    rng = np.random.default_rng(seed)
    langs = tuple(f"l{i:02d}" for i in range(n_lang))
    qids = {x: np.array([f"{x}:q{c}" for c in range(n_q)]) for x in langs}
    runs, per_query, sims = [], {}, []
    for i in range(n):
        sim = _simulate(rng, n_lang, n_q, persist, effect=effect)
        sims.append(sim)
        for sampler, ap in sim.items():
            for k, s in enumerate(SEEDS):
                run_id = f"e{i}-{sampler}-{s}"
                runs.append(ReportedRun(run_id, run_id, "FINISHED", f"m{i:04d}", sampler, None, s, ("sim",)))
                arrays = {f"multi/{x}/map": ap[k, j] for j, x in enumerate(langs)}
                per_query[run_id] = PerQuery("sim", langs, qids, arrays)
    return runs, per_query, sims


def _report_rates(runs: list[ReportedRun], per_query: dict[str, PerQuery], n_resamples: int) -> np.ndarray:
    """Raw p-values of the report's test (src.reporting.tables.significance), one per experiment."""
    comps = significance(group_runs(runs), [COLUMN], lambda run, _: per_query[run.run_id], n_resamples)
    assert all(not c.note and c.n_seeds == 3 for c in comps)
    return np.array([c.p for c in comps])


def _old_p(sim: dict[str, np.ndarray], n_resamples: int) -> float:
    """Today's test before issue 13: seed-averaged per-query AP, every (language, query) share its own unit."""
    langs = [f"l{i:02d}" for i in range(sim["xx"].shape[1])]
    shares = [query_contributions({f"multi/{x}/map": ap.mean(0)[j] for j, x in enumerate(langs)}, langs, "multi")
              for ap in (sim["xx"], sim["xy"])]
    return paired_sign_flip_test(shares[0], shares[1], n_resamples)


@pytest.mark.parametrize("rho, old_at_least", [(0.1, 0.12), (0.3, 0.25), (0.5, 0.35)])
def test_flipping_whole_questions_holds_the_level(rho: float, old_at_least: float) -> None:
    """Part 3: one run per sampler, null per-query difference, within-question correlation rho, 11 languages."""
    rng = np.random.default_rng(13)
    n_lang, n_q, trials = 11, 40, 1000
    langs = [f"l{i:02d}" for i in range(n_lang)]
    _, index = question_clusters({x: np.array([f"{x}:q{c}" for c in range(n_q)]) for x in langs}, langs)
    unit = clustered = 0
    for _ in range(trials):
        diff = _correlated(rng, n_lang, n_q, rho).ravel() / (n_lang * n_q)  # shares, languages concatenated
        unit += paired_sign_flip_test(diff, np.zeros_like(diff), 199, seed=1) < 0.05
        clustered += paired_sign_flip_test(diff, np.zeros_like(diff), 199, seed=1, clusters=index) < 0.05
    assert 0.03 <= clustered / trials <= 0.07
    assert unit / trials >= old_at_least  # shares as units: measured 0.15 / 0.32 / 0.43


@pytest.mark.parametrize("persist", [0.0, 0.5, 1.0])
def test_report_test_holds_the_level_under_seed_and_question_noise(persist: float) -> None:
    """Part 4: 1,000 null comparisons through the report's significance(), rho 0.3, seed SD = per-query SE.

    persist 0: the samplers do nothing at all (every run's query noise is its own); 1: sampler x question
    effects that cancel over questions (shared by a sampler's seeds); 0.5: half of each.
    """
    runs, per_query, sims = _experiments(1000, 6, 60, persist, seed=int(persist * 10))
    p = _report_rates(runs, per_query, 499)
    assert 0.03 <= np.mean(p < 0.05) <= 0.07  # measured 0.057 / 0.036 / 0.039 (persist 0 / 0.5 / 1)
    old = np.mean([_old_p(sim, 199) < 0.05 for sim in sims[:300]])
    assert old >= 0.2  # today's test: measured 0.36 / 0.31 / 0.27 over all 1,000


def test_report_test_detects_a_real_gain_with_three_seeds() -> None:
    """Power at the study's shape (11 languages x 1190 questions, 3 seeds): +0.02 AP on every query of xy.

    Noise: sigma 0.15 per run and query (two runs' per-query AP then differ by SD 0.21), half of it sampler x
    question and half the run's own, rho 0.3, seed SD = SE (0.0026): the difference's standard error is ~0.004.
    """
    runs, per_query, _ = _experiments(100, 11, 1190, persist=0.5, effect=0.02, seed=7)
    p = _report_rates(runs, per_query, 999)
    assert np.mean(p < 0.05) >= 0.8  # measured 0.91
