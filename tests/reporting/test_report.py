"""Report statistics and tables on constructed data where the answer is known."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from src.evaluation.artifacts.per_query import PerQuery
from src.reporting.stats import (
    cluster_sums,
    holm,
    mean_ci,
    paired_sign_flip_test,
    query_contributions,
    question_clusters,
    seed_cluster_test,
)
from src.reporting.tables import (
    ReportedRun,
    config_differences,
    config_labels,
    drop_duplicate_seeds,
    group_runs,
    macro_table,
    normalise_params,
    per_language_table,
    significance,
)

LANGS = ("de", "en", "zh")
COLS = ["xq/mono/map", "xq/cross/map", "xq/multi/map", "xq/multi/rank_distance"]


def test_holm_on_known_values() -> None:
    # sorted 0.005, 0.01, 0.03, 0.04 -> x4, x3, x2, x1 = 0.02, 0.03, 0.06, 0.04 -> monotone: 0.06 for the last
    np.testing.assert_allclose(holm([0.01, 0.04, 0.03, 0.005]), [0.03, 0.06, 0.06, 0.02])
    np.testing.assert_allclose(holm([0.5, 0.9]), [1.0, 1.0])  # capped at 1
    np.testing.assert_allclose(holm([0.02]), [0.02])


def test_mean_ci_is_the_t_interval() -> None:
    mean, half = mean_ci([1.0, 2.0, 3.0])
    assert mean == 2.0
    assert half == pytest.approx(4.302652729911275 / math.sqrt(3))  # t_{0.975, 2} * s / sqrt(n), s = 1
    assert math.isnan(mean_ci([0.7])[1]) and mean_ci([0.7])[0] == 0.7
    assert mean_ci([1.0, float("nan"), 3.0]) == (2.0, pytest.approx(12.706204736174698 * 1.0))


def test_sign_flip_test_identical_better_and_exact() -> None:
    rng = np.random.default_rng(1)
    a = rng.uniform(0, 1, 300)
    assert paired_sign_flip_test(a, a.copy()) == pytest.approx(1.0)
    better = np.clip(a + 0.1 + rng.normal(0, 0.05, a.size), 0, 1)
    assert paired_sign_flip_test(better, a) < 0.01
    assert paired_sign_flip_test(better, a) == paired_sign_flip_test(a, better)  # two-sided
    # Three units, all +1: the 8 sign patterns are enumerated; |sum| = 3 in 2 of them -> p = 2/8.
    assert paired_sign_flip_test(np.ones(3), np.zeros(3)) == pytest.approx(0.25)
    noise = rng.normal(0, 1, 300)
    assert paired_sign_flip_test(noise, rng.permutation(noise)) > 0.05
    with pytest.raises(ValueError, match="same length"):
        paired_sign_flip_test(np.ones(3), np.ones(4))


def test_sign_flip_test_flips_whole_clusters() -> None:
    # Six shares in three questions: 2**3 patterns of cluster sums (2, 2, 2); |sum| = 6 in 2 of them.
    clusters = np.array([0, 0, 1, 1, 2, 2])
    assert paired_sign_flip_test(np.ones(6), np.zeros(6), clusters=clusters) == pytest.approx(0.25)
    assert paired_sign_flip_test(np.ones(6), np.zeros(6)) == pytest.approx(2 / 64)  # shares as units
    # Random patterns (2**40 > n): p = (1 + hits) / (1 + n), the same draws for the same seed.
    rng = np.random.default_rng(4)
    a, b, c = rng.normal(size=80), rng.normal(size=80), np.repeat(np.arange(40), 2)
    p = paired_sign_flip_test(a, b, 999, seed=3, clusters=c)
    assert p == paired_sign_flip_test(a, b, 999, seed=3, clusters=c)
    assert p * 1000 == pytest.approx(round(p * 1000))


def test_question_clusters_join_translations() -> None:
    qids = {"de": np.array(["de:q2", "de:q1"]), "en": np.array(["en:q1", "en:q2", "en:q3"]),
            "zh": np.array(["zh:q1"])}
    names, index = question_clusters(qids, LANGS)
    assert names.tolist() == ["q1", "q2", "q3"]
    assert index.tolist() == [1, 0, 0, 1, 2, 0]  # de q2 q1, en q1 q2 q3, zh q1
    np.testing.assert_allclose(cluster_sums(np.arange(6.0), index, 3), [1 + 2 + 5, 0 + 3, 4])
    with pytest.raises(ValueError, match="6 cluster labels"):
        cluster_sums(np.ones(5), index, 3)


def test_seed_cluster_test_parts_on_constructed_differences() -> None:
    rng = np.random.default_rng(0)
    questions = rng.normal(0, 1e-3, 200)
    # Every seed the same: no seed variance, and the test is the clustered sign-flip test (same draws).
    same = seed_cluster_test(np.tile(questions, (3, 1)), 999, seed=5)
    assert same.se_seeds == 0 and same.se_questions == pytest.approx(np.sqrt((questions ** 2).sum()))
    assert same.difference == pytest.approx(questions.sum())
    assert same.p == paired_sign_flip_test(questions, np.zeros(200), 999, seed=5)
    # A pure seed effect spread evenly over the questions: the question part is (nearly) nothing, the
    # test is the t-test on the per-seed differences (1, 2, 6): mean 3, variance 7, df 2.
    offsets = np.outer([1.0, 2.0, 6.0], np.full(200, 1 / 200))
    seeds = seed_cluster_test(offsets, 9999)
    assert seeds.difference == pytest.approx(3.0) and seeds.se_seeds == pytest.approx(math.sqrt(7 / 3))
    assert seeds.se_questions ** 2 == pytest.approx((9 * 9 - 41) / 6 / 200)  # Σ_c (S² m² - Σ_s d²) / (S(S-1))
    t_p = 2 * stats.t.sf(3 / math.sqrt(7 / 3 + seeds.se_questions ** 2), 2)
    assert seeds.p == pytest.approx(t_p, abs=0.01)
    assert seed_cluster_test(np.zeros((3, 5))).p == 1.0  # identical runs
    with pytest.raises(ValueError, match="seeds >= 2"):
        seed_cluster_test(np.ones((1, 5)))


def _arrays(rng: np.random.Generator, n: int = 6, shift: float = 0.0) -> dict[str, np.ndarray]:
    """Random per-query arrays in per_query.npz's layout, with a left-out query in one cross pair."""
    arrays = {}
    for x in LANGS:
        for y in LANGS:
            setting = "mono" if x == y else "cross"
            arrays[f"{setting}/{x}-{y}/map"] = np.clip(rng.uniform(0, 1, n) + shift, 0, 1)
            arrays[f"{setting}/{x}-{y}/rank_distance"] = rng.uniform(2, 50, n)
            arrays[f"{setting}/{x}-{y}/n_relevant"] = np.full(n, 3.0)
        arrays[f"multi/{x}/map"] = np.clip(rng.uniform(0, 1, n) + shift, 0, 1)
        arrays[f"multi/{x}/rank_distance"] = rng.uniform(2, 50, n)
        arrays[f"multi/{x}/n_relevant"] = np.full(n, 3.0)
    arrays["cross/de-zh/map"][2] = np.nan  # query 2 has no relevant candidate in zh
    return arrays


