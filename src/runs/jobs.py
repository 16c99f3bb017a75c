"""The jobs of a finished sweep, and adding evaluations of more sets to their MLflow runs afterwards.

A sweep is named by its folder (each job folder's `xlir_run.json` names the job's MLflow run), by its MLflow
parent run (the children's `sweep.dir` / `sweep.job_num` tags name their folders) or by its experiment (every
training run in it). Results are added to a job's own run through MlflowClient: new metric keys, the new
sets' `data.eval.{set}.*` params, the `eval_data` tag extended and one `eval_fingerprint.{set}` tag per set.
The run's status and end time stay as training left them, so the report and the MLflow UI still see one run
per job, now with more sets.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from src.runs.record import RECORD_FILE, RunRecord
from src.tracking.mlflow import flatten, resolve_tracking_uri, upload

FINGERPRINT_TAG = "eval_fingerprint."  # + set name: the set fingerprint a job was evaluated with


class JobsError(ValueError):
    """A sweep that cannot be found or a job that cannot be evaluated again; the message names it."""


@dataclass(frozen=True)
class SweepJob:
    """One training job: its MLflow run, its folder and what it has been evaluated on so far."""

    name: str
    run_id: str
    run_dir: Path
    status: str
    eval_sets: tuple[str, ...]
    fingerprints: Mapping[str, str] = field(default_factory=dict)  # set -> fingerprint, for sets added here
    params: Mapping[str, str] = field(default_factory=dict)

    @property
    def model_dir(self) -> Path:
        """The selected (best-validation) weights as the job exported them."""
        return self.run_dir / "model"

    def set_params(self, name: str) -> dict[str, str]:
        """The `data.eval.{name}.*` params the job logged for one set, keys relative to the set."""
        prefix = f"data.eval.{name}."
        return {k.removeprefix(prefix): v for k, v in self.params.items() if k.startswith(prefix)}


def _job(run: Any, run_dir: Path | None = None) -> SweepJob:
    """A SweepJob from an MLflow run (its folder from the sweep tags unless given)."""
    tags = run.data.tags
    if run_dir is None:
        if "sweep.dir" not in tags or "sweep.job_num" not in tags:
            raise JobsError(f"run {run.info.run_id} ({run.info.run_name}) has no sweep.dir/sweep.job_num tags: "
                            "name its sweep folder instead")
        run_dir = Path(tags["sweep.dir"]) / tags["sweep.job_num"]
    return SweepJob(
        name=run.info.run_name or run.info.run_id, run_id=run.info.run_id, run_dir=run_dir,
        status=run.info.status, eval_sets=tuple(s for s in tags.get("eval_data", "").split(",") if s),
        fingerprints={k.removeprefix(FINGERPRINT_TAG): v for k, v in tags.items() if k.startswith(FINGERPRINT_TAG)},
        params=dict(run.data.params))


def _job_folders(folder: Path) -> list[Path]:
    """The folder itself when it is a job, else its job subfolders in job-number order."""
    if (folder / RECORD_FILE).is_file():
        return [folder]
    found = [p for p in folder.iterdir() if (p / RECORD_FILE).is_file()]
    return sorted(found, key=lambda p: (not p.name.isdigit(), int(p.name) if p.name.isdigit() else 0, p.name))


def find_jobs(target: str, tracking_uri: str) -> list[SweepJob]:
    """The training jobs of a sweep folder, an MLflow parent run id or an experiment name, in job order."""
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    uri = resolve_tracking_uri(tracking_uri)
    client = MlflowClient(tracking_uri=uri)
    folder = Path(target)
    if folder.is_dir():
        jobs = []
        for job_dir in _job_folders(folder):
            record = RunRecord.read(job_dir)
            if record is None:
                raise JobsError(f"{job_dir / RECORD_FILE}: unreadable run record")
            run_id = record.mlflow_run_id
            try:
                jobs.append(_job(client.get_run(run_id), job_dir.resolve()))
            except MlflowException as err:
                raise JobsError(f"{job_dir / RECORD_FILE}: its run {run_id} is not in {uri} "
                                "(set logger.tracking_uri to the store the sweep logged to)") from err
        if not jobs:
            raise JobsError(f"jobs={target}: no job folder (with {RECORD_FILE}) in it")
        return jobs
    try:
        parent = client.get_run(target)
    except MlflowException:
        parent = None
    if parent is not None:
        children = client.search_runs([parent.info.experiment_id],
                                      filter_string=f"tags.mlflow.parentRunId = '{target}'", max_results=50000)
        if not children:
            raise JobsError(f"jobs={target}: MLflow run {target} has no child runs in {uri}")
        return sorted((_job(r) for r in children), key=lambda j: int(j.run_dir.name) if j.run_dir.name.isdigit()
                      else 0)
    experiment = client.get_experiment_by_name(target)
    if experiment is None:
        raise JobsError(f"jobs={target}: neither a sweep folder, an MLflow run id nor an experiment in {uri}")
    runs = client.search_runs([experiment.experiment_id], filter_string="tags.task = 'train'", max_results=50000)
    if not runs:
        raise JobsError(f"jobs={target}: experiment {target} holds no training runs")
    return sorted((_job(r) for r in runs), key=lambda j: (str(j.run_dir.parent), j.run_dir.name))


def pending_sets(job: SweepJob, fingerprints: Mapping[str, str], set_params: Mapping[str, Mapping[str, str]]
                 ) -> list[str]:
    """The sets this job still lacks; JobsError for a set name it already has with other contents.

    A set added by an earlier pass carries its fingerprint tag; a set the job was evaluated on during training
    has none, and counts as the same set when the job logged the same `data.eval.{set}.*` params.
    """
    pending = []
    for name, fingerprint in fingerprints.items():
        if name in job.fingerprints:
            if job.fingerprints[name] != fingerprint:
                raise JobsError(f"{job.name}: set {name!r} was evaluated with fingerprint {job.fingerprints[name]}, "
                                f"now {fingerprint}; its keys would be overwritten: give the new set another name")
        elif name in job.eval_sets:
            logged, now = _settings_only(job.set_params(name)), _settings_only(set_params[name])
            if logged != now:
                changed = sorted(k for k in set(logged) | set(now) if logged.get(k) != now.get(k))
                raise JobsError(f"{job.name}: set {name!r} was evaluated in training with other settings "
                                f"(data.eval.{name}.{changed[0]}: {logged.get(changed[0])!r} then, "
                                f"{now.get(changed[0])!r} now): give the new set another name")
        else:
            pending.append(name)
    return pending


def _settings_only(params: Mapping[str, str]) -> dict[str, str]:
    """A set's params without where its files live (`path`): a sweep trained on another machine or checkout has
    other absolute paths for the same files."""
    return {k: v for k, v in params.items() if k != "path"}


def set_params(dataset_cfg: Any) -> dict[str, str]:
    """A set's config as the job logs it: `data.eval.{name}.*` params, relative keys, values as strings."""
    return {k: str(v) for k, v in flatten(dataset_cfg).items()}


