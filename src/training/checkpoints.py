"""What a checkpoint must carry and when one is written, so an interrupted run resumes exactly: the global RNG
states (restored before the first resumed batch) and the checkpoint at SIGTERM/Ctrl-C or a non-finite loss."""

from __future__ import annotations

import logging
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch
from lightning.pytorch import Callback, LightningModule, Trainer
from lightning.pytorch.utilities.exceptions import SIGTERMException

log = logging.getLogger(__name__)

RNG_KEY = "xlir_rng_states"


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
    """Saves the global RNG states in every checkpoint and restores them right before the first resumed batch.

    Lightning does not checkpoint RNG states. They cannot be set in `on_load_checkpoint` either: creating the
    DataLoader iterator afterwards draws from torch's global generator. Restoring them at the first
    `on_train_batch_start` puts dropout exactly where the uninterrupted run had it.
    """

    def __init__(self) -> None:
        super().__init__()
        self._pending: dict[str, Any] | None = None

    def on_save_checkpoint(self, trainer: Trainer, pl_module: LightningModule, checkpoint: dict[str, Any]) -> None:
        """Add torch/numpy/python RNG states to the checkpoint."""
        checkpoint[RNG_KEY] = rng_states()

    def on_load_checkpoint(self, trainer: Trainer, pl_module: LightningModule, checkpoint: dict[str, Any]) -> None:
        """Keep the saved states until training actually resumes."""
        self._pending = checkpoint.get(RNG_KEY)

    def on_train_batch_start(self, trainer: Trainer, pl_module: LightningModule, batch: Any, batch_idx: int) -> None:
        """Restore the saved RNG states once, before the first resumed step."""
        if self._pending is not None:
            set_rng_states(self._pending)
            self._pending = None


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
        trainer.save_checkpoint(self.saved)  # collective under DDP: every rank reaches on_exception
        log.warning("%s: checkpoint of the last good state written to %s", type(exception).__name__, self.saved)
