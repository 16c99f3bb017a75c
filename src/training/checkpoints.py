"""What a checkpoint must carry and when one is written, so an interrupted run resumes exactly: the global RNG
states (restored before the first resumed batch), the validation a checkpoint still owed, and the checkpoint at
SIGTERM/Ctrl-C or a non-finite loss."""

from __future__ import annotations

import logging
import os
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch
from lightning.pytorch import Callback, LightningModule, Trainer
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.utilities.exceptions import SIGTERMException

log = logging.getLogger(__name__)

RNG_KEY = "xlir_rng_states"
# The global step whose validation a checkpoint was saved before (a step-cadence save in on_train_batch_end).
VALIDATION_OWED_KEY = "xlir_validation_owed"


def rng_states() -> dict[str, Any]:
    """Python, numpy and torch (CPU + CUDA) global RNG states as tensors/lists: loadable with weights_only."""
    name, keys, pos, has_gauss, gauss = np.random.get_state(legacy=True)
    # numpy's key array as a tensor: torch.load(weights_only=True), Lightning's default, refuses numpy objects.
    numpy_state = [name, torch.from_numpy(keys.astype(np.int64)), pos, has_gauss, gauss]
    states: dict[str, Any] = {"python": random.getstate(), "numpy": numpy_state, "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def set_rng_states(states: dict[str, Any]) -> None:
    """Inverse of `rng_states`."""
    version, internal, gauss = states["python"]
    random.setstate((version, tuple(internal), gauss))
    name, keys, pos, has_gauss, cached = states["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(states["torch"])
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])


