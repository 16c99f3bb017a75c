"""Compare the runs of a sweep: tables (mean ± 95% CI), paired significance tests, plots; logged to the parent.

    python -m src.report multirun/2026-11-25/14-03-00          # a sweep folder (holds mlflow_parent_run.json)
    python -m src.report <parent run id> --tracking-uri sqlite:///mlflow.db
    python -m src.report xlir --out reports/all                   # every training run of an experiment

Runs are read back from MLflow (`mlflow.search_runs`), per-query metrics from each run's
`eval/{set}/per_query.npz` artifact. Rows are (configuration, sampler): runs whose params differ beyond
sampling, seed and bookkeeping (tables.EXCLUDED_PARAMS) are never pooled, and of reruns of one seed only the
newest counts. Writes `table.md`, `table.csv`, `significance.csv`, per-language tables, PNG plots and
`report.json` into the report folder and, for a sweep, logs them to its parent run.

Speed: the tests are one (resamples x questions) sign matrix per comparison, drawn and multiplied in
blocks. A synthetic input of the study's shape (9 runs = 3 samplers x 3 seeds, XQuAD-R: 11 languages x 1190
questions, 12 comparisons, 9999 resamples; tests/reporting/test_study_scale.py) takes ~5 s in all on one core,
tables and plots included.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from src.reporting import plots
from src.reporting.stats import MIN_SEEDS
from src.reporting.tables import (
    Comparison,
    PerQueryLookup,
    RunRecord,
    columns,
    config_differences,
    drop_duplicate_seeds,
    group_runs,
    macro_table,
    markdown,
    per_language_table,
    provenance,
    run_rows,
    significance,
    write_csv,
)

if TYPE_CHECKING:
    from src.evaluation.artifacts.per_query import PerQuery

DEFAULT_URI = "sqlite:///mlflow.db"


class ReportError(RuntimeError):
    """Nothing to report on, or a target that is not a sweep folder, run id or experiment."""


@dataclass
class Target:
    """What the report covers: a sweep's children (parent_id set) or every training run of an experiment."""

    name: str
    tracking_uri: str
    parent_id: str | None = None
    experiment_id: str | None = None


def resolve_target(target: str, tracking_uri: str | None) -> Target:
    """Read the argument as a multirun folder, a parent run id or an experiment name, in that order."""
    import mlflow
    from mlflow.exceptions import MlflowException

    from src.tracking.sweep import read_parent

    folder = Path(target)
    if folder.is_dir():
        parent = read_parent(folder)
        if parent is None:
            raise ReportError(f"{folder} has no mlflow_parent_run.json: not a sweep folder written by "
                              "`python -m src.run -m ...` (pass a parent run id or an experiment name instead)")
        uri = tracking_uri or parent.tracking_uri
        return Target(_slug(f"sweep-{folder.parent.name}-{folder.name}"), uri, parent.run_id, parent.experiment_id)
    uri = tracking_uri or os.environ.get("MLFLOW_TRACKING_URI") or DEFAULT_URI
    client = mlflow.MlflowClient(tracking_uri=uri)
    if re.fullmatch(r"[0-9a-f]{32}", target):
        try:
            run = client.get_run(target)
            return Target(_slug(run.info.run_name or target), uri, target, run.info.experiment_id)
        except MlflowException:
            pass
    exp = client.get_experiment_by_name(target)
    if exp is None:
        raise ReportError(f"{target!r} is neither a sweep folder, a run id nor an experiment name in {uri}")
    return Target(_slug(target), uri, None, exp.experiment_id)


def _slug(text: str) -> str:
    """A folder name from a run or experiment name."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_") or "report"


@contextmanager
def _tracking_uri(uri: str) -> Iterator[None]:
    """mlflow.search_runs reads the global store, and set_tracking_uri also exports MLFLOW_TRACKING_URI to
    every later subprocess; restore both so a report never redirects the caller's own runs."""
    import mlflow

    previous = os.environ.get("MLFLOW_TRACKING_URI")
    mlflow.set_tracking_uri(uri)
    try:
        yield
    finally:
        mlflow.set_tracking_uri(previous)  # None unsets the variable again


