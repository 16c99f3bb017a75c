"""write_report on a small experiment: configurations kept apart, reruns superseded, untested pairs explained."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np
import pytest

from src.evaluation.artifacts.per_query import PerQuery
from src.reporting.tables import ReportedRun
from src.reporting.writer import write_report

LANGS = ("de", "en", "zh")


def _per_query(rng: np.random.Generator, gain: float, n: int = 40) -> PerQuery:
    """Multi, mono and cross map / rank_distance arrays with qids, AP = uniform + gain."""
    arrays = {}
    for x in LANGS:
        for key in [f"{'mono' if x == y else 'cross'}/{x}-{y}" for y in LANGS] + [f"multi/{x}"]:
            arrays[f"{key}/map"] = np.clip(rng.uniform(0, 0.6, n) + gain, 0, 1)
            arrays[f"{key}/rank_distance"] = rng.uniform(1, 30, n)
    return PerQuery("xq", LANGS, {x: np.array([f"{x}:q{i}" for i in range(n)]) for x in LANGS}, arrays)


def test_report_sections_for_a_mixed_experiment(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    runs, data = [], {}
    plan = [("150", ("1", "2", "3")), ("20", ("1", "2"))]  # a long configuration with 3 seeds, a short with 2
    for steps, seeds in plan:
        for sampler, gain in (("xx", 0.0), ("xy", 0.3)):
            for seed in seeds:
                run_id = f"{steps}-{sampler}-{seed}"
                data[run_id] = _per_query(rng, gain)
                metrics = data[run_id].grid().summary(["map"])
                params = {"model.name": "tiny", "trainer.max_steps": steps, "seed": seed,
                          "sampling.name": sampler, "paths.output_dir": f"/out/{run_id}",
                          "runtime.threads": str(len(run_id))}
                runs.append(ReportedRun(run_id, f"{sampler}-seed{seed}", "FINISHED", "tiny", sampler, None, seed,
                                      ("xq",), metrics, params=params, start_time=1))
    rerun = ReportedRun("rerun", "xx-seed1", "FINISHED", "tiny", "xx", None, "1", ("xq",), runs[0].metrics,
                      params=runs[0].params, start_time=0)  # older than 150-xx-1: superseded
    failed = ReportedRun("dead", "xy-seed9", "FAILED", "tiny", "xy", None, "9", ("xq",), error="boom | here")
    report = write_report([*runs, rerun, failed], tmp_path, lambda run, _: data[run.run_id], n_resamples=199)

    assert report["n_finished"] == 10 and report["superseded"] == ["xx-seed1"] and report["n_unfinished"] == 1
    assert report["configurations"] == {"tiny[trainer.max_steps=150]": {"trainer.max_steps": "150"},
                                        "tiny[trainer.max_steps=20]": {"trainer.max_steps": "20"}}
    by_config = {}
    for c in report["comparisons"]:
        by_config.setdefault(c["model"], []).append(c)
    long, short = by_config["tiny[trainer.max_steps=150]"], by_config["tiny[trainer.max_steps=20]"]
    assert len(long) == len(short) == 4  # one pair per column, never across configurations
    assert all(not c["note"] and 0 < c["p"] <= c["p_holm"] <= 1 for c in long)
    assert all(c["note"] == "n/a (2 seeds)" and math.isnan(c["p"]) and not c["significant"] for c in short)

    table = (tmp_path / "table.md").read_text()
    assert "## Configurations" in table and "`trainer.max_steps=20`" in table
    assert "## Superseded runs" in table and "| xx-seed1 | xx | 1 |" in table
    assert "boom \\| here" in table  # failed run listed, its pipe escaped
    assert "| tiny[trainer.max_steps=20] | xy | 2 |" in table and "n/a (2 seeds) |" in table
    with (tmp_path / "significance.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert {r["note"] for r in rows} == {"", "n/a (2 seeds)"} and rows[0]["n_seeds"] == "3"
    for stem in ("tiny_trainer.max_steps_150", "tiny_trainer.max_steps_20"):
        assert (tmp_path / f"per_language_xq_{stem}.md").is_file()
        assert (tmp_path / f"heatmaps_xq_{stem}.png").read_bytes()[:4] == b"\x89PNG"
    assert json.loads((tmp_path / "report.json").read_text())["files"][-1] == "report.json"
    with (tmp_path / "runs.csv").open() as f:
        listed = list(csv.DictReader(f))
    assert len(listed) == 12 and {r["status"] for r in listed} == {"FINISHED", "FAILED"}
    assert listed[0]["evaluated_step"] == "last" and listed[0]["wall_min"] == ""  # no end time recorded


def test_debias_table_tests_and_learning_curves(tmp_path: Path) -> None:
    """Trained runs scored raw and with `center`/`lir`, validation curves, one zero-shot run: debias.md/.csv with
    the zero-shot rows first, debiased samplers tested against raw hybrid, learning curves."""
    import csv as csv_mod

    from src.core import keys

    rng = np.random.default_rng(1)
    loss = keys.VALIDATION_LOSS
    gains = {"xx": 0.0, "hybrid-a0.5": 0.2}  # raw; `lir` adds 0.2 more, `center` nothing
    runs, data = [], {}
    for sampler, gain in gains.items():
        for seed in ("1", "2", "3"):
            run_id, metrics = f"{sampler}-{seed}", {}
            for name, extra in (("xq", 0.0), ("xq.center", 0.0), ("xq.lir", 0.2)):
                pq = _per_query(rng, gain + extra)
                data[run_id, name] = PerQuery(name, pq.languages, pq.qids, pq.arrays)
                metrics.update(data[run_id, name].grid().summary(["map"]))
            runs.append(ReportedRun(run_id, f"{sampler}-seed{seed}", "FINISHED", "tiny", sampler, None, seed, ("xq",),
                                  metrics, params={"seed": seed, "sampling.name": sampler},
                                  curves={loss: [(50, 1.0 + int(seed)), (100, 0.5)]}))
    zero = ReportedRun("z", "zs", "FINISHED", "tiny", "?", None, "?", ("xq",), dict(runs[0].metrics))
    report = write_report(runs, tmp_path, lambda run, name: data[run.run_id, name], n_resamples=1999,
                          zero_shot=[zero])

    with (tmp_path / "debias.csv").open() as f:
        rows = {(r["sampling"], r["debias"]): r for r in csv_mod.DictReader(f)}
    assert sorted(rows) == sorted((s, d) for s in ("zero-shot", "xx", "hybrid-a0.5") for d in ("none", "center", "lir"))
    mean = np.mean([r.metrics[keys.key("xq.lir", keys.MULTI, "map")] for r in runs[:3]])
    assert float(rows[("xx", "lir")]["multi/map"]) == pytest.approx(mean)
    assert rows[("xx", "none")]["n_seeds"] == "3" and rows[("zero-shot", "none")]["n_seeds"] == "1"
    assert "| tiny | zero-shot | center | 1 |" in (tmp_path / "debias.md").read_text()
    # xx raw / +center / +lir and hybrid +center / +lir, each against raw hybrid, on 4 columns
    tests = report["debias_comparisons"]
    assert len(tests) == 5 * 4 and all("hybrid-a0.5" in (t["a"], t["b"]) for t in tests)
    by_pair = {(frozenset((t["a"], t["b"])), t["column"]): t for t in tests}
    worse = by_pair[frozenset(("xx", "hybrid-a0.5")), "xq/multi/map"]
    means = {worse["a"]: worse["mean_a"], worse["b"]: worse["mean_b"]}
    assert worse["significant"] and means["xx"] < means["hybrid-a0.5"]  # raw xx loses to raw hybrid
    gained = by_pair[frozenset(("hybrid-a0.5+lir", "hybrid-a0.5")), "xq/multi/map"]
    assert gained["significant"]  # lir adds 0.2 to hybrid: it beats raw hybrid
    assert (tmp_path / "debias_significance.csv").is_file()
    with (tmp_path / "learning_curves.csv").open() as f:
        curve = [r for r in csv_mod.DictReader(f) if r["sampling"] == "xx" and r["seed"] == "2"]
    assert [(r["metric"], r["step"], r["value"]) for r in curve] == [(loss, "50", "3.0"), (loss, "100", "0.5")]
    assert (tmp_path / "learning_curves.png").read_bytes()[:4] == b"\x89PNG"


def test_debias_variants_and_curve_keys() -> None:
    from src.core import keys

    found = ["xq/multi/map", "xq.lir/multi/map", "xq.center/mono/map", "xqx.lir/multi/map", "val/loss", "epoch"]
    assert keys.debiased_variants(found, "xq") == ["xq.center", "xq.lir"]
    assert keys.debias_method("xq.lir2") == "lir2" and keys.debias_method("xq") is None
    assert keys.CURVE_KEYS[0] == "val/loss" and "val/multi/rank_distance" in keys.CURVE_KEYS


def test_provenance_counts_commits_cpus_precisions_and_sums_wall_time() -> None:
    """Counts per commit / CPU / precision, the first start, the last end and the summed minutes of ended runs
    (a RUNNING run reopened by a resume has no end, whatever end time the store still holds)."""
    from src.reporting.tables import ReportedRun, provenance, run_rows

    hour = 3_600_000
    t0 = 1_795_000_000_000  # 2026-11-18 11:06:40 UTC
    amx = {"runtime.cpu_model": "Xeon", "runtime.precision": "bf16-mixed"}
    runs = [ReportedRun("a", "a", "FINISHED", "m", "xx", None, "1", ("xq",), params=amx, start_time=t0,
                      end_time=t0 + hour // 2, commit="aaaaaaaaaaaa1234"),
            ReportedRun("b", "b", "FINISHED", "m", "xy", None, "1", ("xq",), params=amx, start_time=t0 + hour,
                      end_time=t0 + 2 * hour, commit="bbbbbbbbbbbb", resumed=True),
            ReportedRun("c", "c", "RUNNING", "m", "xx", None, "2", ("xq",),
                      params={"runtime.cpu_model": "EPYC", "runtime.precision": "32-true"}, start_time=t0 + 3 * hour,
                      end_time=t0 + 4 * hour, commit="bbbbbbbbbbbb")]  # reopened by a resume: a stale end time
    assert provenance(runs) == {
        "runs": 3, "commits": {"aaaaaaaaaa": 1, "bbbbbbbbbb": 2}, "cpus": {"Xeon": 2, "EPYC": 1},
        "precisions": {"bf16-mixed": 2, "32-true": 1}, "first_start_utc": "2026-11-18 11:06",
        "last_end_utc": "2026-11-18 13:06", "wall_min_total": 90.0, "runs_without_end": 1}
    assert [(r["commit"], r["wall_min"], r["end_utc"], r["resumed"]) for r in run_rows(runs)] == [
        ("aaaaaaaaaa", 30.0, "2026-11-18 11:36", ""), ("bbbbbbbbbb", 60.0, "2026-11-18 13:06", "yes"),
        ("bbbbbbbbbb", "", "", "")]
    zero = ReportedRun("z", "z", "FINISHED", "m", "?", None, "42", ("xq",), params={"trainer.max_steps": "40"},
                       start_time=t0 + hour // 4, end_time=t0 + hour // 2, commit="cccccccccccc")
    rows = run_rows(runs[:2], untrained=[zero])
    assert [r["run"] for r in rows] == ["a", "z", "b"]  # by start time, the untrained run among them
    assert {k: rows[1][k] for k in ("sampling", "seed", "steps", "evaluated_step", "wall_min")} == {
        "sampling": "none (pre-trained)", "seed": "", "steps": 0, "evaluated_step": "pre-trained weights",
        "wall_min": 15.0}
    assert rows[0]["steps"] == "" and rows[0]["sampling"] == "xx"  # a trained run keeps its own values
