"""Hydra multiruns as MLflow parent/child runs: one parent run per sweep, every job a nested child run.

A Hydra callback (`hydra.callbacks.mlflow_sweep`) opens the parent run in the launching process and writes
its id to `{sweep_dir}/mlflow_parent_run.json`. Every job, whether in the same process (basic launcher) or
in another one (submitit), finds that file through its own HydraConfig and tags its run with
`mlflow.parentRunId`, so the grouping works for every launcher. At the end the callback closes the parent
(FAILED if any child failed) and writes a summary of the jobs to the sweep folder and the parent run.

Re-running a multirun into the same sweep folder (`hydra.sweep.dir=<folder>`) resumes it: the parent run is
reopened, and each job decides what to do with the earlier attempt in its job folder (skip, resume or run
again: src/runs/plan.py). This module handles the parent run and names the children; it trains nothing.
"""

from __future__ import annotations

import atexit
import json
import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from hydra.core.utils import JobReturn, JobStatus
from hydra.experimental.callback import Callback
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

log = logging.getLogger(__name__)

PARENT_FILE = "mlflow_parent_run.json"
SUMMARY_FILE = "sweep_summary.json"
PARENT_TAG = "mlflow.parentRunId"  # MLflow's own tag: the UI nests runs that carry it
JOB_TAG = "sweep.job_num"
DIR_TAG = "sweep.dir"
OVERRIDES_TAG = "sweep.overrides"
SUPERSEDED_TAG = "sweep.superseded_by"  # on an earlier attempt of a job that ran again from the start
RESUMES_TAG = "sweep.resumes"  # on the parent: how often the sweep was re-run into its folder
# Keys that name a run in this order; any other swept key follows as `{last segment}{value}`.
_NAMED_KEYS = ("model", "sampling", "sampling.alpha", "seed")


@dataclass(frozen=True)
class SweepParent:
    """What a job needs to attach itself to its sweep's parent run (the content of PARENT_FILE)."""

    run_id: str
    experiment_id: str
    tracking_uri: str
    sweep_dir: str
    swept: tuple[str, ...]


@dataclass(frozen=True)
class SweepChild:
    """A job's run name and the tags that nest it under the parent run."""

    name: str
    tags: dict[str, str]


# ------------------------------------------------------------------------------------- pure helpers
def swept_keys(overrides: Sequence[str], sweeper_params: Mapping[str, Any] | None = None) -> tuple[str, ...]:
    """Config keys that take several values in a sweep, from `hydra.sweeper.params` and the command line."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    params = [f"{k}={v}" for k, v in (sweeper_params or {}).items()]
    keys: list[str] = []
    for override in OverridesParser.create().parse_overrides([*params, *overrides]):
        key = override.key_or_group
        if override.is_sweep_override() and key not in keys:
            keys.append(key)
    return tuple(keys)


def override_values(overrides: Sequence[str]) -> dict[str, str]:
    """`key=value` overrides of one job as {key: value} (the last one wins, as in Hydra)."""
    out = {}
    for item in overrides:
        key, sep, value = item.partition("=")
        if sep:
            out[key.lstrip("+~")] = value
    return out


def child_run_name(cfg: DictConfig, swept: Sequence[str], job_overrides: Sequence[str]) -> str:
    """Name a sweep job by what differs between the jobs, e.g. `hybrid-a0.5-seed2` or `tiny-xy`.

    Falls back to the usual `{model}-{sampling}[-a{alpha}]-seed{seed}` when no swept key is known.
    """
    from src.tracking.mlflow import run_name, sampling_label

    values = override_values(job_overrides)
    parts = []
    if "model" in swept:
        parts.append(str(cfg.model.name))
    if "sampling" in swept or "sampling.alpha" in swept:
        parts.append(sampling_label(str(cfg.sampling.name), cfg.sampling.alpha))
    if "seed" in swept:
        parts.append(f"seed{cfg.seed}")
    parts += [f"{key.rsplit('.', 1)[-1]}{values.get(key, '?')}" for key in swept if key not in _NAMED_KEYS]
    if not parts:
        return run_name(cfg.model.name, cfg.sampling.name, cfg.sampling.alpha, cfg.seed)
    return "-".join(parts)


def parent_run_name(sweep_dir: str | Path, swept: Sequence[str]) -> str:
    """`sweep(sampling×seed) 2026-11-25/14-03-00`: the swept keys and the sweep folder's last two parts."""
    p = Path(sweep_dir)
    return f"sweep({'×'.join(k.rsplit('.', 1)[-1] for k in swept) or 'single'}) {p.parent.name}/{p.name}"


def sweep_status(child_statuses: Sequence[str], aborted: bool) -> str:
    """FAILED if any child failed or was killed, KILLED if the sweep stopped early otherwise, else FINISHED."""
    if any(s in ("FAILED", "KILLED") for s in child_statuses):
        return "FAILED"
    return "KILLED" if aborted else "FINISHED"


def write_parent(sweep_dir: str | Path, parent: SweepParent) -> Path:
    """Write PARENT_FILE into the sweep folder (created if needed)."""
    path = Path(sweep_dir) / PARENT_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(asdict(parent), indent=2))
    return path


