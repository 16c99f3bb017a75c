"""LightningModule: contrastive fine-tuning of a bi-encoder on language-structured batches."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

import torch
from lightning.pytorch import LightningModule
from lightning.pytorch.utilities import rank_zero_warn

from src.core.keys import VALIDATION_LOSS
from src.data.padding import LengthBuckets
from src.model.encoder import BiEncoder
from src.model.gradcache import CachedSide, backward_through_chunks, embed_without_graph
from src.model.loss import InfoNCELoss, RelevanceKeys


def relevance_keys(batch: dict[str, Any]) -> RelevanceKeys | None:
    """The batch's false-negative keys (PairDataModule), split into positive and hard-negative rows."""
    if batch.get("query_keys") is None:
        return None
    n, keys = batch["n_pos"], batch["passage_keys"]
    return RelevanceKeys(batch["query_keys"], keys[:n], keys[n:])


class NonFiniteLossError(FloatingPointError):
    """The loss became NaN/inf; the message carries the step and the batch's languages and ids."""


class RetrievalModule(LightningModule):
    """InfoNCE training of a shared-weight bi-encoder with AdamW and linear warm-up/decay."""

    def __init__(
        self,
        encoder: BiEncoder,
        loss: InfoNCELoss,
        optimizer: Callable[..., torch.optim.Optimizer],
        warmup_ratio: float = 0.1,
        name: str = "model",
        on_nonfinite: str = "stop",
        gather_negatives: bool = False,
        cached_negatives: bool = False,
        cache_chunk_size: int = 32,
        checkpoint_extras: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        # Argument values are checked once, by the config schema (src/core/config.py), which names the key.
        self.on_nonfinite = on_nonfinite
        self.skipped_batches = 0
        self.encoder = encoder
        self.loss_fn = loss
        self.optimizer_factory = optimizer
        self.warmup_ratio = warmup_ratio
        self.name = name
        self._window_start: float | None = None  # throughput window: start time and pairs seen since
        self._window_pairs = 0
        self.gather_negatives = gather_negatives  # score against the passages of every DDP rank
        self.cache_chunk_size = cache_chunk_size if cached_negatives else None  # GradCache chunk rows
        self._cached: list[CachedSide] | None = None  # pass-1 embeddings awaiting `backward`
        # Entries written into every checkpoint, weights-only ones included (the training-set fingerprint).
        self.checkpoint_extras = dict(checkpoint_extras or {})

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Embeddings for one padded side of a batch."""
        return self.encoder(**batch)

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor | None:
        """One contrastive step: encode queries, encode positives + negatives in one pass, InfoNCE."""
        n_pos = batch["n_pos"]
        loss = self.contrastive_loss(batch["query"], batch["passage"], n_pos, batch.get("buckets"),
                                     relevance_keys(batch))
        # Agreed across ranks: under DDP one rank skipping or stopping alone would hang the others.
        if not self.trainer.strategy.reduce_boolean_decision(bool(torch.isfinite(loss)), all=True):
            langs = sorted({f"{a}-{b}" for a, b in zip(batch["q_lang"], batch["p_lang"])})
            what = (f"non-finite loss {loss.item()} at step {self.global_step}: languages {langs}, "
                    f"xling_ids {batch['xling_id'][:8]}{'...' if len(batch['xling_id']) > 8 else ''}")
            if self.on_nonfinite == "stop":
                raise NonFiniteLossError(what)
            self.skipped_batches += 1  # returning None makes Lightning skip backward and the optimizer step
            self.log("train/skipped_batches", float(self.skipped_batches), batch_size=1)
            # Log what happened (else Lightning re-logs the previous step's loss for this step).
            self.log("train/loss", loss.detach(), prog_bar=True, batch_size=n_pos)
            rank_zero_warn(f"{what}; batch skipped (on_nonfinite=skip, {self.skipped_batches} so far)")
            return None
        if self.on_nonfinite == "skip":  # a cumulative series: 0 until the first skip
            self.log("train/skipped_batches", float(self.skipped_batches), batch_size=1)
        self.log("train/loss", loss, prog_bar=True, batch_size=n_pos)
        return loss

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor:
        """InfoNCE on a fixed validation batch (dropout off, false negatives masked): `val/loss`."""
        with torch.no_grad():
            q = self.encoder.embed(batch["query"], (batch.get("buckets") or {}).get("query"))
            p = self.encoder.embed(batch["passage"], (batch.get("buckets") or {}).get("passage"))
            n = batch["n_pos"]
            loss = self.loss_fn(q, p[:n], p[n:] if p.shape[0] > n else None, keys=relevance_keys(batch))
        self.log(VALIDATION_LOSS, loss, on_step=False, on_epoch=True, batch_size=n, sync_dist=True)
        return loss

    def contrastive_loss(self, query: dict[str, torch.Tensor], passage: dict[str, torch.Tensor], n_pos: int,
                         buckets: dict[str, LengthBuckets] | None = None, keys: RelevanceKeys | None = None
                         ) -> torch.Tensor:
        """InfoNCE of a batch; with gradient caching the embeddings are graph-free leaves (see `backward`).

        `buckets` (from the DataModule) runs each side as length groups; GradCache chunks rows its own way.
        """
        if self.cache_chunk_size is None:
            buckets = buckets or {}
            q = self.encoder.embed(query, buckets.get("query"))
            p = self.encoder.embed(passage, buckets.get("passage"))
            self._cached = None
        else:
            self._cached = [embed_without_graph(self.encoder, side, self.cache_chunk_size) for side in (query, passage)]
            q, p = (side.embeddings for side in self._cached)
        return self.loss_fn(q, p[:n_pos], p[n_pos:] if p.shape[0] > n_pos else None, gather=self.gather_negatives,
                            keys=keys)

    def backward(self, loss: torch.Tensor, *args: Any, **kwargs: Any) -> None:
        """GradCache pass 2 after the loss's backward (which stops at the cached embeddings)."""
        if self._cached is None:
            super().backward(loss, *args, **kwargs)
            return
        sides, self._cached = self._cached, None
        loss.backward(*args, **kwargs)  # `loss` arrives scaled by the precision plugin (16-mixed)
        backward_through_chunks(self.encoder, sides, before_last=self._rearm_gradient_sync)

    def _rearm_gradient_sync(self, output: torch.Tensor) -> None:
        """Make DDP all-reduce again on the last chunk's backward.

        DDP arms its gradient all-reduce once per forward, and the first chunk's backward uses it up; the
        chunks in between accumulate locally. Re-arming before the last chunk all-reduces the accumulated
        gradients, and since averaging is linear the sum of both all-reduces is the averaged full gradient.
        """
        from torch.nn.parallel import DistributedDataParallel

        model = self.trainer.model if self._trainer is not None else None
        if isinstance(model, DistributedDataParallel):
            from lightning.pytorch.overrides.distributed import prepare_for_backward

            prepare_for_backward(model, output)

    def on_train_batch_start(self, batch: dict[str, Any], batch_idx: int) -> None:
        """Open the first throughput window."""
        if self._window_start is None:
            self._window_start = time.perf_counter()

    def on_train_batch_end(self, outputs: Any, batch: dict[str, Any], batch_idx: int) -> None:
        """Throughput (pairs/s since the previous logger write) and the learning rate, on logging steps only.

        Lightning writes step metrics every `log_every_n_steps` (the condition its own LearningRateMonitor
        uses); a `self.log` call costs ~0.7 ms, a few % of a small model's step, and in between it is not written.
        """
        self._window_pairs += batch["n_pos"]
        if not self.trainer._logger_connector.should_update_logs:
            return
        now = time.perf_counter()
        assert self._window_start is not None  # opened by on_train_batch_start
        self.log("train/pairs_per_s", self._window_pairs / max(now - self._window_start, 1e-9), batch_size=1)
        self._window_start, self._window_pairs = now, 0
        self.log("train/lr", self.trainer.optimizers[0].param_groups[0]["lr"], batch_size=1)
        masked = self.loss_fn.last_masked
        if masked is not None:  # in-batch false negatives removed from this step's denominators
            self.log("train/masked_candidates", masked.float(), batch_size=1)

    def configure_optimizers(self) -> dict[str, Any]:
        """AdamW (no decay on biases and LayerNorms) with linear warm-up then linear decay to 0."""
        decay, no_decay = [], []
        for name, param in self.named_parameters():
            if not param.requires_grad:
                continue
            (no_decay if param.ndim < 2 or "LayerNorm" in name or "layer_norm" in name else decay).append(param)
        optimizer = self.optimizer_factory([{"params": decay}, {"params": no_decay, "weight_decay": 0.0}])
        total = max(int(self.trainer.estimated_stepping_batches), 1)
        warmup = math.ceil(self.warmup_ratio * total)

        def schedule(step: int) -> float:
            if step < warmup:
                return (step + 1) / warmup
            return max(0.0, (total - step) / max(1, total - warmup))

        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """The skipped-batch count survives a resume."""
        checkpoint["xlir_skipped_batches"] = self.skipped_batches
        checkpoint.update(self.checkpoint_extras)

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Restore the skipped-batch count."""
        self.skipped_batches = int(checkpoint.get("xlir_skipped_batches", 0))
