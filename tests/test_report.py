"""Report statistics and tables on constructed data where the answer is known."""

from __future__ import annotations

import math

import numpy as np
import pytest

from src.evaluation.exports import PerQuery
from src.reporting.stats import holm, mean_ci, paired_sign_flip_test, query_contributions
from src.reporting.tables import RunRecord, group_runs, macro_table, per_language_table, significance

LANGS = ("de", "en", "zh")


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


def _runs(metrics_by_sampler: dict[str, float]) -> list[RunRecord]:
    """Two seeds per sampler with the given macro mAP (seed 2 slightly higher)."""
    runs = []
    for sampler, value in metrics_by_sampler.items():
        for seed, bump in (("1", 0.0), ("2", 0.02)):
            metrics = {f"xq/{s}/map": value + bump for s in ("mono", "cross", "multi")}
            metrics["xq/multi/rank_distance"] = 20.0 - 10 * value
            metrics.update({f"xq/mono/map/{x}-{x}": value + bump for x in LANGS})
            metrics.update({f"xq/{s}/map/{x}": value + bump for s in ("cross", "multi") for x in LANGS})
            runs.append(RunRecord(f"{sampler}{seed}", f"{sampler}-seed{seed}", "FINISHED", "tiny", sampler,
                                  None, seed, ("xq",), metrics))
    return runs


def test_significance_marks_the_clearly_better_sampler() -> None:
    groups = group_runs(_runs({"xx": 0.3, "xy": 0.6}))
    per_query = {"xx": _arrays(np.random.default_rng(3), n=80), "xy": _arrays(np.random.default_rng(3), n=80, shift=0.3)}
    cols = ["xq/mono/map", "xq/cross/map", "xq/multi/map", "xq/multi/rank_distance"]
    comps = significance(groups, cols, lambda run, _: (LANGS, per_query[run.sampling]), n_resamples=999)
    assert [(c.column, c.a, c.b) for c in comps] == [(col, "xx", "xy") for col in cols]
    for c in comps[:3]:
        assert c.significant and c.winner() == "xy" and c.mean_b > c.mean_a
    assert not comps[3].significant  # rank distance arrays are identical for both samplers
    header, md_rows, csv_rows = macro_table(groups, cols, comps)
    assert header[:3] == ["model", "sampling", "seeds"]
    xy = next(r for r in md_rows if r[1] == "xy")
    assert xy[3].startswith("**0.610 ± 0.127**") and xy[3].endswith(">xx")  # t_{.975,1} * 0.01 = 0.127
    row = next(r for r in csv_rows if r["sampling"] == "xx")
    assert row["xq/mono/map/better_than"] == "-" and row["xq/multi/rank_distance"] == pytest.approx(17.0)
    # rank distance: lower is better, so the best (bold) cell is xy's 14.0.
    assert next(r for r in md_rows if r[1] == "xy")[6].startswith("**14.000")


def test_per_language_table_layout() -> None:
    groups = group_runs(_runs({"xx": 0.3, "xy": 0.6}))
    header, rows = per_language_table(groups, "tiny", "xq")
    assert header == ["query lang", "mono xx", "mono xy", "cross xx", "cross xy", "multi xx", "multi xy"]
    assert [r[0] for r in rows] == [*sorted(LANGS), "Mean"]
    assert rows[0][1:3] == ["0.310", "**0.610**"]


def test_plots_write_pngs(tmp_path) -> None:
    from src.evaluation.exports import grid_matrix
    from src.reporting import plots

    runs = []
    for alpha in (0.0, 0.5, 1.0):
        for seed in ("1", "2"):
            metrics = {f"xq/{s}/map": 0.2 + 0.1 * alpha + 0.01 * int(seed) for s in ("mono", "cross", "multi")}
            runs.append(RunRecord(f"h{alpha}{seed}", "h", "FINISHED", "tiny", f"hybrid-a{alpha:g}", alpha, seed,
                                  ("xq",), metrics))
    refs = {"xx": _runs({"xx": 0.3})}
    groups = group_runs(runs + refs["xx"])
    grid = grid_matrix(PerQuery("xq", LANGS, {}, _arrays(np.random.default_rng(0))).grid(), "map")
    written = [plots.bars(groups, "xq", tmp_path / "bars.png"),
               plots.alpha_curve(runs, "xq", tmp_path / "alpha.png", refs),
               plots.heatmaps({"xx": grid, "xy": grid}, "xq", tmp_path / "heat.png")]
    for path in written:
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 10_000
