"""Compare the runs of a sweep: tables (mean ± 95% CI), paired significance tests, plots; logged to the parent.

    python -m src.report multirun/2026-11-25/14-03-00          # a sweep folder (holds mlflow_parent_run.json)
    python -m src.report <parent run id> --tracking-uri sqlite:///mlflow.db
    python -m src.report xlir --out reports/all                   # every training run of an experiment

Runs are read back from MLflow (`mlflow.search_runs`), per-query metrics from each run's
`eval/{set}/per_query.npz` artifact. Rows are (configuration, sampler): runs whose params differ beyond
sampling, seed and bookkeeping (tables.EXCLUDED_PARAMS) are never pooled, and of reruns of one seed only the
newest counts. Writes `table.md`, `table.csv`, `significance.csv`, per-language tables, PNG plots and
`report.json` into the report folder and, for a sweep, logs them to its parent run.

Reading the runs: src/reporting/runs.py; writing the report: src/reporting/writer.py. This module parses arguments.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from src.reporting.runs import DEFAULT_URI, ReportError, log_to_parent, resolve_target
from src.reporting.writer import build_domain_shift, build_report


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
