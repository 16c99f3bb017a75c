"""The pre-registered domain-shift analysis on hand-built runs: gains, retention, ranking, families, breakdowns."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np
import pytest

from src.core import keys
from src.evaluation.artifacts.per_query import PerQuery
from src.reporting import domain_shift as ds
from src.reporting.tables import ReportedRun

LANGS = ("de", "en", "zh")
N = 40  # queries (= sentence ids) per language


def _pq(eval_set: str, level: float, rng: np.random.Generator, grid: bool) -> PerQuery:
    """Per-query arrays of one model on one set: every pair (no mono for bitext) and multi; `level` ~ quality."""
    arrays = {}
    for x in LANGS:
        for y in LANGS:
            if x == y and not grid:
                continue
            for metric in ("map", "r@1"):
                arrays[keys.pair_array_key(x, y, metric)] = np.clip(level + 0.1 * rng.standard_normal(N), 0, 1)
        arrays[keys.array_key(keys.MULTI, x, "map")] = np.clip(level + 0.1 * rng.standard_normal(N), 0, 1)
        arrays[keys.array_key(keys.MULTI, x, "rank_distance")] = 100 * (1 - level) + rng.standard_normal(N)
    qids = {x: np.array([f"{x}:{i}" for i in range(N)]) for x in LANGS}
    labels = {x: np.array(["health" if i % 2 else "travel" for i in range(N)]) for x in LANGS}
    return PerQuery(eval_set, LANGS, qids, arrays, labels=labels if eval_set == "sib200" else {},
                    label_name="topic" if eval_set == "sib200" else None)


def _macro(pq: PerQuery, column: str) -> float:
    """The macro value the grid would log for a column: languages' means of pair means of query means."""
    setting, _, metric = column.partition("/")
    return float(np.mean(list(ds.language_means(pq, setting, keys.array_metric(metric)).values())))


SETS = {"xquad_r": True, "ntrex": True, "sib200": False, "tatoeba": False}
# Quality per model and set: xy gains a lot near domain and less out of it, xx loses out of domain.
LEVEL = {"untrained": {"xquad_r": .50, "ntrex": .50, "sib200": .60, "tatoeba": .60},
         "xx": {"xquad_r": .60, "ntrex": .52, "sib200": .45, "tatoeba": .50},
         "xy": {"xquad_r": .70, "ntrex": .60, "sib200": .70, "tatoeba": .65},
         "hybrid-a0.5": {"xquad_r": .65, "ntrex": .56, "sib200": .66, "tatoeba": .62}}


@pytest.fixture(scope="module")
def study() -> tuple[dict[str, list[ReportedRun]], ReportedRun, dict[tuple[str, str], PerQuery]]:
    rng = np.random.default_rng(0)
    store: dict[tuple[str, str], PerQuery] = {}

    def record(name: str, seed: str) -> ReportedRun:
        run_id = f"{name}-{seed}"
        metrics = {}
        for eval_set, grid in SETS.items():
            for variant in ("", "center", "lir"):
                vset = f"{eval_set}.{variant}" if variant else eval_set
                pq = _pq(vset, LEVEL[name][eval_set] + (0.02 if variant else 0), rng, grid)
                store[run_id, vset] = pq
                for col in (*ds.GRID, "cross/r1"):
                    if grid or not col.startswith("mono"):
                        metrics[ds.column_key(eval_set, col, variant)] = _macro(pq, col)
        return ReportedRun(run_id, run_id, "FINISHED", "m", name, None, seed, tuple(SETS), metrics)

    samplers = {s: [record(s, seed) for seed in ("1", "2", "3")] for s in ("xx", "xy", "hybrid-a0.5")}
    return samplers, record("untrained", "0"), store


def test_gain_is_positive_when_better_and_rank_distance_flips() -> None:
    assert ds.gain(0.7, 0.5, "cross/map") == pytest.approx(0.2)
    assert ds.gain(80.0, 100.0, "multi/rank_distance") == pytest.approx(20.0)
    assert ds.gain(120.0, 100.0, "multi/rank_distance") == pytest.approx(-20.0)


def test_gains_and_retention_per_seed(study) -> None:
    samplers, untrained, _ = study
    found = {(g.sampler, g.eval_set, g.column): g for g in ds.gains(samplers, untrained)}
    g = found["xy", "sib200", "cross/r1"]
    expected = {r.seed: r.metrics["sib200/cross/r1"] - untrained.metrics["sib200/cross/r1"] for r in samplers["xy"]}
    assert g.per_seed == pytest.approx(expected)
    near = {r.seed: r.metrics["xquad_r/cross/map"] - untrained.metrics["xquad_r/cross/map"] for r in samplers["xy"]}
    assert g.retention_per_seed == pytest.approx({s: expected[s] / near[s] for s in expected})
    mean, ci = g.retention
    assert mean == pytest.approx(np.mean(list(g.retention_per_seed.values()))) and ci > 0
    # xx: positive near-domain gain, negative out of domain -> negative retention; NEAR itself has none.
    assert found["xx", "sib200", "multi/map"].retention[0] < 0
    assert not found["xx", "xquad_r", "mono/map"].retention_per_seed


