"""How a training run starts: fresh, resumed, skipped or run again, and in which folder (`plan_run`).

One decision, made before any work: `ckpt_path=last` / `resume=true` / a SLURM requeue continue the newest
checkpoint of a run with the same config fingerprint (src/runs/record.py), and inside a re-run multirun the
job's earlier attempt in its folder decides: FINISHED with the same fingerprint -> skip, interrupted with a
checkpoint -> resume, FAILED or killed before its first checkpoint -> run again from the start (the attempt's
files move to `attempts/<run id>/`, its child run is tagged superseded). The plan *returns* the run folder and
the config the run executes (the composed one with `paths.output_dir` pointed there); the composed config
itself is left as Hydra made it.
"""

from __future__ import annotations

import copy
import logging
import shutil
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from src.core.config import ConfigError
from src.runs.lifecycle import METRICS_FILE
from src.runs.record import (
    RECORD_FILE,
    RunRecord,
    config_changes,
    config_fingerprint,
    last_checkpoint,
    resolve,
)
from src.tracking.mlflow import CONFIG_FILE
from src.tracking.resilient import JOURNAL_FILE
from src.tracking.sweep import SUPERSEDED_TAG, mlflow_client, sweep_child

log = logging.getLogger(__name__)

Action = Literal["fresh", "resume", "skip", "rerun"]
ATTEMPTS_DIR = "attempts"  # in a job folder: attempts/<run id>/ holds an earlier attempt's files
# What an attempt leaves in its job folder besides the files set_aside names (Hydra's .hydra/ and the job log
# are rewritten/appended by Hydra).
_ATTEMPT_DIRS = ("checkpoints", "eval", "model")


@dataclass(frozen=True)
class RunPlan:
    """What `plan_run` decided: the action, where the run writes, from which checkpoint, continuing which run."""

    action: Action
    run_dir: str  # the continued run's folder, else the configured output folder
    config: DictConfig  # the composed config with paths.output_dir = run_dir (what the run instantiates from)
    fingerprint: str  # of the config, recorded in this run's RunRecord
    checkpoint: str | None = None  # for `trainer.fit(ckpt_path=...)`; None = from the initial weights
    previous: RunRecord | None = None  # the run it continues (its MLflow run is reopened), or None for a new run
    done: Path | None = None  # action `skip`: the earlier attempt's metrics.json; nothing is trained again


def plan_run(cfg: DictConfig) -> RunPlan:
    """Decide fresh / resume / skip / re-run for the composed config; `cfg` itself is not changed."""
    out = str(cfg.paths.output_dir)
    fingerprint = config_fingerprint(OmegaConf.to_container(cfg, resolve=True), out)  # type: ignore[arg-type]
    ckpt, previous = resolve(cfg.ckpt_path, bool(cfg.resume), fingerprint, out, cfg.paths.root_dir)
    elsewhere = previous is not None and Path(previous.run_dir).resolve() != Path(out).resolve()
    run_dir = previous.run_dir if elsewhere else out
    plan = RunPlan("resume" if ckpt else "fresh", run_dir, _config_in(cfg, run_dir), fingerprint, ckpt, previous)
    if previous is None and cfg.ckpt_path is None and not cfg.resume and sweep_child(cfg) is not None:
        return _sweep_job_plan(cfg, plan)
    return plan


def _config_in(cfg: DictConfig, run_dir: str) -> DictConfig:
    """The composed config writing into `run_dir` (a copy when that is another folder)."""
    if run_dir == str(cfg.paths.output_dir):
        return cfg
    moved = copy.deepcopy(cfg)
    moved.paths.output_dir = run_dir
    return moved


def job_action(status: str | None, has_metrics: bool, has_checkpoint: bool) -> Action:
    """What a re-run sweep does with a job's earlier attempt (same config): `skip`, `resume` or `rerun`.

    `status` is the attempt's MLflow run status (None: the run is gone from the store).
    """
    if status == "FINISHED" and has_metrics:
        return "skip"
    if status != "FAILED" and has_checkpoint:  # RUNNING after a SIGKILL, KILLED after SIGTERM/Ctrl-C
        return "resume"
    return "rerun"  # FAILED, or interrupted before its first checkpoint


def _sweep_job_plan(cfg: DictConfig, plan: RunPlan) -> RunPlan:
    """A multirun job whose folder may hold an earlier attempt: skip, resume or re-run it (module doc)."""
    from mlflow.exceptions import MlflowException

    job_dir = Path(plan.run_dir)
    record = RunRecord.read(job_dir)
    if record is None:
        return plan
    if record.fingerprint != plan.fingerprint:
        raise ConfigError(
            f"{job_dir} holds an earlier sweep job with another config (fingerprint {record.fingerprint}, this job "
            f"{plan.fingerprint}; {_changed_keys(job_dir, cfg)}): a sweep folder resumes only the same command. "
            "Use a new hydra.sweep.dir")
    client = mlflow_client(record.tracking_uri)
    try:
        status: str | None = client.get_run(record.mlflow_run_id).info.status
    except MlflowException:  # the run was deleted from the store: only the folder tells
        status = None
    ckpt = last_checkpoint(job_dir)
    metrics = job_dir / METRICS_FILE
    action = job_action(status, metrics.is_file(), ckpt is not None)
    log.info("Sweep job %s: earlier attempt %s is %s -> %s", job_dir.name, record.mlflow_run_id, status, action)
    if action == "skip":
        return replace(plan, action=action, previous=record, done=metrics)
    if action == "resume":
        return replace(plan, action=action, previous=record, checkpoint=str(ckpt))
    set_aside(job_dir, record.mlflow_run_id)
    if status is not None:
        client.set_tag(record.mlflow_run_id, SUPERSEDED_TAG, "a later attempt (same job folder)")
        if status in ("RUNNING", "SCHEDULED"):
            client.set_terminated(record.mlflow_run_id, "KILLED")
    return replace(plan, action=action)


def _changed_keys(job_dir: Path, cfg: DictConfig) -> str:
    """Which keys differ from the earlier attempt's resolved config file, for the error message."""
    try:
        old: Any = OmegaConf.to_container(OmegaConf.load(job_dir / CONFIG_FILE))
    except (OSError, OmegaConfBaseException):
        return f"its {CONFIG_FILE} is unreadable"
    # the run folder is the same job folder in both; its spelling may differ (relative vs absolute)
    old_dir = str(old.get("paths", {}).get("output_dir", "")) if isinstance(old, dict) else ""
    changed = config_changes(old, OmegaConf.to_container(cfg, resolve=True), old_dir, str(cfg.paths.output_dir))
    return "changed: " + (", ".join(changed[:8]) + (" ..." if len(changed) > 8 else "") if changed else "no key")


def set_aside(job_dir: Path, run_id: str) -> Path:
    """Move an attempt's files (checkpoints, exports, record) to `attempts/<run id>/` in its job folder."""
    dest = job_dir / ATTEMPTS_DIR / run_id
    dest.mkdir(parents=True, exist_ok=True)
    for name in (*_ATTEMPT_DIRS, METRICS_FILE, CONFIG_FILE, JOURNAL_FILE, RECORD_FILE):
        if (job_dir / name).exists():
            shutil.move(str(job_dir / name), str(dest / name))
    return dest
