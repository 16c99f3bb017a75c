"""MLflow tracking: the logger, run naming, tags, config params/artifacts and the final run status."""

from __future__ import annotations

import functools
import os
import subprocess
import traceback
import warnings
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from lightning.pytorch.loggers import MLFlowLogger
from omegaconf import DictConfig, OmegaConf

REPO = Path(__file__).resolve().parents[2]  # the project checkout (its commit is a tag of every run)


class XlirMLFlowLogger(MLFlowLogger):
    """Lightning's MLflow logger, except that a successful fit leaves the run open.

    Evaluation and export happen after `trainer.fit`; the entry point marks the run FINISHED only when
    all of it worked, so a run that failed later is never reported as finished.
    """

    def finalize(self, status: str = "success") -> None:
        """Close the run only on failure; success is declared by `close_run`."""
        if status in ("success", "finished"):
            return
        super().finalize(status)


def resolve_tracking_uri(configured: str) -> str:
    """`MLFLOW_TRACKING_URI` wins over the config, so a remote server needs no config change."""
    return os.environ.get("MLFLOW_TRACKING_URI") or configured


def init_sqlite_store(uri: str) -> None:
    """Create or upgrade a local sqlite store's tables under an exclusive file lock (no-op for other stores).

    Jobs of one multirun (joblib, n_jobs > 1) start together; two processes creating the tables of a fresh
    sqlite file at once fail with `table ... already exists`. The first one in builds them, the others wait.
    """
    if not uri.startswith("sqlite:///"):
        return
    import fcntl

    from mlflow.tracking import MlflowClient

    db = Path(uri[len("sqlite:///"):])
    db.parent.mkdir(parents=True, exist_ok=True)
    with open(db.with_name(db.name + ".init-lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        MlflowClient(tracking_uri=uri).search_experiments(max_results=1)  # builds the store's tables


@functools.cache
def git_commit(root: str | Path = ".") -> str:
    """The project checkout's commit when this process first asked, or 'unknown' outside git.

    Once per process: a multirun imports the code once, so its later jobs run that code even when HEAD moves
    meanwhile (a study of 9 jobs was tagged with commits made while it ran).
    """
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=5, check=True
        )
        return out.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def flatten(cfg: Mapping[str, Any] | DictConfig, prefix: str = "") -> dict[str, Any]:
    """Flatten a nested config to `a.b.c` keys (lists kept as their string form)."""
    if isinstance(cfg, DictConfig):
        cfg = OmegaConf.to_container(cfg, resolve=True)  # type: ignore[assignment]
    out: dict[str, Any] = {}
    for key, value in cfg.items():  # type: ignore[union-attr]
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(flatten(value, name + "."))
        else:
            out[name] = value
    return out


def sampling_label(sampling: str, alpha: float | None) -> str:
    """`hybrid-a0.5` for hybrid runs (α varies between runs), the sampler's name otherwise."""
    return f"{sampling}-a{alpha:g}" if alpha is not None else sampling


def run_name(model: str, sampling: str, alpha: float | None, seed: int) -> str:
    """Readable run name, e.g. `me5_small_bundled-hybrid-a0.5-seed42`."""
    return f"{model}-{sampling_label(sampling, alpha)}-seed{seed}"


def run_tags(task: str, model: str, seed: int, eval_sets: Iterable[str], **training: str) -> dict[str, str]:
    """Searchable MLflow tags: task, model, data sets, seed and the code's commit (+ `training`: sampling, alpha,
    train_data for a training run)."""
    return {"task": task, "model": model, "eval_data": ",".join(eval_sets), "seed": str(seed),
            "git_commit": git_commit(REPO), **training}


def build_logger(
    experiment_name: str, tracking_uri: str, name: str, tags: Mapping[str, str], run_id: str | None = None,
    journal_dir: str | Path | None = None,
) -> XlirMLFlowLogger:
    """Create (or reopen, given run_id) the MLflow run; fails fast naming the URI when it is unreachable.

    With `journal_dir`, every later write is journaled there and survives a tracking outage
    (src/tracking/resilient.py; `python -m src.sync RUN_FOLDER` uploads what was missed).
    """
    from src.tracking.resilient import JOURNAL_FILE, Journal, ResilientClient, fast_http

    uri = resolve_tracking_uri(tracking_uri)
    init_sqlite_store(uri)
    logger = XlirMLFlowLogger(
        experiment_name=experiment_name, tracking_uri=uri, run_name=name, tags=dict(tags), run_id=run_id
    )
    try:
        with fast_http():  # one try, short timeout: an unreachable server fails the run now, not in minutes
            _ = logger.experiment, logger.run_id  # creates the experiment and run now, not at the first metric
            if run_id is not None:  # a resumed run: it was left KILLED/FAILED (or RUNNING after a SIGKILL)
                logger.experiment.update_run(run_id, status="RUNNING")
    except Exception as err:
        raise ConnectionError(f"MLflow tracking store {uri} is unreachable or unusable: {err}") from err
    if journal_dir is not None:  # Lightning reaches the client through this attribute (logger.experiment)
        logger._mlflow_client = ResilientClient(logger._mlflow_client, Journal(Path(journal_dir) / JOURNAL_FILE))
    return logger


CONFIG_FILE = "config.yaml"  # the composed, resolved config of a run, in its folder and as an artifact


def log_config(logger: MLFlowLogger, cfg: DictConfig, run_dir: str | Path) -> Path:
    """Composed config as flattened params and as `config.yaml` artifact (also kept in the run folder)."""
    logger.log_hyperparams(flatten(cfg))
    path = Path(run_dir) / CONFIG_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(OmegaConf.to_yaml(cfg, resolve=True))
    logger.experiment.log_artifact(logger.run_id, str(path))
    return path


def log_artifact(
    logger: MLFlowLogger, path: str | Path, artifact_path: str | None = None, skip: tuple[str, ...] = ()
) -> None:
    """Upload one file, or a folder's files except the subfolders named in `skip`."""
    upload(logger.experiment, logger.run_id, path, artifact_path, skip)


def upload(client: Any, run_id: str, path: str | Path, artifact_path: str | None = None,
           skip: tuple[str, ...] = ()) -> None:
    """:func:`log_artifact` through an MlflowClient, for a run that is not open in this process."""
    p = Path(path)
    if not p.is_dir():
        client.log_artifact(run_id, str(p), artifact_path)
        return
    for child in sorted(p.iterdir()):
        if child.name in skip:
            continue
        sub = f"{artifact_path}/{child.name}" if artifact_path else child.name
        if child.is_dir():
            upload(client, run_id, child, sub, skip)
        else:
            client.log_artifact(run_id, str(child), artifact_path)


ERROR_TAG = "error"


def error_text(err: BaseException, limit: int = 4000) -> str:
    """`Type: message`, cut to fit an MLflow tag value (the full traceback goes to an artifact)."""
    text = f"{type(err).__name__}: {err}"
    return text if len(text) <= limit else text[: limit - 15] + " …[truncated]"


def record_error(logger: MLFlowLogger, err: BaseException) -> None:
    """A failed run's error as the `error` tag and its full traceback as the `error.txt` artifact.

    Best effort: when the store itself is what failed, a second error here must not hide the first one.
    """
    from mlflow.exceptions import MlflowException

    try:
        logger.experiment.set_tag(logger.run_id, ERROR_TAG, error_text(err))
        logger.experiment.log_text(logger.run_id, "".join(traceback.format_exception(err)), "error.txt")
    except (MlflowException, OSError) as store_err:
        warnings.warn(f"could not record the error on MLflow run {logger.run_id}: {store_err}", stacklevel=2)


def experiment_id(client: Any, name: str) -> str:
    """Id of the named experiment, created when it does not exist yet."""
    exp = client.get_experiment_by_name(name)
    return exp.experiment_id if exp is not None else client.create_experiment(name)


def close_run(logger: MLFlowLogger, status: str = "FINISHED") -> None:
    """Set the run's terminal status (FINISHED, FAILED or KILLED)."""
    logger.experiment.set_terminated(logger.run_id, status)


def run_url(logger: MLFlowLogger) -> str:
    """Where to find the run: tracking URI, experiment and run id."""
    return f"{logger._tracking_uri} experiment={logger.experiment_id} run={logger.run_id}"