def fetch_runs(target: Target) -> list[RunRecord]:
    """The sweep's children (or the experiment's training runs) via mlflow.search_runs, as RunRecords."""
    import mlflow

    with _tracking_uri(target.tracking_uri):
        if target.parent_id:
            found = mlflow.search_runs(filter_string=f"tags.`mlflow.parentRunId` = '{target.parent_id}'",
                                       search_all_experiments=True, output_format="list")
        else:
            found = mlflow.search_runs([target.experiment_id], filter_string="tags.task = 'train'",
                                       output_format="list")
    client = mlflow.MlflowClient(tracking_uri=target.tracking_uri)
    return sorted((_record(run, _curves(client, run)) for run in found), key=lambda r: r.name)


def select_samplers(runs: list[RunRecord], samplers: list[str] | None) -> list[RunRecord]:
    """The runs whose sampler label (`xx`, `hybrid-a0.5`, ...) is one of `samplers`; all of them for None."""
    if samplers is None:
        return runs
    if not samplers:
        raise ReportError("--samplers is empty: name at least one sampler label, e.g. xx,xy,hybrid-a0.5")
    present = sorted({r.sampling for r in runs})
    missing = [s for s in samplers if s not in present]
    if missing:
        raise ReportError(f"--samplers: no runs with sampler {', '.join(map(repr, missing))}; "
                          f"the target's runs have {', '.join(present) or 'none'}")
    return [r for r in runs if r.sampling in samplers]


def fetch_zero_shot(target: Target) -> list[RunRecord]:
    """FINISHED `src.evaluate` runs of the target's experiment (the untrained baselines), newest per model and sets."""
    import mlflow

    if target.experiment_id is None:
        return []
    with _tracking_uri(target.tracking_uri):
        found = mlflow.search_runs([target.experiment_id], filter_string="tags.task = 'evaluate' and "
                                   "attributes.status = 'FINISHED'", order_by=["attributes.start_time DESC"],
                                   output_format="list")
    newest: dict[tuple[str, str], RunRecord] = {}
    for run in found:
        record = _record(run, {})
        newest.setdefault((record.model, ",".join(record.eval_sets)), record)
    return sorted(newest.values(), key=lambda r: r.model)


def _record(run, curves: dict[str, list[tuple[int, float]]]) -> RunRecord:
    """An MLflow run as a RunRecord (its tags say model, sampler, seed and evaluation sets)."""
    from src.tracking.mlflow import ERROR_TAG, sampling_label

    tags = run.data.tags
    alpha = float(tags["alpha"]) if "alpha" in tags else None  # tagged only for structures with an alpha
    sampler = tags.get("sampling", "?")
    return RunRecord(
        run_id=run.info.run_id, name=run.info.run_name or run.info.run_id, status=run.info.status,
        model=tags.get("model", "?"), sampling=sampling_label(sampler, alpha), alpha=alpha,
        seed=tags.get("seed", "?"), eval_sets=tuple(s for s in tags.get("eval_data", "").split(",") if s),
        metrics=dict(run.data.metrics), error=tags.get(ERROR_TAG, ""), params=dict(run.data.params),
        start_time=run.info.start_time or 0, curves=curves, end_time=run.info.end_time or 0,
        selected_step=tags.get("selected_step", ""), commit=tags.get("git_commit", ""),
        resumed="resumed_from" in tags,
    )


def _curves(client, run) -> dict[str, list[tuple[int, float]]]:
    """The run's validation learning curves (keys.CURVE_KEYS that it logged), step-ordered."""
    from src.evaluation import keys

    out = {}
    for name in keys.CURVE_KEYS:
        if name in run.data.metrics:
            points = {m.step: m.value for m in sorted(client.get_metric_history(run.info.run_id, name),
                                                       key=lambda m: m.timestamp)}  # a replayed step: the latest
            out[name] = sorted(points.items())
    return out


