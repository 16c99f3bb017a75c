"""LightningModule: contrastive fine-tuning of a bi-encoder on language-structured batches."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

import torch
from lightning.pytorch import LightningModule

from src.model.encoder import BiEncoder
from src.model.loss import InfoNCELoss


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
    ) -> None:
        super().__init__()
        if not 0.0 <= warmup_ratio <= 1.0:
            raise ValueError(f"optim.warmup_ratio must be in [0, 1], got {warmup_ratio}")
        self.encoder = encoder
        self.loss_fn = loss
        self.optimizer_factory = optimizer
        self.warmup_ratio = warmup_ratio
        self.name = name
        self._last_batch_end: float | None = None

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Embeddings for one padded side of a batch."""
        return self.encoder(**batch)

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor:
        """One contrastive step: encode queries, encode positives + negatives in one pass, InfoNCE."""
        q = self.encoder(**batch["query"])
        p = self.encoder(**batch["passage"])
        n_pos = batch["n_pos"]
        loss = self.loss_fn(q, p[:n_pos], p[n_pos:] if p.shape[0] > n_pos else None)
        if not torch.isfinite(loss):
            langs = sorted({f"{a}-{b}" for a, b in zip(batch["q_lang"], batch["p_lang"])})
            raise NonFiniteLossError(
                f"non-finite loss {loss.item()} at step {self.global_step}: languages {langs}, "
                f"xling_ids {batch['xling_id'][:8]}{'...' if len(batch['xling_id']) > 8 else ''}"
            )
        self.log("train/loss", loss, prog_bar=True, batch_size=n_pos)
        return loss

    def on_train_batch_end(self, outputs: Any, batch: dict[str, Any], batch_idx: int) -> None:
        """Throughput (pairs/s, wall clock between batch ends) and the current learning rate."""
        now = time.perf_counter()
        if self._last_batch_end is not None:
            self.log("train/pairs_per_s", batch["n_pos"] / max(now - self._last_batch_end, 1e-9), batch_size=1)
        self._last_batch_end = now
        self.log("train/lr", self.trainer.optimizers[0].param_groups[0]["lr"], batch_size=1)

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
