"""Lightning adapters over the grid driver (driver.py) and artifacts/: zero-shot and validation hooks."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import torch
from lightning.pytorch import Callback, LightningModule, Trainer
from rich.console import Console

from src.core import keys
from src.core.specs import debias_methods
from src.data.lareqa import LareqaDataset
from src.evaluation.driver import evaluate_sets, summary_table
from src.evaluation.grid import Embeddings, GridResult


class RetrievalEvalCallback(Callback):
    """Evaluates the module's encoder zero-shot on held-out LAReQA sets and logs to every logger."""

    # What the training recipe hands a `_partial_` config of this class (src/recipes/train.py build_callbacks).
    NEEDS: ClassVar[dict[str, str]] = {"datasets": "eval_sets"}

    def __init__(
        self,
        datasets: Mapping[str, LareqaDataset] | None = None,
        every_n_steps: int | None = None,
        *,
        # conf/callbacks/default.yaml gives each of these from the `eval` section: no second default here
        batch_size: int,
        candidate_text: str,
        exports: bool,
        export_dir: str | None,
        trec_depth: int,
        save_embeddings: bool,
        debias: str | Sequence[str] | None,
        debias_k: int,
        at_train_end: bool = True,
    ) -> None:
        super().__init__()
        if every_n_steps is not None and every_n_steps <= 0:
            raise ValueError(f"callbacks.retrieval_eval.every_n_steps must be > 0 or null, got {every_n_steps}")
        self.debias, self.debias_k = debias_methods(debias), debias_k
        self.datasets = dict(datasets or {})
        self.every_n_steps = every_n_steps
        self.batch_size = batch_size
        self.candidate_text = candidate_text
        self.at_train_end = at_train_end
        self.export_dir = export_dir if exports else None
        self.trec_depth = trec_depth
        self.save_embeddings = save_embeddings
        self.last_metrics: dict[str, float] = {}
        self.selected: dict[str, Any] | None = None  # the validation-chosen checkpoint evaluated at the end
        self.last_results: dict[str, GridResult] = {}
        self._last_embeddings: dict[str, Embeddings] = {}
        self._evaluated_step: int | None = None

    def run(self, trainer: Trainer, module: LightningModule) -> None:
        """Evaluate now unless this step already was (rank 0 only; the other ranks wait for its metrics)."""
        if not self.datasets or self._evaluated_step == trainer.global_step:
            return
        if trainer.is_global_zero:
            metrics, results, embeddings = evaluate_sets(
                module.encoder, self.datasets, self.batch_size, self.candidate_text, str(trainer.precision),
                debias=self.debias, debias_k=self.debias_k,
            )
            self.last_metrics, self.last_results, self._last_embeddings = metrics, results, embeddings
            for logger in trainer.loggers:
                logger.log_metrics(metrics, step=trainer.global_step)
            Console().print(summary_table(metrics, list(results)))
        self._evaluated_step = trainer.global_step
        # Every rank gets rank 0's metrics (a DDP broadcast, bounded by the strategy's timeout): callbacks
        # that act on them, e.g. a best-checkpoint saver, must take the same collective path on all ranks.
        self.last_metrics = trainer.strategy.broadcast(self.last_metrics, src=0)

    def export(self) -> None:
        """Write grid CSVs, heatmaps, TREC files and per-query metrics of the last evaluation."""
        from src.evaluation.artifacts import export_sets

        if not self.export_dir or not self.last_results:
            return
        export_sets(self.datasets, self.last_results, self._last_embeddings, Path(self.export_dir),
                    trec_depth=self.trec_depth, save_embeddings=self.save_embeddings)

    def on_train_batch_end(self, trainer: Trainer, module: LightningModule, *args: Any) -> None:
        """Periodic evaluation every `every_n_steps` optimizer steps."""
        if self.every_n_steps and trainer.global_step > 0 and trainer.global_step % self.every_n_steps == 0:
            self.run(trainer, module)

    def on_train_end(self, trainer: Trainer, module: LightningModule) -> None:
        """Final evaluation of the checkpoint chosen on validation (else the last weights), on its device."""
        if not self.at_train_end:
            return
        self.selected = select_on_validation(trainer)
        final = None
        if self.selected is not None:  # evaluate the chosen weights, then give the trainer back its own
            final = {k: v.detach().clone() for k, v in module.state_dict().items()}
            chosen = torch.load(self.selected["checkpoint"], map_location="cpu", weights_only=False)
            module.load_state_dict(chosen["state_dict"])
            self.selected["step"] = int(chosen["global_step"])
            if self.selected["step"] != trainer.global_step:
                self._evaluated_step = None  # the chosen weights are not this step's: evaluate them
        try:
            self.run(trainer, module)  # no-op when the periodic evaluation just ran at this step
            if trainer.is_global_zero:
                self.export()
        finally:
            if final is not None:
                module.load_state_dict(final)


def select_on_validation(trainer: Trainer) -> dict[str, Any] | None:
    """The best checkpoint of a ModelCheckpoint that monitors a validation metric (`val/...`), if one was kept."""
    from lightning.pytorch.callbacks import ModelCheckpoint

    for cb in trainer.checkpoint_callbacks:
        if isinstance(cb, ModelCheckpoint) and keys.is_validation(str(cb.monitor or "")) and cb.best_model_path:
            score = cb.best_model_score
            return {"checkpoint": cb.best_model_path, "monitor": cb.monitor,
                    "score": None if score is None else float(score)}
    return None


def load_weights(path: str) -> dict[str, torch.Tensor]:
    """The LightningModule state dict of a (weights-only) checkpoint file."""
    return torch.load(path, map_location="cpu", weights_only=False)["state_dict"]


class ValidationRetrieval(Callback):
    """Retrieval on the validation split (mono / cross / pooled mAP, rank distance) after each validation.

    Logged through the module (`val/multi/map`, ...) so ModelCheckpoint and EarlyStopping can monitor it;
    rank 0 evaluates, every rank logs the broadcast result.
    """

    NEEDS: ClassVar[dict[str, str]] = {"dataset": "val_set"}  # off without a validation split

    def __init__(self, dataset: LareqaDataset | None = None, *, batch_size: int, candidate_text: str) -> None:
        super().__init__()
        self.dataset = dataset
        self.batch_size = batch_size
        self.candidate_text = candidate_text

    def on_validation_epoch_end(self, trainer: Trainer, module: LightningModule) -> None:
        """Encode the validation questions and candidates, score the grid, log the setting averages."""
        if self.dataset is None or trainer.sanity_checking:
            return
        summary: dict[str, float] = {}
        if trainer.is_global_zero:
            metrics, _, _ = evaluate_sets(module.encoder, {keys.VALIDATION: self.dataset}, self.batch_size,
                                          self.candidate_text, str(trainer.precision))
            # The grid names keys by the set (mlqa_r_val/...): log them as val/... for the checkpoint monitors.
            summary = keys.as_validation(metrics, self.dataset.name)
        summary = trainer.strategy.broadcast(summary, src=0)
        module.log_dict(summary, on_step=False, on_epoch=True, batch_size=1)