class PerQueryCache:
    """Downloads and reads each run's `eval/{set}/per_query.npz` once (None when the run saved none)."""

    def __init__(self, tracking_uri: str, workdir: Path) -> None:
        self.uri, self.workdir = tracking_uri, workdir
        self.cache: dict[tuple[str, str], PerQuery | None] = {}

    def __call__(self, run: RunRecord, eval_set: str) -> PerQuery | None:
        """Per-query arrays and qids of one run and evaluation set."""
        import mlflow
        from mlflow.exceptions import MlflowException

        from src.evaluation.artifacts.per_query import FILE_NAME, load_per_query

        key = (run.run_id, eval_set)
        if key not in self.cache:
            try:
                local = mlflow.artifacts.download_artifacts(
                    run_id=run.run_id, artifact_path=f"eval/{eval_set}/{FILE_NAME}",
                    dst_path=str(self.workdir / run.run_id), tracking_uri=self.uri)
                self.cache[key] = load_per_query(Path(local))
            except (MlflowException, OSError):
                self.cache[key] = None  # run with eval.exports=false: no significance for it
        return self.cache[key]


def build_report(target: Target, out_dir: Path, n_resamples: int = 9999, seed: int = 0,
                 samplers: list[str] | None = None) -> dict:
    """Fetch the target's runs (of `samplers` only, if given), then write every table and plot into out_dir;
    returns report.json's content."""
    runs = select_samplers(fetch_runs(target), samplers)
    if not any(r.status == "FINISHED" for r in runs):
        where = f"parent run {target.parent_id}" if target.parent_id else f"experiment {target.name}"
        raise ReportError(f"no FINISHED training runs under {where} in {target.tracking_uri} "
                          f"({len(runs)} unfinished/failed); nothing to report")
    with tempfile.TemporaryDirectory() as tmp:
        return write_report(runs, out_dir, PerQueryCache(target.tracking_uri, Path(tmp)), n_resamples, seed,
                            {"target": asdict(target)}, zero_shot=fetch_zero_shot(target), samplers=samplers)


def build_domain_shift(target: Target, out_dir: Path, n_resamples: int = 9999, seed: int = 0,
                       samplers: list[str] | None = None) -> dict:
    """The pre-registered domain-shift analysis (results/domain_shift/README.md) of the target's runs."""
    from src.reporting import domain_shift

    runs = select_samplers(fetch_runs(target), samplers or list(domain_shift.SAMPLERS))
    finished, superseded = drop_duplicate_seeds([r for r in runs if r.status == "FINISHED"])
    groups = group_runs(finished)
    configs = sorted({c for c, _ in groups})
    if len(configs) != 1:
        raise ReportError(f"the domain-shift analysis compares samplers of one configuration; the target's runs "
                          f"have {len(configs)} ({', '.join(configs) or 'none finished'})")
    near = [r for r in fetch_zero_shot(target) if domain_shift.NEAR in r.eval_sets]
    if not near:
        raise ReportError(f"no FINISHED untrained evaluation (src.evaluate) with {domain_shift.NEAR} in experiment "
                          f"{target.name}: run `python -m src.evaluate data=domain_shift "
                          f"'eval.debias=[center,lir]' logger.experiment_name={target.name}` first")
    # The untrained run that covers the most pre-registered sets (the domain_shift preset's).
    untrained = max(near, key=lambda r: (len(set(r.eval_sets) & set(domain_shift.PRIMARY)), r.start_time))
    with tempfile.TemporaryDirectory() as tmp:
        report = domain_shift.write_domain_shift({s: rs for (_, s), rs in groups.items()}, untrained,
                                                 PerQueryCache(target.tracking_uri, Path(tmp)), out_dir,
                                                 n_resamples, seed)
    write_csv(out_dir / "runs.csv", run_rows([*runs, untrained]))
    unfinished = [r for r in runs if r.status != "FINISHED"]
    report = {"target": asdict(target), "analysis": "domain_shift", **report, "n_finished": len(finished),
              "n_unfinished": len(unfinished), "superseded": [r.name for r in superseded],
              "provenance": provenance([*runs, untrained])}
    (out_dir / "report.json").write_text(json.dumps(report, indent=2, default=str))
    return report