def read_parent(sweep_dir: str | Path) -> SweepParent | None:
    """The sweep's parent run from PARENT_FILE, or None when the folder has none."""
    path = Path(sweep_dir) / PARENT_FILE
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text())
        return SweepParent(**{**data, "swept": tuple(data.get("swept", ()))})
    except (json.JSONDecodeError, TypeError) as err:
        raise ValueError(f"{path} is not a parent-run file written by src.tracking.sweep: {err}") from err


def _is_rank_zero() -> bool:
    """Only the first process of a (multi-process) job talks to MLflow."""
    return all(os.environ.get(var, "0") == "0" for var in ("RANK", "LOCAL_RANK", "SLURM_PROCID"))


# ---------------------------------------------------------------------------------------- job side
def sweep_child(cfg: DictConfig) -> SweepChild | None:
    """Inside a multirun job with a parent run: the child's name and nesting tags; otherwise None."""
    if not HydraConfig.initialized():
        return None
    hc = HydraConfig.get()
    if hc.mode != RunMode.MULTIRUN:
        return None
    parent = read_parent(hc.sweep.dir)
    if parent is None:  # the callback is switched off: plain, unlinked runs
        return None
    overrides = list(hc.overrides.task)
    tags = {PARENT_TAG: parent.run_id, DIR_TAG: parent.sweep_dir, JOB_TAG: str(hc.job.num),
            OVERRIDES_TAG: " ".join(overrides)}
    return SweepChild(name=child_run_name(cfg, parent.swept, overrides), tags=tags)


# ------------------------------------------------------------------------------------------- MLflow
def mlflow_client(tracking_uri: str):
    """MlflowClient for a tracking URI (imported lazily: Hydra instantiates callbacks for every run)."""
    from mlflow.tracking import MlflowClient

    from src.tracking.mlflow import init_sqlite_store

    init_sqlite_store(tracking_uri)
    return MlflowClient(tracking_uri=tracking_uri)


def children(client: Any, parent: SweepParent) -> list[Any]:
    """The parent's child runs, oldest first, in any experiment; earlier attempts that ran again are left out."""
    from mlflow.entities import ViewType

    experiments = [e.experiment_id for e in client.search_experiments(view_type=ViewType.ALL)]
    runs = client.search_runs(experiments, filter_string=f"tags.`{PARENT_TAG}` = '{parent.run_id}'",
                              order_by=["attributes.start_time ASC"])
    return [r for r in runs if SUPERSEDED_TAG not in r.data.tags]


def summarize(runs: Sequence[Any]) -> list[dict[str, Any]]:
    """One row per child run: job number, name, id, status, overrides and error (jobs in number order)."""
    from src.tracking.mlflow import ERROR_TAG

    rows = [{
        "job": int(r.data.tags.get(JOB_TAG, -1)),
        "run_name": r.info.run_name,
        "run_id": r.info.run_id,
        "status": r.info.status,
        "overrides": r.data.tags.get(OVERRIDES_TAG, ""),
        "error": r.data.tags.get(ERROR_TAG, ""),
    } for r in runs]
    return sorted(rows, key=lambda row: (row["job"], row["run_name"]))


def open_parent(config: DictConfig) -> SweepParent:
    """Create the parent run for a multirun config and write PARENT_FILE into its sweep folder.

    A sweep folder that already has one (the same multirun started again) reopens that parent run instead.
    """
    from src.tracking.mlflow import experiment_id, git_commit, resolve_tracking_uri

    sweep_dir = str(Path(str(config.hydra.sweep.dir)).resolve())  # absolute: the tag must work from anywhere
    overrides = [str(o) for o in config.hydra.overrides.task]
    node = config.hydra.sweeper.get("params")
    params: dict[str, Any] = OmegaConf.to_container(node, resolve=False) if node else {}  # type: ignore[assignment]
    swept = swept_keys(overrides, params)
    uri = resolve_tracking_uri(str(config.logger.tracking_uri))
    client = mlflow_client(uri)
    earlier = read_parent(sweep_dir)
    if earlier is not None:
        return reopen_parent(client, earlier, uri)
    exp_id = experiment_id(client, str(config.logger.experiment_name))
    tags = {"task": "sweep", DIR_TAG: sweep_dir, OVERRIDES_TAG: " ".join(overrides),
            "sweep.params": json.dumps(params), "sweep.swept": ",".join(swept),
            "git_commit": git_commit(Path(__file__).resolve().parents[2])}
    run = client.create_run(exp_id, run_name=parent_run_name(sweep_dir, swept), tags=tags)
    parent = SweepParent(run.info.run_id, exp_id, uri, sweep_dir, swept)
    write_parent(sweep_dir, parent)
    return parent


