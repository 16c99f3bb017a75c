"""Lightning callbacks the integration tests add to a real `python -m src.run`: batch log, slow steps, injected
inf/NaN. Not part of the product: a test switches one on with a Hydra override built by `hook`, e.g.
`+callbacks.batch_log={_target_: tests.integration.hooks.BatchLog}`; the subprocess imports this module
from the repo root (its working directory), DDP child ranks too.

Every callback under `callbacks` is part of the config fingerprint (src/runs/record.py), so a resumed attempt
passes the same hooks as the run it continues.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import torch
from lightning.pytorch import Callback, LightningModule, Trainer

POISON_KINDS = ("loss", "grad")
BATCH_LOG = "batches.jsonl"


def hook(name: str, callback: str, **kwargs: Any) -> str:
    """The override that adds `callbacks.<name>`: an instance of this module's `callback` with `kwargs`."""
    args = "".join(f",{k}:{_value(v)}" for k, v in kwargs.items())
    return f"+callbacks.{name}={{_target_:{__name__}.{callback}{args}}}"


def _value(value: Any) -> str:
    """A value in Hydra's override grammar: strings quoted, the rest as written.

    No interpolations: an override is kept as a string in `hydra.overrides.task`, where `${...}` would be
    resolved (and fail) when the sweep callback or the DDP launcher reads the job's overrides.
    """
    return f"'{value}'" if isinstance(value, (str, Path)) else str(value)


def batch_log() -> str:
    """The batch log of a run: `{run folder}/batches.jsonl`."""
    return hook("batch_log", "BatchLog")


def step_delay(seconds: float) -> str:
    """A sleep after every step, so a test can interrupt a tiny run mid-epoch."""
    return hook("step_delay", "StepDelay", seconds=seconds)


def poison(step: int, kind: str = "loss") -> str:
    """A NaN loss (`loss`) or an inf gradient (`grad`) at one optimizer step."""
    return hook("poison", "PoisonStep", step=step, kind=kind)


def fail_once(marker: str | Path, step: int) -> str:
    """A run that fails at `step` unless `marker` exists, and creates it: the next attempt succeeds."""
    return hook("fail_once", "FailOnce", marker=marker, step=step)


class BatchLog(Callback):
    """Appends each step's batch composition (xling_ids, languages) to a JSON-lines file.

    On resume, lines at or after the restored step are dropped first, so the file always describes the one
    sequence of batches that produced the current weights.
    """

    def __init__(self, filename: str = BATCH_LOG) -> None:
        super().__init__()
        self.filename = filename
        self.path: Path | None = None

    def on_train_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """Truncate what an interrupted attempt logged past the checkpoint."""
        # The trainer's root is the run folder (${paths.output_dir}): a resumed run's is its predecessor's.
        self.path = Path(trainer.default_root_dir) / self.filename
        if not trainer.is_global_zero:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        kept = [ln for ln in read_batch_log(self.path) if ln["step"] < trainer.global_step]
        self.path.write_text("".join(json.dumps(ln) + "\n" for ln in kept))

    def on_train_batch_start(self, trainer: Trainer, pl_module: LightningModule, batch: Any, batch_idx: int) -> None:
        """One line per step."""
        if trainer.is_global_zero and self.path is not None:
            line = {"step": trainer.global_step, "xling_id": list(batch["xling_id"]),
                    "q_lang": list(batch["q_lang"]), "p_lang": list(batch["p_lang"])}
            with self.path.open("a") as f:
                f.write(json.dumps(line) + "\n")


def read_batch_log(path: str | Path) -> list[dict[str, Any]]:
    """The lines of a batch log ([] when absent)."""
    p = Path(path)
    return [json.loads(ln) for ln in p.read_text().splitlines() if ln.strip()] if p.is_file() else []


class StepDelay(Callback):
    """Sleeps after every step so a test can interrupt a tiny run mid-epoch at a moment of its choosing."""

    def __init__(self, seconds: float) -> None:
        super().__init__()
        self.seconds = seconds

    def on_train_batch_end(self, trainer: Trainer, pl_module: LightningModule, *args: Any) -> None:
        """Sleep."""
        time.sleep(self.seconds)


class PoisonStep(Callback):
    """Injects a non-finite value at one optimizer step to exercise the numerical safety paths.

    `loss`: the encoder's output embeddings become NaN for that batch (so the loss is NaN);
    `grad`: one gradient becomes +inf after backward (what an fp16 overflow looks like to the loss scaler).
    """

    def __init__(self, step: int, kind: str = "loss") -> None:
        super().__init__()
        if kind not in POISON_KINDS:
            raise ValueError(f"PoisonStep kind={kind!r}: expected one of {POISON_KINDS}")
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


class FailOnce(Callback):
    """Raises at one step of the first run that sees no marker file (creating it), so a re-run passes."""

    def __init__(self, marker: str, step: int) -> None:
        super().__init__()
        self.marker, self.step = Path(marker), step

    def on_train_batch_start(self, trainer: Trainer, pl_module: LightningModule, batch: Any, batch_idx: int) -> None:
        """Fail at the chosen step, once."""
        if trainer.global_step == self.step and not self.marker.exists():
            self.marker.write_text("failed once")
            raise RuntimeError(f"FailOnce: injected failure at step {self.step}")