def test_query_contributions_sum_to_the_grid_macro_average() -> None:
    arrays = _arrays(np.random.default_rng(0))
    summary = PerQuery("xq", LANGS, {}, arrays).grid().summary(["map"])
    for setting in ("mono", "cross", "multi"):
        share = query_contributions(arrays, LANGS, setting)
        assert share.shape == (3 * 6,)
        assert share.sum() == pytest.approx(summary[f"xq/{setting}/map"], abs=1e-12)
    rd = query_contributions(arrays, LANGS, "multi", "rank_distance")
    assert rd.sum() == pytest.approx(summary["xq/multi/rank_distance"], abs=1e-12)
    with pytest.raises(KeyError, match="multi/de/ndcg10"):
        query_contributions(arrays, LANGS, "multi", "ndcg10")


def _runs(metrics_by_sampler: dict[str, float], seeds: tuple[str, ...] = ("1", "2", "3"),
          params: dict[str, str] | None = None) -> list[ReportedRun]:
    """Runs per sampler with the given macro mAP, each later seed 0.02 higher."""
    runs = []
    for sampler, value in metrics_by_sampler.items():
        for seed, bump in zip(seeds, (0.0, 0.02, 0.04, 0.06)):
            metrics = {f"xq/{s}/map": value + bump for s in ("mono", "cross", "multi")}
            metrics["xq/multi/rank_distance"] = 20.0 - 10 * value
            metrics.update({f"xq/mono/map/{x}-{x}": value + bump for x in LANGS})
            metrics.update({f"xq/{s}/map/{x}": value + bump for s in ("cross", "multi") for x in LANGS})
            runs.append(ReportedRun(f"{sampler}{seed}", f"{sampler}-seed{seed}", "FINISHED", "tiny", sampler,
                                  None, seed, ("xq",), metrics, params=dict(params or {})))
    return runs