def record_sets(job: SweepJob, tracking_uri: str, metrics: Mapping[str, float], sets: Sequence[str],
                fingerprints: Mapping[str, str], params: Mapping[str, Mapping[str, str]],
                folders: Mapping[str, Path], skip: tuple[str, ...] = (), tags: Mapping[str, str] | None = None
                ) -> None:
    """Add an evaluation of `sets` to the job's run: metrics at step 0, params, tags, artifacts; status untouched.

    `tags` are added as they are (the zero-shot check per set). The fingerprint tags are written last: a pass
    killed before them leaves the sets pending, and the next pass logs the same values again (MLflow keeps a
    metric's history, a param's identical value is accepted).
    """
    from mlflow import MlflowClient
    from mlflow.entities import Metric, Param

    client = MlflowClient(tracking_uri=resolve_tracking_uri(tracking_uri))
    now_ms = int(time.time() * 1000)
    metric_list = [Metric(k, float(v), now_ms, 0) for k, v in metrics.items()]
    param_list = [Param(f"data.eval.{s}.{k}", v) for s in sets for k, v in params[s].items()]
    for start in range(0, len(metric_list), 1000):  # MLflow's batch limit
        client.log_batch(job.run_id, metrics=metric_list[start:start + 1000])
    for start in range(0, len(param_list), 100):
        client.log_batch(job.run_id, params=param_list[start:start + 100])
    for name, folder in folders.items():
        upload(client, job.run_id, folder, f"eval/{name}", skip)
    for key, value in (tags or {}).items():
        client.set_tag(job.run_id, key, value)
    eval_data = list(job.eval_sets) + [s for s in sets if s not in job.eval_sets]
    client.set_tag(job.run_id, "eval_data", ",".join(eval_data))
    for s in sets:
        client.set_tag(job.run_id, FINGERPRINT_TAG + s, fingerprints[s])
