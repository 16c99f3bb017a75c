"""Reading a sweep's runs back from MLflow for the report: the target (sweep folder, parent run, experiment),
its finished runs as ReportedRun records with their learning curves, and per-query metrics from their artifacts.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from src.reporting.tables import ReportedRun

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
        return Target(slug(f"sweep-{folder.parent.name}-{folder.name}"), uri, parent.run_id, parent.experiment_id)
    uri = tracking_uri or os.environ.get("MLFLOW_TRACKING_URI") or DEFAULT_URI
    client = mlflow.MlflowClient(tracking_uri=uri)
    if re.fullmatch(r"[0-9a-f]{32}", target):
        try:
            run = client.get_run(target)
            return Target(slug(run.info.run_name or target), uri, target, run.info.experiment_id)
        except MlflowException:
            pass
    exp = client.get_experiment_by_name(target)
    if exp is None:
        raise ReportError(f"{target!r} is neither a sweep folder, a run id nor an experiment name in {uri}")
    return Target(slug(target), uri, None, exp.experiment_id)


def slug(text: str) -> str:
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


def fetch_runs(target: Target) -> list[ReportedRun]:
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


def select_samplers(runs: list[ReportedRun], samplers: list[str] | None) -> list[ReportedRun]:
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


def fetch_zero_shot(target: Target) -> list[ReportedRun]:
    """FINISHED `src.evaluate` runs of the target's experiment (the untrained baselines), newest per model and sets."""
    import mlflow

    if target.experiment_id is None:
        return []
    with _tracking_uri(target.tracking_uri):
        found = mlflow.search_runs([target.experiment_id], filter_string="tags.task = 'evaluate' and "
                                   "attributes.status = 'FINISHED'", order_by=["attributes.start_time DESC"],
                                   output_format="list")
    newest: dict[tuple[str, str], ReportedRun] = {}
    for run in found:
        record = _record(run, {})
        newest.setdefault((record.model, ",".join(record.eval_sets)), record)
    return sorted(newest.values(), key=lambda r: r.model)


def _record(run, curves: dict[str, list[tuple[int, float]]]) -> ReportedRun:
    """An MLflow run as a ReportedRun (its tags say model, sampler, seed and evaluation sets)."""
    from src.tracking.mlflow import ERROR_TAG, sampling_label

    tags = run.data.tags
    alpha = float(tags["alpha"]) if "alpha" in tags else None  # tagged only for structures with an alpha
    sampler = tags.get("sampling", "?")
    return ReportedRun(
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
    from src.core import keys

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

    def __call__(self, run: ReportedRun, eval_set: str) -> PerQuery | None:
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


def log_to_parent(target: Target, out_dir: Path) -> None:
    """Upload the report folder to the parent run under `report/`."""
    import mlflow

    mlflow.MlflowClient(tracking_uri=target.tracking_uri).log_artifacts(target.parent_id, str(out_dir), "report")