def _per_query(n: int = 80, shift: float = 0.3) -> dict[str, PerQuery]:
    """Per-query arrays per run id: seed s of xy is seed s of xx shifted (rank distances identical)."""
    out = {}
    for seed in ("1", "2", "3", "4"):
        qids = {x: np.array([f"{x}:q{i}" for i in range(n)]) for x in LANGS}
        for sampler, bump in (("xx", 0.0), ("xy", shift)):
            arrays = _arrays(np.random.default_rng(int(seed)), n=n, shift=bump)
            out[f"{sampler}{seed}"] = PerQuery("xq", LANGS, qids, arrays)
    return out


def test_significance_marks_the_clearly_better_sampler() -> None:
    groups = group_runs(_runs({"xx": 0.3, "xy": 0.6}))
    per_query = _per_query()
    comps = significance(groups, COLS, lambda run, _: per_query[run.run_id], n_resamples=999)
    assert [(c.column, c.a, c.b, c.n_seeds, c.note) for c in comps] == [(col, "xx", "xy", 3, "") for col in COLS]
    for c in comps[:3]:
        assert c.significant and c.winner() == "xy" and c.mean_b > c.mean_a
        assert c.se_questions > 0 and c.se_seeds > 0
    assert not comps[3].significant and comps[3].p == 1.0  # rank distance arrays are identical for both samplers
    header, md_rows, csv_rows = macro_table(groups, COLS, comps)
    assert header[:3] == ["model", "sampling", "seeds"] and header[-1] == "tests"
    xy = next(r for r in md_rows if r[1] == "xy")
    assert xy[3].startswith("**0.620 ± 0.050**") and xy[3].endswith(">xx")  # t_{.975,2} * 0.02 / sqrt(3) = 0.0497
    assert xy[-1] == "tested (3 seeds)"
    row = next(r for r in csv_rows if r["sampling"] == "xx")
    assert row["xq/mono/map/better_than"] == "-" and row["xq/multi/rank_distance"] == pytest.approx(17.0)
    # rank distance: lower is better, so the best (bold) cell is xy's 14.0.
    assert next(r for r in md_rows if r[1] == "xy")[6].startswith("**14.000")


def test_significance_needs_three_matched_seeds() -> None:
    per_query = _per_query()
    two = significance(group_runs(_runs({"xx": 0.3, "xy": 0.6}, ("1", "2"))), COLS,
                       lambda run, _: per_query[run.run_id], n_resamples=99)
    assert {(c.note, c.n_seeds, math.isnan(c.p), c.significant) for c in two} == {
        ("n/a (2 seeds)", 2, True, False)}
    _, md_rows, _ = macro_table(group_runs(_runs({"xx": 0.3, "xy": 0.6}, ("1", "2"))), COLS, two)
    assert all(">" not in cell for row in md_rows for cell in row) and md_rows[0][-1] == "n/a (2 seeds)"
    # xx has seeds 1-4, xy 1-3: not paired, even though three seeds match.
    runs = [r for r in _runs({"xx": 0.3, "xy": 0.6}, ("1", "2", "3", "4")) if r.run_id != "xy4"]
    uneven = significance(group_runs(runs), COLS[:1], lambda run, _: per_query[run.run_id], n_resamples=99)
    assert uneven[0].note.startswith("skipped: seed sets differ (xx: 1,2,3,4; xy: 1,2,3)")
    missing = significance(group_runs(_runs({"xx": 0.3, "xy": 0.6})), COLS[:1],
                           lambda run, _: None if run.run_id == "xy2" else per_query[run.run_id], n_resamples=99)
    assert missing[0].note == "skipped: no per-query arrays with question ids (xy-seed2)"
    renamed = dict(per_query, xy1=PerQuery("xq", LANGS, {x: np.array([f"{x}:z{i}" for i in range(80)]) for x in LANGS},
                                          per_query["xy1"].arrays))
    differ = significance(group_runs(_runs({"xx": 0.3, "xy": 0.6})), COLS[:1], lambda run, _: renamed[run.run_id],
                          n_resamples=99)
    assert differ[0].note == "skipped: the runs scored different questions"


