"""The run lifecycle of both entry points: open the MLflow run, do the work, write its artifacts, set its status.

`src.run` and `src.evaluate` do their work inside `tracked_run`; whatever escapes the block decides the status
(an exception: FAILED with the error recorded, Ctrl-C or the scheduler's SIGTERM: KILLED), so no run is left
RUNNING or reported FINISHED without its metrics.json. Only the process that owns the run (rank 0) writes to it.
"""

from __future__ import annotations

import json
import signal
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lightning.pytorch.utilities.exceptions import SIGTERMException

from src.tracking import mlflow as tracking

if TYPE_CHECKING:
    from omegaconf import DictConfig

    from src.core.config import LoggerSchema

METRICS_FILE = "metrics.json"


@dataclass(frozen=True)
class TrackedRun:
    """An open MLflow run and the run folder it belongs to."""

    logger: tracking.XlirMLFlowLogger
    run_dir: Path
    owner: bool  # False on DDP ranks > 0: they share rank 0's run and never write to it

    @property
    def run_id(self) -> str:
        """The MLflow run id."""
        return str(self.logger.run_id)

    def log_config(self, cfg: DictConfig, runtime_params: Mapping[str, str]) -> None:
        """A new run's params: the composed config (also `config.yaml`) and the resolved runtime."""
        if self.owner:
            tracking.log_config(self.logger, cfg, self.run_dir)
            self.logger.log_hyperparams(dict(runtime_params))

    def set_tag(self, key: str, value: Any) -> None:
        """One tag on the run."""
        if self.owner:
            self.logger.experiment.set_tag(self.run_id, key, str(value))

    def log_artifact(self, path: str | Path, artifact_path: str | None = None, skip: tuple[str, ...] = ()) -> None:
        """Upload a file, or a folder's files except the subfolders named in `skip`."""
        if self.owner:
            tracking.log_artifact(self.logger, path, artifact_path, skip)

    def write_metrics(self, metrics: Mapping[str, Any]) -> Path:
        """The run's last artifact: `metrics.json` in the run folder, uploaded too."""
        path = self.run_dir / METRICS_FILE
        if self.owner:
            path.write_text(json.dumps(dict(metrics), indent=2, sort_keys=True))
            tracking.log_artifact(self.logger, path)
        return path

    def url(self) -> str:
        """Where to find the run: tracking URI, experiment and run id."""
        return tracking.run_url(self.logger)


@contextmanager
def tracked_run(settings: LoggerSchema, name: str, tags: Mapping[str, str], run_dir: str | Path,
                run_id: str | None = None, journal: bool = False, owner: bool = True) -> Iterator[TrackedRun]:
    """Open (or with `run_id` reopen) the run, yield it, close it with the status the block earned.

    `journal`: writes survive a tracking outage (journaled in the run folder, `python -m src.sync` uploads them).
    A SIGTERM that Lightning turned into `SIGTERMException` (a SystemExit with code 0) exits 128 + SIGTERM, the
    way a SIGTERM'd process does.
    """
    logger = tracking.build_logger(settings.experiment_name, settings.tracking_uri, name, tags, run_id=run_id,
                                   journal_dir=run_dir if journal else None)
    run = TrackedRun(logger, Path(run_dir), owner)
    status = "FAILED"
    try:
        yield run
        status = "FINISHED"
    except (KeyboardInterrupt, SIGTERMException) as err:
        status = "KILLED"
        if isinstance(err, SIGTERMException):
            raise SystemExit(128 + signal.SIGTERM) from err
        raise
    except Exception as err:
        if owner:
            tracking.record_error(logger, err)  # the run says why it failed (tag + traceback artifact)
        raise
    finally:
        if owner:
            tracking.close_run(logger, status)