def test_retention_not_reported_without_a_near_domain_gain(study) -> None:
    samplers, untrained, _ = study
    flat = {k: v for k, v in untrained.metrics.items()}
    flat["xquad_r/cross/map"] = float(np.mean([r.metrics["xquad_r/cross/map"] for r in samplers["xx"]])) - 0.01
    g = next(g for g in ds.gains({"xx": samplers["xx"]}, ReportedRun(**{**untrained.__dict__, "metrics": flat}))
             if g.eval_set == "sib200" and g.column == "cross/r1")
    assert not g.retention_per_seed and g.retention_note.startswith("not reported: XQuAD-R cross/map gain")
    assert math.isnan(g.retention[0])


def test_ranking_kept_or_not(study) -> None:
    samplers, _, _ = study
    assert ds.sampler_order(samplers, "xquad_r/cross/map", "cross/map") == ["xy", "hybrid-a0.5", "xx"]
    assert ds.keeps_ranking(samplers, "sib200", "cross/r1")  # xy > hybrid > xx there too
    # Rank distance: lower is better, so the best sampler comes first all the same.
    assert ds.sampler_order(samplers, "xquad_r/multi/rank_distance", "multi/rank_distance")[0] == "xy"


def test_one_family_per_set_with_six_comparisons_per_column(study) -> None:
    samplers, untrained, store = study
    comps = ds.family(samplers, untrained, "sib200", ds.BITEXT, lambda r, s: store.get((r.run_id, s)),
                      n_resamples=499)
    assert len(comps) == 6 * 3 and not [c for c in comps if c.note]
    pairs = {frozenset((c.a, c.b)) for c in comps}
    assert pairs == {frozenset(p) for p in (("xx", "xy"), ("xx", "hybrid-a0.5"), ("xy", "hybrid-a0.5"),
                                            ("xx", "untrained"), ("xy", "untrained"),
                                            ("hybrid-a0.5", "untrained"))}
    # Holm within this family only: the smallest adjusted p is the smallest raw p times the family size.
    raw = sorted(c.p for c in comps)
    assert min(c.p_holm for c in comps) == pytest.approx(min(1.0, raw[0] * len(comps)))
    # The untrained shares are paired with each seed of the sampler: xx is worse on SIB-200 -> "hurts".
    xx = next(c for c in comps if {c.a, c.b} == {"xx", "untrained"} and c.column == "sib200/cross/r1")
    assert xx.n_seeds == 3 and xx.significant and xx.winner() == "untrained"
    means = {xx.a: xx.mean_a, xx.b: xx.mean_b}
    assert means["xx"] == pytest.approx(np.mean([r.metrics["sib200/cross/r1"] for r in samplers["xx"]]))
    assert means["untrained"] == pytest.approx(untrained.metrics["sib200/cross/r1"])
    worse = ds.hurts([("primary: sib200", c) for c in comps])
    assert {(c.column, c.a if c.b == "untrained" else c.b) for c in worse} >= {("sib200/cross/r1", "xx")}
    assert not [c for c in worse if "xy" in (c.a, c.b)]


def test_label_means_exact() -> None:
    arrays = {keys.pair_array_key("de", "en", "map"): np.array([1.0, 0.0, 0.5, np.nan]),
              keys.pair_array_key("en", "de", "map"): np.array([0.0, 1.0, 1.0, 1.0])}
    labels = {"de": np.array(["a", "b", "a", "b"]), "en": np.array(["a", "b", "a", "b"])}
    pq = PerQuery("s", ("de", "en"), {x: np.array([f"{x}:{i}" for i in range(4)]) for x in ("de", "en")}, arrays,
                  labels=labels)
    # de: a -> (1 + .5)/2 = .75, b -> 0 (NaN row left out); en: a -> .5, b -> 1; mean over languages.
    assert ds.label_means(pq, "cross", "map") == pytest.approx({"a": 0.625, "b": 0.5})
    assert ds.language_means(pq, "cross", "map") == pytest.approx({"de": 0.5, "en": 0.75})


def test_write_domain_shift_files(study, tmp_path: Path) -> None:
    samplers, untrained, store = study
    report = ds.write_domain_shift(samplers, untrained, lambda r, s: store.get((r.run_id, s)), tmp_path,
                                   n_resamples=999)
    for name in ("table.md", "table.csv", "tests.md", "tests.csv", "gains.csv", "gains.png", "retention.png",
                 "ranking.csv", "per_language.csv", "by_topic.csv"):
        assert (tmp_path / name).is_file(), name
    assert report["primary_sets"] == ["xquad_r", "ntrex", "sib200", "tatoeba"]
    families = {c["family"] for c in report["comparisons"]}
    assert {"primary: xquad_r", "primary: sib200", "primary: tatoeba", "secondary center: sib200.center"} <= families
    assert sum(c["family"] == "primary: tatoeba" for c in report["comparisons"]) == 6
    with (tmp_path / "table.csv").open() as f:
        rows = list(csv.DictReader(f))
    untrained_sib = {r["column"]: r for r in rows if r["set"] == "sib200" and r["model"] == "untrained"
                     and r["variant"] == "raw"}
    assert float(untrained_sib["cross/r1"]["mean"]) == pytest.approx(untrained.metrics["sib200/cross/r1"])
    assert "mono/map" not in untrained_sib  # translation retrieval has no mono column
    with (tmp_path / "by_topic.csv").open() as f:
        topics = {r["label"] for r in csv.DictReader(f)}
    assert topics == {"health", "travel"}
    assert any(h["sampler"] == "xx" and h["column"] == "sib200/cross/r1" for h in report["fine_tuning_hurts"])
