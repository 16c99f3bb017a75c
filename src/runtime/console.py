"""What a run prints: the runtime line, one training bar, evaluation progress, the metric table, where things are.

Everything else (library INFO lines, the faiss loader's search for its fastest build, Lightning's tips,
internal save/load bars, known-harmless deprecation warnings) goes to the run folder's `run.log` only (Hydra's
file handler, conf/hydra/default.yaml). Warnings that are not on the harmless list still reach the console.
"""

from __future__ import annotations

import logging
import os
import re
from typing import Any

from lightning.pytorch.callbacks import RichProgressBar

# Messages that say nothing about this run's correctness; matched against the full message (warnings included).
HARMLESS = tuple(re.compile(p) for p in (
    r"isinstance\(treespec, LeafSpec\)` is deprecated",  # lightning's _pytree under torch 2.13
    r"dataloader is not resumable",  # the language samplers resume themselves (src/training/checkpoints.py)
    r"Checkpoint directory .* exists and is not empty",  # a resumed run writes into its own folder
    r"Experiment with name .* not found\. Creating it",  # the first run of an MLflow experiment
    r"The ``noload`` loader strategy is deprecated",  # MLflow's SQLAlchemy store
))
# Loggers that are chatty at INFO, and whose INFO level also switches on tqdm bars (sentence-transformers).
QUIET_LOGGERS = ("faiss", "mlflow", "sentence_transformers", "alembic")


def is_own(name: str) -> bool:
    """A logger of this project (`src` and its modules)."""
    return name == "src" or name.startswith("src.")


class ConsoleFilter(logging.Filter):
    """The console handler's rule: this project's records from INFO, others from WARNING, harmless ones never."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < (logging.INFO if is_own(record.name) else logging.WARNING):
            return False
        message = record.getMessage()
        return not any(p.search(message) for p in HARMLESS)


class ConsoleFormatter(logging.Formatter):
    """This project's INFO as plain lines; warnings and errors with their level and source."""

    def format(self, record: logging.LogRecord) -> str:
        if record.levelno <= logging.INFO and is_own(record.name):
            return record.getMessage()
        source = "" if record.name == "py.warnings" else f" ({record.name})"
        return f"{record.levelname.lower()}: {record.getMessage().strip()}{source}"


def quiet_console() -> None:
    """Send third-party chatter to run.log only; call once at start-up, after Hydra configured logging."""
    logging.captureWarnings(True)  # warnings become records: run.log always, the console unless harmless
    # Lightning adds its own stderr handler at import when the root logger had none yet: every Lightning INFO
    # line then appears twice (its handler and Hydra's). Its records go through the root handlers only.
    for name in ("lightning.pytorch", "lightning.fabric", "lightning"):
        lg = logging.getLogger(name)
        for handler in [h for h in lg.handlers if type(h) is logging.StreamHandler]:
            lg.removeHandler(handler)
        lg.propagate = True
    import mlflow  # noqa: F401  # its import sets the `mlflow` logger to INFO: import first, then quieten

    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # artifact download/upload bars
    try:  # "Loading weights" / "Writing model shards" on every internal save and load
        import transformers

        transformers.utils.logging.disable_progress_bar()
    except ImportError:  # pragma: no cover - transformers is a dependency
        pass
    try:
        from huggingface_hub.utils import disable_progress_bars

        disable_progress_bars()
    except ImportError:  # pragma: no cover
        pass


def apply_console(settings: Any) -> None:
    """The `console` section: quiet or everything (`console.quiet=false`, e.g. to debug a library)."""
    if settings.quiet:
        quiet_console()


class StepProgressBar(RichProgressBar):
    """Lightning's rich bar for step-budgeted runs: `train` and step/total instead of `Epoch 0/-2`, no v_num."""

    def _get_train_description(self, current_epoch: int) -> str:
        description = "train"
        if len(self.validation_description) > len(description):  # as Lightning pads it: no flicker
            description = f"{description:{len(self.validation_description)}}"
        return description

    def get_metrics(self, trainer: Any, pl_module: Any) -> dict[str, Any]:
        """Lightning's bar metrics without the logger version (the MLflow run id's tail)."""
        metrics = super().get_metrics(trainer, pl_module)
        metrics.pop("v_num", None)
        return metrics
