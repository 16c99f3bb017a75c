"""The study's report at full size, without MLflow: 9 runs (3 samplers x 3 seeds) on XQuAD-R's shape.

Each run has a `per_query.npz` in the export's layout (11 languages x 1190 questions; all 121 pairs and the
pooled setting, every per-query metric), read with the export's own reader, as src.report does after the
download. The whole report (12 comparisons at the default 9,999 resamples, tables, plots) must take <= 60 s;
measured ~5 s on one core of the development machine.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from src.evaluation.artifacts.per_query import PER_QUERY_METRICS, PerQuery, load_per_query
from src.reporting.tables import ReportedRun
from src.reporting.writer import write_report

LANGS = ("ar", "de", "el", "en", "es", "hi", "ru", "th", "tr", "vi", "zh")
N_QUESTIONS = 1190
GAIN = {"xx": 0.0, "hybrid-a0.5": 0.015, "xy": 0.03}  # mean AP over xx on every query


def _write_run(path: Path, rng: np.random.Generator, gain: float, base: np.ndarray) -> PerQuery:
    """A per_query.npz like save_per_query's: AP = question difficulty + sampler gain + noise, clipped."""
    arrays: dict[str, np.ndarray] = {"meta/dataset": np.array("xquad_r"), "meta/languages": np.array(LANGS)}
    seed_effect = rng.normal(0, 0.001)
    for i, x in enumerate(LANGS):
        arrays[f"qids/{x}"] = np.array([f"{x}:{c:024x}" for c in range(N_QUESTIONS)])
        for key in [f"{'mono' if x == y else 'cross'}/{x}-{y}" for y in LANGS] + [f"multi/{x}"]:
            ap = np.clip(base[i] + gain + seed_effect + rng.normal(0, 0.15, N_QUESTIONS), 0, 1)
            for metric in PER_QUERY_METRICS:
                arrays[f"{key}/{metric}"] = {"map": ap, "rank_distance": rng.uniform(1, 3000, N_QUESTIONS),
                                             "n_relevant": np.full(N_QUESTIONS, 11.0 if key[0] == "m" else 1.0)
                                             }.get(metric, np.clip(ap + rng.normal(0, 0.05, N_QUESTIONS), 0, 1))
    np.savez_compressed(path, **arrays)
    return load_per_query(path)


def test_study_report_takes_under_a_minute(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    base = rng.uniform(0.1, 0.9, (len(LANGS), N_QUESTIONS))
    runs, files = [], {}
    for sampler, gain in GAIN.items():
        for seed in ("1", "2", "3"):
            run_id = f"{sampler}-seed{seed}"
            pq = _write_run(tmp_path / f"{run_id}.npz", rng, gain, base)
            metrics = pq.grid().summary(["map"])
            files[run_id] = tmp_path / f"{run_id}.npz"
            runs.append(ReportedRun(run_id, run_id, "FINISHED", "me5_small", sampler, 0.5 if "hybrid" in sampler
                                  else None, seed, ("xquad_r",), metrics, params={"trainer.max_steps": "150"}))
    loaded: dict[str, PerQuery] = {}

    def per_query(run: ReportedRun, _: str) -> PerQuery:
        if run.run_id not in loaded:  # read once, as PerQueryCache does
            loaded[run.run_id] = load_per_query(files[run.run_id])
        return loaded[run.run_id]

    start = time.perf_counter()
    report = write_report(runs, tmp_path / "report", per_query)
    elapsed = time.perf_counter() - start
    print(f"study-shaped report: {elapsed:.1f} s")
    assert elapsed <= 60
    comps = report["comparisons"]
    assert len(comps) == 12 and all(c["n_seeds"] == 3 and not c["note"] for c in comps)
    by_pair = {(c["column"], c["a"], c["b"]): c for c in comps}
    assert all(by_pair[f"xquad_r/{s}/map", "xx", "xy"]["significant"] for s in ("mono", "cross", "multi"))
    assert not any(by_pair["xquad_r/multi/rank_distance", a, b]["significant"]  # pure noise
                   for a, b in (("hybrid-a0.5", "xx"), ("hybrid-a0.5", "xy"), ("xx", "xy")))
    table = (tmp_path / "report" / "table.md").read_text()
    assert "at most 10/11" in table and "tested (3 seeds)" in table
    assert json.loads((tmp_path / "report" / "report.json").read_text())["n_finished"] == 9
    assert (tmp_path / "report" / "heatmaps_xquad_r_me5_small.png").stat().st_size > 10_000