class ResumeStateCallback(Callback):
    """Makes a resumed run continue exactly: RNG states, and a validation that the checkpoint still owed.

    Lightning does not checkpoint RNG states. They cannot be set in `on_load_checkpoint` either: creating the
    DataLoader iterator afterwards draws from torch's global generator. Restoring them at the first
    `on_train_batch_start` puts dropout exactly where the uninterrupted run had it.

    Between two steps the global generators are not left alone either: every validation and every new epoch
    create a DataLoader iterator, which draws its base seed from torch's generator, after a step-cadence
    checkpoint was saved. So in every run each step starts from the states the previous step ended with
    (taken in `on_train_batch_end`, put back in `on_train_batch_start`), and those are what a checkpoint saves:
    a run resumed from a checkpoint before a validation or at an epoch's last batch draws the same dropout.

    A step-cadence `last.ckpt` is written in `on_train_batch_end`, before that step's validation. Lightning 2.6
    resuming from it fast-forwards past the validation (the epoch loop assumes it ran), so a kill during or
    after that validation loses it and the best-checkpoint selection never sees that step. Such a checkpoint is
    marked here, and on load its validation progress is rewound to "started, no batch done": Lightning then
    runs the whole validation of that step first, as the uninterrupted run did.
    """

    def __init__(self) -> None:
        super().__init__()
        self._pending: dict[str, Any] | None = None  # RNG states the next training step starts with
        self._validation_due = False  # between a step that triggers validation and the end of that validation
        self._rewound = False

    def on_save_checkpoint(self, trainer: Trainer, pl_module: LightningModule, checkpoint: dict[str, Any]) -> None:
        """Add torch/numpy/python RNG states, and the step whose validation has not finished yet, if any."""
        checkpoint[RNG_KEY] = self._pending if self._pending is not None else rng_states()
        if self._validation_due:
            checkpoint[VALIDATION_OWED_KEY] = trainer.global_step

    def on_load_checkpoint(self, trainer: Trainer, pl_module: LightningModule, checkpoint: dict[str, Any]) -> None:
        """Keep the saved RNG states until training resumes; make Lightning run an owed validation first."""
        self._pending = checkpoint.get(RNG_KEY)
        owed = checkpoint.get(VALIDATION_OWED_KEY)
        if owed is not None:
            # Loops are restored from this same dict after the callbacks' hooks.
            owe_validation(checkpoint["loops"]["fit_loop"])
            self._rewound = True
            log.info("resuming at step %d, whose validation did not finish: it runs again first", owed)

    def on_train_batch_start(self, trainer: Trainer, pl_module: LightningModule, batch: Any, batch_idx: int) -> None:
        """Start the step from the states the last one ended with (or the checkpoint's, first resumed step)."""
        if self._pending is not None:
            set_rng_states(self._pending)
            self._pending = None

    def on_train_batch_end(self, trainer: Trainer, pl_module: LightningModule, outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        """Keep the RNG states the next step starts with; note whether this step validates.

        Checkpoint callbacks save after this hook (Lightning orders them last).
        """
        self._pending = rng_states()
        loop = trainer.fit_loop
        self._validation_due = bool(loop._data_fetcher is not None
                                    and loop.epoch_loop._should_check_val_fx(loop._data_fetcher))

    def on_validation_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """The owed validation is done; undo the extra started batch that `owe_validation` counted."""
        if trainer.sanity_checking:
            return
        self._validation_due = False
        if self._rewound:
            total = trainer.fit_loop.epoch_loop.val_loop.batch_progress.total
            total.ready -= 1
            total.started -= 1
            self._rewound = False


def owe_validation(fit_loop: dict[str, Any]) -> None:
    """Rewind a saved fit loop (in place) so that the resume runs the step's validation again before the next batch.

    The validation batch progress goes to "one batch started, none processed", Lightning's mid-evaluation restart
    state (`_EvaluationLoop.update_restart_stage`): the training loop then runs the validation from its first
    batch (current = 0). The total gets one started batch that never completes; the caller takes it back after
    the validation. The loggers' step counter goes back one: Lightning counts this step twice (restart on train
    batch end, then the end of the owed validation's iteration), else every later metric is logged a step late.
    """
    fit_loop["epoch_loop.state_dict"]["_batches_that_stepped"] -= 1
    progress = fit_loop["epoch_loop.val_loop.batch_progress"]
    done = progress["total"]["completed"]
    progress["total"] = {"ready": done + 1, "started": done + 1, "processed": done, "completed": done}
    progress["current"] = {"ready": 1, "started": 1, "processed": 0, "completed": 0}
    progress["is_last_batch"] = False


class InterruptCheckpoint(Callback):
    """Writes `last.ckpt` when the scheduler's SIGTERM (or Ctrl-C) stops training, so `ckpt_path=last` resumes.

    Lightning turns SIGTERM into a `SIGTERMException` at the end of the current batch, i.e. in a consistent
    state. A non-finite loss stops in the middle of a step, before the optimizer touched the weights: that
    state (the last good one) goes to `nonfinite-step{N}.ckpt` so `last.ckpt` keeps pointing at a state that
    resumes cleanly.
    """

    def __init__(self, dirpath: str | Path) -> None:
        super().__init__()
        self.dirpath = Path(dirpath)
        self.saved: Path | None = None

    def on_exception(self, trainer: Trainer, pl_module: LightningModule, exception: BaseException) -> None:
        """Save a checkpoint for the interrupts and numerical failures that a resume can recover from."""
        from src.model.module import NonFiniteLossError

        if isinstance(exception, (SIGTERMException, KeyboardInterrupt)):
            name = "last.ckpt"
        elif isinstance(exception, NonFiniteLossError):
            name = f"nonfinite-step{trainer.global_step}.ckpt"
        else:
            return
        self.saved = self.dirpath / name
        if name == "last.ckpt":
            claim_last_checkpoint(trainer, self.saved)
        trainer.save_checkpoint(self.saved)  # collective under DDP: every rank reaches on_exception
        log.warning("%s: checkpoint of the last good state written to %s", type(exception).__name__, self.saved)


def claim_last_checkpoint(trainer: Trainer, path: Path) -> None:
    """Tell the `save_last` ModelCheckpoint writing `path` that the file is its own, before it is saved.

    Otherwise a SIGTERM before that callback's first save leaves a `last.ckpt` it does not know, and after the
    resume it writes `last-v1.ckpt` beside it: the next resume would start from the stale `last.ckpt`.
    """
    for cb in trainer.checkpoint_callbacks:
        if isinstance(cb, ModelCheckpoint) and cb.save_last and cb.dirpath:
            own = cb.format_checkpoint_name({}, cb.CHECKPOINT_NAME_LAST)
            if os.path.realpath(own) == os.path.realpath(path):
                cb.last_model_path = own