def reopen_parent(client: Any, parent: SweepParent, tracking_uri: str) -> SweepParent:
    """The parent run of an earlier start of this sweep, RUNNING again (its store must be the configured one)."""
    from mlflow.exceptions import MlflowException

    from src.core.config import ConfigError

    if parent.tracking_uri != tracking_uri:
        raise ConfigError(
            f"{Path(parent.sweep_dir) / PARENT_FILE}: this sweep folder's runs are in {parent.tracking_uri}, not "
            f"logger.tracking_uri={tracking_uri}; resume it with that store or use a new hydra.sweep.dir")
    try:
        run = client.get_run(parent.run_id)
    except MlflowException as err:
        raise ConfigError(
            f"{Path(parent.sweep_dir) / PARENT_FILE} names parent run {parent.run_id}, which {tracking_uri} does not "
            f"have ({err}); use a new hydra.sweep.dir") from err
    client.update_run(parent.run_id, status="RUNNING")
    client.set_tag(parent.run_id, RESUMES_TAG, str(int(run.data.tags.get(RESUMES_TAG, "0")) + 1))
    return parent


def close_parent(parent: SweepParent, aborted: bool = False) -> dict[str, Any]:
    """Summarise the children into SUMMARY_FILE (sweep folder + parent artifact), tag and close the parent."""
    client = mlflow_client(parent.tracking_uri)
    jobs = summarize(children(client, parent))
    status = sweep_status([j["status"] for j in jobs], aborted)
    failed = [j for j in jobs if j["status"] != "FINISHED"]
    summary = {"parent_run_id": parent.run_id, "sweep_dir": parent.sweep_dir, "status": status,
               "n_jobs": len(jobs), "n_failed": len(failed), "jobs": jobs}
    path = Path(parent.sweep_dir) / SUMMARY_FILE
    path.write_text(json.dumps(summary, indent=2))
    client.log_artifact(parent.run_id, str(path))
    client.set_tag(parent.run_id, "sweep.n_jobs", str(len(jobs)))
    client.set_tag(parent.run_id, "sweep.n_failed", str(len(failed)))
    client.set_tag(parent.run_id, "sweep.failed", ", ".join(f"{j['run_name']} ({j['status']})" for j in failed))
    client.set_terminated(parent.run_id, status)
    return summary


def record_failed_job(config: DictConfig, err: BaseException) -> None:
    """Make sure a failed job has a FAILED child run carrying its error, even if it died before opening one."""
    from src.tracking.mlflow import ERROR_TAG, error_text

    parent = read_parent(config.hydra.sweep.dir)
    if parent is None:
        return
    client = mlflow_client(parent.tracking_uri)
    job = str(config.hydra.job.num)
    mine = [r for r in children(client, parent) if r.data.tags.get(JOB_TAG) == job]
    if not mine:  # failed before a run was opened (bad config, missing data): open one to record it
        overrides = [str(o) for o in config.hydra.overrides.task]
        try:
            name = child_run_name(config, parent.swept, overrides)
        except (OmegaConfBaseException, AttributeError, TypeError, ValueError):  # the config may be what broke
            name = f"job{job}"
        tags = {PARENT_TAG: parent.run_id, DIR_TAG: parent.sweep_dir, JOB_TAG: job,
                OVERRIDES_TAG: " ".join(overrides), "task": str(config.get("task_name", "train"))}
        mine = [client.create_run(parent.experiment_id, run_name=name, tags=tags)]
    for run in mine:
        if not run.data.tags.get(ERROR_TAG):
            client.set_tag(run.info.run_id, ERROR_TAG, error_text(err))
        if run.info.status in ("RUNNING", "SCHEDULED"):
            client.set_terminated(run.info.run_id, "FAILED")


class MlflowSweepCallback(Callback):
    """Hydra callback: parent run per multirun, FAILED child for every failed job, summary at the end."""

    def __init__(self) -> None:
        self.parent: SweepParent | None = None

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        """Open the parent run before any job starts."""
        self.parent = open_parent(config)
        # Hydra's sweepers re-raise a failed job's exception after its batch, which skips on_multirun_end;
        # closing at interpreter exit as well makes sure the parent and the summary are never left open.
        atexit.register(self._close, aborted=True)
        log.info("MLflow parent run %s for sweep %s", self.parent.run_id, self.parent.sweep_dir)

    def on_job_end(self, config: DictConfig, job_return: JobReturn, **kwargs: Any) -> None:
        """Record a failed job's error on its child run (runs in the job's own process for every launcher)."""
        if job_return.status != JobStatus.FAILED or config.hydra.mode != RunMode.MULTIRUN or not _is_rank_zero():
            return
        err = job_return._return_value  # a FAILED job's exception (the public return_value re-raises it)
        if isinstance(err, BaseException):
            record_failed_job(config, err)

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        """Every job is done: close the parent with the sweep's status and write the summary."""
        self._close(aborted=False)

    def _close(self, aborted: bool) -> None:
        """Close the parent once (a later atexit call finds it closed and does nothing)."""
        if self.parent is None:
            return
        parent, self.parent = self.parent, None
        summary = close_parent(parent, aborted)
        failed = [f"{j['run_name']}: {j['status']} {j['error']}".strip() for j in summary["jobs"]
                  if j["status"] != "FINISHED"]
        log.info("Sweep %s: %d jobs, %d failed%s", summary["status"], summary["n_jobs"], summary["n_failed"],
                 "".join(f"\n  {line}" for line in failed))
