"""Lightning callbacks that make a run survive interruptions: exact resume, interrupt checkpoints, best-by-eval
checkpoints, and the debug hooks the reliability tests drive (batch log, slow steps, injected inf/NaN)."""

from __future__ import annotations

import json
import logging
import random
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from lightning.pytorch import Callback, LightningModule, Trainer
from lightning.pytorch.utilities.exceptions import SIGTERMException

log = logging.getLogger(__name__)

RNG_KEY = "xlir_rng_states"
POISON_KINDS = ("loss", "grad")


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


class BatchLog(Callback):
    """Debug: appends each step's batch composition (xling_ids, languages) to a JSON-lines file.

    On resume, lines at or after the restored step are dropped first, so the file always describes the one
    sequence of batches that produced the current weights.
    """

    def __init__(self, path: str | Path) -> None:
        super().__init__()
        self.path = Path(path)

    def on_train_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """Truncate what an interrupted attempt logged past the checkpoint."""
        if not trainer.is_global_zero:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        kept = [ln for ln in read_batch_log(self.path) if ln["step"] < trainer.global_step]
        self.path.write_text("".join(json.dumps(ln) + "\n" for ln in kept))

    def on_train_batch_start(self, trainer: Trainer, pl_module: LightningModule, batch: Any, batch_idx: int) -> None:
        """One line per step."""
        if trainer.is_global_zero:
            line = {"step": trainer.global_step, "xling_id": list(batch["xling_id"]),
                    "q_lang": list(batch["q_lang"]), "p_lang": list(batch["p_lang"])}
            with self.path.open("a") as f:
                f.write(json.dumps(line) + "\n")


def read_batch_log(path: str | Path) -> list[dict[str, Any]]:
    """The lines of a batch log ([] when absent)."""
    p = Path(path)
    return [json.loads(ln) for ln in p.read_text().splitlines() if ln.strip()] if p.is_file() else []


class StepDelay(Callback):
    """Debug: sleeps after every step so a test can interrupt a tiny run mid-epoch at a moment of its choosing."""

    def __init__(self, seconds: float) -> None:
        super().__init__()
        self.seconds = seconds

    def on_train_batch_end(self, trainer: Trainer, pl_module: LightningModule, *args: Any) -> None:
        """Sleep."""
        time.sleep(self.seconds)


class PoisonStep(Callback):
    """Debug: injects a non-finite value at one optimizer step to exercise the numerical safety paths.

    `loss`: the encoder's output embeddings become NaN for that batch (so the loss is NaN);
    `grad`: one gradient becomes +inf after backward (what an fp16 overflow looks like to the loss scaler).
    """

    def __init__(self, step: int, kind: str = "loss") -> None:
        super().__init__()
        if kind not in POISON_KINDS:
            raise ValueError(f"debug.poison={kind!r}: expected one of {POISON_KINDS}")
        self.step, self.kind = step, kind
        self._active = False
        self._hook: Any = None

    def on_train_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """Register the forward hook (inactive except at the poisoned step)."""
        if self.kind == "loss":
            self._hook = pl_module.encoder.register_forward_hook(
                lambda _m, _i, out: torch.full_like(out, float("nan")) if self._active else out
            )

    def on_train_batch_start(self, trainer: Trainer, pl_module: LightningModule, batch: Any, batch_idx: int) -> None:
        """Arm at the chosen step."""
        self._active = trainer.global_step == self.step

    def on_after_backward(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """Grad poisoning happens before unscaling/clipping, like a real overflow."""
        if self._active and self.kind == "grad":
            param = next(p for p in pl_module.parameters() if p.grad is not None)
            param.grad.view(-1)[0] = float("inf")

    def on_train_batch_end(self, trainer: Trainer, pl_module: LightningModule, *args: Any) -> None:
        """Disarm; log the AMP loss scale when there is one, so a test can see the scaler react."""
        self._active = False
        scaler = getattr(trainer.precision_plugin, "scaler", None)
        if scaler is not None:
            pl_module.log("train/amp_scale", float(scaler.get_scale()), batch_size=1)

    def on_train_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """Remove the hook so evaluation sees the real encoder."""
        if self._hook is not None:
            self._hook.remove()
            self._hook = None


def debug_callbacks(debug: Any, run_dir: str | Path) -> list[Callback]:
    """The test hooks that `debug.*` switches on."""
    out: list[Callback] = []
    if debug.batch_log:
        out.append(BatchLog(Path(run_dir) / "batches.jsonl"))
    if debug.step_sleep_s:
        out.append(StepDelay(debug.step_sleep_s))
    if debug.poison_step is not None:
        out.append(PoisonStep(debug.poison_step, debug.poison))
    return out


def slurm_plugins(enabled: bool) -> dict[str, Any]:
    """`plugins=[SLURMEnvironment(auto_requeue=True)]` for the Trainer when running as a SLURM job.

    Under `hydra/launcher=submitit_slurm` the job is a SLURM task: on the requeue signal (SIGUSR1, see
    README) Lightning saves `hpc_ckpt_N.ckpt` into the run folder and requeues the job; the requeued job
    (`SLURM_RESTART_COUNT` > 0, same folder) resumes from it and reopens its MLflow run (src/training/resume.py).
    """
    from lightning.pytorch.plugins.environments import SLURMEnvironment

    if not enabled or not SLURMEnvironment.detect():
        return {}
    return {"plugins": [SLURMEnvironment(auto_requeue=True)]}
