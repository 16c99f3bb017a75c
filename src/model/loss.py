"""InfoNCE over in-batch negatives and hard negatives, optionally gathered from every DDP rank."""

from __future__ import annotations

import torch
from torch import nn

from src.model.distributed import gather_rows, world


def info_nce(
    queries: torch.Tensor,
    positives: torch.Tensor,
    negatives: torch.Tensor | None = None,
    temperature: float = 0.05,
    in_batch_positives: bool = True,
    positive_offset: int = 0,
    reduction: str = "mean",
) -> torch.Tensor:
    """Cross-entropy of each query over its positive and the batch's negatives.

    `queries` (B, d) are row-aligned with `positives[positive_offset : positive_offset + B]`; more
    positive rows than queries occur when positives were gathered from other ranks. `negatives` (M, d)
    are the hard negatives of all triplets. With `in_batch_positives` the other queries' positives are
    negatives too (the common implementation); without it the denominator holds the own positive plus
    every hard negative (the paper's published equation). `reduction` is `mean` or `sum` over queries.
    """
    n = queries.shape[0]
    if queries.shape[1:] != positives.shape[1:] or not 0 <= positive_offset <= positives.shape[0] - n:
        raise ValueError(f"queries {tuple(queries.shape)} do not align with rows {positive_offset}.. of "
                         f"positives {tuple(positives.shape)}")
    if negatives is None:
        negatives = positives.new_zeros((0, positives.shape[1]))
    labels = torch.arange(positive_offset, positive_offset + n, device=queries.device)
    if in_batch_positives:
        candidates = torch.cat([positives, negatives], dim=0)
        logits = queries @ candidates.T
    else:
        pos = (queries * positives[labels]).sum(-1, keepdim=True)
        logits = torch.cat([pos, queries @ negatives.T], dim=1)
        labels = torch.zeros(n, dtype=torch.long, device=queries.device)
    return nn.functional.cross_entropy(logits.float() / temperature, labels, reduction=reduction)


def global_info_nce(
    queries: torch.Tensor,
    positives: torch.Tensor,
    negatives: torch.Tensor | None = None,
    temperature: float = 0.05,
    in_batch_positives: bool = True,
) -> torch.Tensor:
    """InfoNCE of this rank's queries against the positives and negatives of every rank.

    The result is this rank's summed cross-entropy times world_size / global batch: DDP averages the
    gradients of the ranks, so the update equals the gradient of the mean loss over the concatenated
    batch (and the mean of the ranks' values is that loss). Without a process group it is `info_nce`.
    """
    size, _ = world()
    if negatives is None:  # every rank must join the collective, also one without hard negatives
        negatives = positives.new_zeros((0, positives.shape[1]))
    pos, neg = gather_rows(positives), gather_rows(negatives)
    total = info_nce(queries, pos.rows, neg.rows, temperature, in_batch_positives, pos.offset, "sum")
    return total * (size / pos.rows.shape[0])


class InfoNCELoss(nn.Module):
    """Configurable InfoNCE (temperature, whether other positives count as negatives)."""

    def __init__(self, temperature: float = 0.05, in_batch_positives: bool = True) -> None:
        super().__init__()
        if not temperature > 0:
            raise ValueError(f"loss.temperature must be > 0, got {temperature}")
        self.temperature = temperature
        self.in_batch_positives = in_batch_positives

    def forward(
        self, queries: torch.Tensor, positives: torch.Tensor, negatives: torch.Tensor | None = None,
        gather: bool = False,
    ) -> torch.Tensor:
        """Scalar loss for one batch; `gather` scores against the passages of all ranks."""
        if gather:
            return global_info_nce(queries, positives, negatives, self.temperature, self.in_batch_positives)
        return info_nce(queries, positives, negatives, self.temperature, self.in_batch_positives)