def write_report(runs: list[RunRecord], out_dir: Path, per_query: PerQueryLookup, n_resamples: int = 9999,
                 seed: int = 0, meta: dict | None = None, zero_shot: list[RunRecord] | None = None,
                 samplers: list[str] | None = None) -> dict:
    """Tables, tests, plots and report.json for these runs (one or more FINISHED); returns report.json's data.

    `zero_shot`: untrained evaluations of the same sets, shown beside the trained models in debias.md.
    `samplers`: the sampler labels the runs were chosen by (`--samplers`), said in table.md and report.json.
    """
    finished, superseded = drop_duplicate_seeds([r for r in runs if r.status == "FINISHED"])
    unfinished = [r for r in runs if r.status != "FINISHED"]  # failed, killed, or still running
    out_dir.mkdir(parents=True, exist_ok=True)
    eval_sets = sorted({s for r in finished for s in r.eval_sets})
    groups = group_runs(finished)
    # Only the columns some run logged: translation retrieval has no mono, Tatoeba no pooled setting.
    cols = [c for c in columns(eval_sets) if any(c in r.metrics for r in finished)]
    comparisons = significance(groups, cols, per_query, n_resamples, seed)
    configs = sorted({c for c, _ in groups})
    _write_tables(out_dir, groups, cols, comparisons, eval_sets, configs, unfinished, finished, superseded, samplers)
    write_csv(out_dir / "runs.csv", run_rows(runs))
    debias_tests = _write_debias_and_curves(out_dir, groups, eval_sets, zero_shot or [], per_query, n_resamples, seed)
    _write_plots(out_dir, groups, eval_sets, configs, per_query)
    report = {**(meta or {}), "samplers": samplers, "n_finished": len(finished), "n_unfinished": len(unfinished),
              "unfinished": [{"run": r.name, "status": r.status, "error": r.error} for r in unfinished],
              "superseded": [r.name for r in superseded],
              "provenance": provenance(runs),
              "configurations": config_differences(finished),
              "comparisons": _comparison_rows(comparisons),
              "debias_comparisons": _comparison_rows(debias_tests),
              "files": sorted(p.name for p in out_dir.iterdir() if p.name != "report.json") + ["report.json"]}
    (out_dir / "report.json").write_text(json.dumps(report, indent=2))
    return report


LEGEND = (
    "mAP (mean ± 95% t-interval over seeds); **bold** = best in the column; `>a,b` = significantly better "
    "than samplers a, b of the same configuration. Test: two levels, question clusters (all translations of a "
    "question, one `xling_id`, flip together) and seeds (seed-to-seed variance of the per-seed differences, "
    f"seed s paired with seed s); only samplers with the same seed set and at least {MIN_SEEDS} seeds (else "
    "`n/a (k seeds)`), Holm-corrected across all tested comparisons, 0.05. rank_distance: lower is better. "
    "R@k in the runs' metrics (`{set}/{setting}/r10`, not in this table) is the paper's recall of a query's "
    "relevant answers: in the pooled (multi) setting a query has one per language, so R@10 is at most 10/11 "
    "= 0.909 on XQuAD-R (11 languages), not 1.\n\n"
)


def _write_tables(out_dir: Path, groups: dict, cols: list[str], comparisons: list[Comparison],
                  eval_sets: list[str], configs: list[str], unfinished: list[RunRecord], finished: list[RunRecord],
                  superseded: list[RunRecord], samplers: list[str] | None = None) -> None:
    """table.md / table.csv, significance.csv and the per-language tables."""
    header, md_rows, csv_rows = macro_table(groups, cols, comparisons)
    write_csv(out_dir / "table.csv", csv_rows)
    write_csv(out_dir / "significance.csv", _comparison_rows(comparisons))
    parts = ["# Sweep report\n", LEGEND]
    if samplers:  # a chosen family: the Holm correction and every test cover these samplers only
        parts.append(f"Only the runs of the samplers {', '.join(samplers)} (`--samplers`).\n\n")
    parts.append(markdown(header, md_rows))
    differences = {k: v for k, v in config_differences(finished).items() if v}
    if differences:
        parts += ["\n## Configurations\n", ("Runs of one model whose params differ (sampling, seed and "
                                               "bookkeeping aside) are separate rows, never compared:\n\n"),
                  markdown(["configuration", "params that differ"],
                           [[k, ", ".join(f"`{p}={v}`" for p, v in d.items())] for k, d in differences.items()])]
    if comparisons:
        parts += ["\n## Paired tests\n", _tests_markdown(comparisons)]
    else:
        parts.append("\nNo paired tests: fewer than two samplers per configuration.\n")
    if superseded:
        parts += ["\n## Superseded runs\n", "Reruns of one configuration, sampler and seed: the newest counts.\n\n",
                  markdown(["run", "sampling", "seed"], [[r.name, r.sampling, r.seed] for r in superseded])]
    if unfinished:
        parts += ["\n## Unfinished runs\n", "Failed, killed or still running (a sweep in progress); not in the tables.\n\n",
                  markdown(["run", "status", "error"], [[r.name, r.status, r.error.replace("|", "\\|")]
                                                        for r in unfinished])]
    for eval_set in eval_sets:
        for config in configs:
            h, rows = per_language_table(groups, config, eval_set)
            stem = f"per_language_{eval_set}_{_slug(config)}"
            (out_dir / f"{stem}.md").write_text(f"# {eval_set} · {config} · mAP per query language\n\n"
                                                + markdown(h, rows))
            write_csv(out_dir / f"{stem}.csv", [dict(zip(h, (c.strip("*") for c in row))) for row in rows])
            parts += [f"\n## {eval_set} · {config} · per query language (mAP)\n", markdown(h, rows)]
    (out_dir / "table.md").write_text("".join(parts))


