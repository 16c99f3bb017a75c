"""InfoNCE over in-batch negatives and hard negatives."""

from __future__ import annotations

import torch
from torch import nn


def info_nce(
    queries: torch.Tensor,
    positives: torch.Tensor,
    negatives: torch.Tensor | None = None,
    temperature: float = 0.05,
    in_batch_positives: bool = True,
) -> torch.Tensor:
    """Cross-entropy of each query over its positive and the batch's negatives.

    `queries` and `positives` are (B, d) and row-aligned; `negatives` (M, d) are the hard negatives of
    all triplets. With `in_batch_positives` the other queries' positives are negatives too (the common
    implementation); without it the denominator holds the own positive plus every hard negative (the
    paper's published equation).
    """
    if queries.shape != positives.shape:
        raise ValueError(f"queries {tuple(queries.shape)} and positives {tuple(positives.shape)} differ")
    if negatives is None:
        negatives = positives.new_zeros((0, positives.shape[1]))
    if in_batch_positives:
        candidates = torch.cat([positives, negatives], dim=0)
        logits = queries @ candidates.T
        labels = torch.arange(queries.shape[0], device=queries.device)
    else:
        pos = (queries * positives).sum(-1, keepdim=True)
        logits = torch.cat([pos, queries @ negatives.T], dim=1)
        labels = torch.zeros(queries.shape[0], dtype=torch.long, device=queries.device)
    return nn.functional.cross_entropy(logits.float() / temperature, labels)


class InfoNCELoss(nn.Module):
    """Configurable InfoNCE (temperature, whether other positives count as negatives)."""

    def __init__(self, temperature: float = 0.05, in_batch_positives: bool = True) -> None:
        super().__init__()
        if not temperature > 0:
            raise ValueError(f"loss.temperature must be > 0, got {temperature}")
        self.temperature = temperature
        self.in_batch_positives = in_batch_positives

    def forward(
        self, queries: torch.Tensor, positives: torch.Tensor, negatives: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Scalar loss for one batch."""
        return info_nce(queries, positives, negatives, self.temperature, self.in_batch_positives)