def test_configurations_are_never_pooled() -> None:
    base = {"model.name": "tiny", "trainer.max_steps": "150", "paths.data_dir": "/data", "paths.output_dir": "/o/1",
            "data.train.path": "/data/lareqa/mlqa-r", "callbacks.model_checkpoint.dirpath": "/o/1/checkpoints",
            "runtime.cores": "2", "logger.tracking_uri": "sqlite:///a.db", "sampling.name": "xx", "seed": "1"}
    moved = {**base, "paths.data_dir": "/mnt/d", "paths.output_dir": "/o/2",
             "data.train.path": "/mnt/d/lareqa/mlqa-r",
             "callbacks.model_checkpoint.dirpath": "/o/2/checkpoints", "runtime.cores": "16", "seed": "2"}
    assert normalise_params(base) == normalise_params(moved) == {
        "model.name": "tiny", "trainer.max_steps": "150", "data.train.path": "${paths.data_dir}/lareqa/mlqa-r"}
    short = {**base, "trainer.max_steps": "20"}
    runs = _runs({"xx": 0.3, "xy": 0.6}, params=base) + [
        ReportedRun(f"s{r.run_id}", f"short-{r.name}", r.status, r.model, r.sampling, r.alpha, r.seed, r.eval_sets,
                  r.metrics, params=short) for r in _runs({"xx": 0.3, "xy": 0.6})]
    labels = config_labels(runs)
    assert sorted(set(labels.values())) == ["tiny[trainer.max_steps=150]", "tiny[trainer.max_steps=20]"]
    assert config_differences(runs) == {"tiny[trainer.max_steps=150]": {"trainer.max_steps": "150"},
                                        "tiny[trainer.max_steps=20]": {"trainer.max_steps": "20"}}
    groups = group_runs(runs)
    assert sorted(groups) == [(c, s) for c in sorted(set(labels.values())) for s in ("xx", "xy")]
    assert all(len(g) == 3 for g in groups.values())
    per_query = _per_query()
    comps = significance(groups, COLS[:1], lambda run, _: per_query[run.run_id.lstrip("s")], n_resamples=99)
    assert [(c.model, c.a, c.b) for c in comps] == [("tiny[trainer.max_steps=150]", "xx", "xy"),
                                                    ("tiny[trainer.max_steps=20]", "xx", "xy")]


def test_reruns_of_a_seed_count_once() -> None:
    runs = _runs({"xx": 0.3})
    rerun = ReportedRun("xx1b", "xx-seed1-again", "FINISHED", "tiny", "xx", None, "1", ("xq",), runs[0].metrics,
                      start_time=10)
    kept, superseded = drop_duplicate_seeds([*runs, rerun])
    assert [r.run_id for r in kept] == ["xx2", "xx3", "xx1b"] and [r.run_id for r in superseded] == ["xx1"]
    with pytest.raises(ValueError, match="seed 1 twice"):
        group_runs([*runs, rerun])


def test_per_language_table_layout() -> None:
    groups = group_runs(_runs({"xx": 0.3, "xy": 0.6}))
    header, rows = per_language_table(groups, "tiny", "xq")
    assert header == ["query lang", "mono xx", "mono xy", "cross xx", "cross xy", "multi xx", "multi xy"]
    assert [r[0] for r in rows] == [*sorted(LANGS), "Mean"]
    assert rows[0][1:3] == ["0.320", "**0.620**"]


def test_plots_write_pngs(tmp_path) -> None:
    from src.evaluation.artifacts.grid_csv import grid_matrix
    from src.reporting import plots

    runs = []
    for alpha in (0.0, 0.5, 1.0):
        for seed in ("1", "2"):
            metrics = {f"xq/{s}/map": 0.2 + 0.1 * alpha + 0.01 * int(seed) for s in ("mono", "cross", "multi")}
            runs.append(ReportedRun(f"h{alpha}{seed}", "h", "FINISHED", "tiny", f"hybrid-a{alpha:g}", alpha, seed,
                                  ("xq",), metrics))
    refs = {"xx": _runs({"xx": 0.3})}
    groups = group_runs(runs + refs["xx"])
    grid = grid_matrix(PerQuery("xq", LANGS, {}, _arrays(np.random.default_rng(0))).grid(), "map")
    written = [plots.bars(groups, "xq", tmp_path / "bars.png"),
               plots.alpha_curve(runs, "xq", tmp_path / "alpha.png", refs),
               plots.heatmaps({"xx": grid, "xy": grid}, "xq", tmp_path / "heat.png")]
    for path in written:
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 10_000