def _comparison_rows(comparisons: list[Comparison]) -> list[dict]:
    """Tests as rows (significance CSVs, report.json): every field plus the Holm decision."""
    return [{**asdict(c), "significant": c.significant} for c in comparisons]


def _tests_markdown(comparisons: list[Comparison]) -> str:
    """Tests as a markdown table: means, standard errors by source, raw and Holm p, or why a pair was not tested."""
    return markdown(
        ["column", "model", "a", "b", "seeds", "mean a", "mean b", "SE questions", "SE seeds", "p",
         "p (Holm)", "significant", "not tested because"],
        [[c.column, c.model, c.a, c.b, str(c.n_seeds), f"{c.mean_a:.4f}", f"{c.mean_b:.4f}",
          *(("", "", "", "", "–", c.note) if c.note else
            (f"{c.se_questions:.4f}", f"{c.se_seeds:.4f}", f"{c.p:.4g}", f"{c.p_holm:.4g}",
             "yes" if c.significant else "no", ""))] for c in comparisons])


DEBIAS_REFERENCE = "hybrid-a0.5"  # the trained sampler the post-hoc baselines are tested against


def _write_debias_and_curves(out_dir: Path, groups: dict, eval_sets: list[str], zero_shot: list[RunRecord],
                             per_query: PerQueryLookup, n_resamples: int, seed: int) -> list[Comparison]:
    """debias.md/.csv (raw and post-hoc debiased, zero-shot and trained), the tests of each debiased sampler
    against raw hybrid (Holm over this family), and the validation learning curves; returns the tests."""
    from src.reporting.tables import curve_rows, debias_table, debiased_groups

    parts = ["# Post-hoc debiasing beside training\n\n",
             ("mAP (mean ± 95% t-interval over seeds); `none` = the raw embeddings; `center` / `lir` = the same "
              "encodings after eval.debias (src/evaluation/debias.py); zero-shot = the untrained encoder.\n")]
    rows: list[dict] = []
    tests: list[Comparison] = []
    for eval_set in eval_sets:
        header, md_rows, csv = debias_table(groups, [r for r in zero_shot if eval_set in r.eval_sets], eval_set)
        parts += [f"\n## {eval_set}\n\n", markdown(header, md_rows)]
        rows += [{"eval_set": eval_set, **row} for row in csv]
        derived, origin = debiased_groups(groups, eval_set)
        if derived and any(s == DEBIAS_REFERENCE for _, s in groups):

            def lookup(run: RunRecord, name: str, origin: dict = origin) -> PerQuery | None:
                found = origin.get(run.run_id)
                return per_query(*found) if found else per_query(run, name)

            tests += significance({**groups, **derived}, columns([eval_set]), lookup, n_resamples, seed,
                                  against=DEBIAS_REFERENCE)
    if tests:
        parts += [f"\n## Paired tests against {DEBIAS_REFERENCE} (raw)\n\n",
                  ("Every other sampler, raw and debiased, against raw hybrid; the same two-level test as table.md, "
                   "Holm-corrected over this table (per evaluation set).\n\n"),
                  _tests_markdown(tests)]
        write_csv(out_dir / "debias_significance.csv", _comparison_rows(tests))
    (out_dir / "debias.md").write_text("".join(parts))
    write_csv(out_dir / "debias.csv", rows)
    curves = curve_rows(groups)
    if curves:
        write_csv(out_dir / "learning_curves.csv", curves)
        plots.learning_curves(groups, out_dir / "learning_curves.png")
    return tests


