"""Writing the report: tables (mean ± 95% CI), paired significance tests, per-language tables, plots, JSON.

`build_report` (the study analysis) and `build_domain_shift` (the pre-registered out-of-domain analysis) read
the runs through src/reporting/runs.py and write the report folder; nothing here talks to MLflow directly.

Speed: the tests are one (resamples x questions) sign matrix per comparison, drawn and multiplied in
blocks. A synthetic input of the study's shape (9 runs = 3 samplers x 3 seeds, XQuAD-R: 11 languages x 1190
questions, 12 comparisons, 9999 resamples; tests/reporting/test_study_scale.py) takes ~5 s in all on one core,
tables and plots included.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING

from src.reporting import plots
from src.reporting.runs import (
    PerQueryCache,
    ReportError,
    Target,
    fetch_runs,
    fetch_zero_shot,
    select_samplers,
    slug,
)
from src.reporting.stats import MIN_SEEDS
from src.reporting.tables import (
    Comparison,
    PerQueryLookup,
    ReportedRun,
    columns,
    config_differences,
    drop_duplicate_seeds,
    group_runs,
    macro_table,
    per_language_table,
    provenance,
    run_rows,
    significance,
    write_csv,
)
from src.utils.markdown import markdown

if TYPE_CHECKING:
    from src.evaluation.artifacts.per_query import PerQuery




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
    write_csv(out_dir / "runs.csv", run_rows(runs, untrained=[untrained]))
    unfinished = [r for r in runs if r.status != "FINISHED"]
    report = {"target": asdict(target), "analysis": "domain_shift", **report, "n_finished": len(finished),
              "n_unfinished": len(unfinished), "superseded": [r.name for r in superseded],
              "provenance": provenance([*runs, untrained])}
    (out_dir / "report.json").write_text(json.dumps(report, indent=2, default=str))
    return report


def write_report(runs: list[ReportedRun], out_dir: Path, per_query: PerQueryLookup, n_resamples: int = 9999,
                 seed: int = 0, meta: dict | None = None, zero_shot: list[ReportedRun] | None = None,
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
                  eval_sets: list[str], configs: list[str], unfinished: list[ReportedRun], finished: list[ReportedRun],
                  superseded: list[ReportedRun], samplers: list[str] | None = None) -> None:
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
            stem = f"per_language_{eval_set}_{slug(config)}"
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


def _write_debias_and_curves(out_dir: Path, groups: dict, eval_sets: list[str], zero_shot: list[ReportedRun],
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

            def lookup(run: ReportedRun, name: str, origin: dict = origin) -> PerQuery | None:
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
                plots.alpha_curve(hybrid, eval_set, out_dir / f"alpha_{eval_set}_{slug(config)}.png", refs)
            grids = {}
            for sampler, runs in mine.items():
                found = [per_query(r, eval_set) for r in runs]
                avg = average_per_query([None if pq is None else (pq.languages, pq.arrays) for pq in found])
                if avg is not None:
                    langs, arrays = avg
                    grids[sampler] = grid_matrix(PerQuery(eval_set, langs, {}, arrays).grid(), "map")
            if grids:
                plots.heatmaps(grids, f"{eval_set} · {config} · mAP (rows: query language)",
                               out_dir / f"heatmaps_{eval_set}_{slug(config)}.png")