def _write_plots(out_dir: Path, groups: dict, eval_sets: list[str], configs: list[str],
                 per_query: PerQueryLookup) -> None:
    """Grouped bars per set, α curves where a configuration has several α, side-by-side heatmaps per one."""
    from src.evaluation.artifacts.grid_csv import grid_matrix
    from src.evaluation.artifacts.per_query import PerQuery
    from src.reporting.tables import average_per_query

    for eval_set in eval_sets:
        plots.bars(groups, eval_set, out_dir / f"bars_{eval_set}.png")
        for config in configs:
            mine = {s: runs for (c, s), runs in groups.items() if c == config}
            hybrid = [r for runs in mine.values() for r in runs if r.alpha is not None]
            if len({r.alpha for r in hybrid}) > 1:
                refs = {s: runs for s, runs in mine.items() if s in ("xx", "xy")}
                plots.alpha_curve(hybrid, eval_set, out_dir / f"alpha_{eval_set}_{_slug(config)}.png", refs)
            grids = {}
            for sampler, runs in mine.items():
                found = [per_query(r, eval_set) for r in runs]
                avg = average_per_query([None if pq is None else (pq.languages, pq.arrays) for pq in found])
                if avg is not None:
                    langs, arrays = avg
                    grids[sampler] = grid_matrix(PerQuery(eval_set, langs, {}, arrays).grid(), "map")
            if grids:
                plots.heatmaps(grids, f"{eval_set} · {config} · mAP (rows: query language)",
                               out_dir / f"heatmaps_{eval_set}_{_slug(config)}.png")


def log_to_parent(target: Target, out_dir: Path) -> None:
    """Upload the report folder to the parent run under `report/`."""
    import mlflow

    mlflow.MlflowClient(tracking_uri=target.tracking_uri).log_artifacts(target.parent_id, str(out_dir), "report")


def main(argv: list[str] | None = None) -> int:
    """CLI: returns 0 on success, 2 when there is nothing to report (message on stderr)."""
    parser = argparse.ArgumentParser(prog="python -m src.report", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("target", help="multirun folder, parent run id or experiment name")
    parser.add_argument("--tracking-uri", default=None,
                        help=f"MLflow store (default: the sweep's, else $MLFLOW_TRACKING_URI, else {DEFAULT_URI})")
    parser.add_argument("--out", type=Path, default=None, help="report folder (default: reports/<name>)")
    parser.add_argument("--resamples", type=int, default=9999, help="null draws per paired test (default 9999)")
    parser.add_argument("--seed", type=int, default=0, help="random seed of the paired tests")
    parser.add_argument("--samplers", type=lambda s: [x for x in s.split(",") if x], default=None,
                        help="comma-separated sampler labels (xx,xy,hybrid-a0.5): report these runs only, so the "
                             "tests and their Holm family cover them alone (default: every sampler)")
    parser.add_argument("--analysis", choices=("study", "domain_shift"), default="study",
                        help="study: every sampler pair on every set (results/study); domain_shift: the "
                             "pre-registered out-of-domain analysis (results/domain_shift/README.md)")
    args = parser.parse_args(argv)
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    try:
        target = resolve_target(args.target, args.tracking_uri)
        out_dir = args.out or Path("reports") / target.name
        build = build_domain_shift if args.analysis == "domain_shift" else build_report
        report = build(target, out_dir, args.resamples, args.seed, args.samplers)
    except ReportError as err:
        print(f"report: {err}", file=sys.stderr)
        return 2
    if target.parent_id:
        log_to_parent(target, out_dir)
    print((out_dir / "table.md").read_text().split("\n## ")[0])
    untested = sum(bool(c["note"]) for c in report["comparisons"])
    print(f"Report: {out_dir}/ ({report['n_finished']} runs, {report['n_unfinished']} unfinished, "
          f"{sum(c['significant'] for c in report['comparisons'])}/{len(report['comparisons']) - untested} "
          f"significant" + (f", {untested} not tested" if untested else "") + ")"
          + (f"; logged to parent run {target.parent_id}" if target.parent_id else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
