"""InfoNCE over in-batch negatives and hard negatives, optionally gathered from every DDP rank.

In-batch false negatives are masked: a candidate (another pair's positive or any hard negative) that
answers the query — the same sentence, or one with the same normalised text as one of the query's answers
in any language (`src.data.pairs.relevance_keys`) — is removed from that query's denominator.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from src.model.distributed import gather_rows, world


@dataclass(frozen=True)
class RelevanceKeys:
    """Which candidates answer which query: a query's keys (row, -1 padded) vs each candidate's key."""

    query: torch.Tensor  # (n, R) int64: keys of every answer of the query's question, -1 = none
    positive: torch.Tensor  # (P,) int64: key of each positive row
    negative: torch.Tensor  # (M,) int64: key of each hard-negative row


def false_negative_mask(query_keys: torch.Tensor, candidate_keys: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """(n, C) bool: candidate j answers query i (shares a key with it) and is not i's labelled positive."""
    hit = ((candidate_keys[None, :, None] == query_keys[:, None, :]) & (query_keys[:, None, :] >= 0)).any(-1)
    hit[torch.arange(query_keys.shape[0], device=hit.device), labels] = False
    return hit


def info_nce(
    queries: torch.Tensor,
    positives: torch.Tensor,
    negatives: torch.Tensor | None = None,
    temperature: float = 0.05,
    in_batch_positives: bool = True,
    positive_offset: int = 0,
    reduction: str = "mean",
    exclude: torch.Tensor | None = None,
) -> torch.Tensor:
    """Cross-entropy of each query over its positive and the batch's negatives.

    `queries` (B, d) are row-aligned with `positives[positive_offset : positive_offset + B]`; more
    positive rows than queries occur when positives were gathered from other ranks. `negatives` (M, d)
    are the hard negatives of all triplets. With `in_batch_positives` the other queries' positives are
    negatives too (the common implementation); without it the denominator holds the own positive plus
    every hard negative (the paper's published equation). `reduction` is `mean` or `sum` over queries.
    `exclude` (n, P + M) drops candidates (in [positives, negatives] order) from a query's denominator.
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
        if exclude is not None:
            logits = logits.masked_fill(exclude, float("-inf"))
    else:
        pos = (queries * positives[labels]).sum(-1, keepdim=True)
        neg = queries @ negatives.T
        if exclude is not None:
            neg = neg.masked_fill(exclude[:, positives.shape[0]:], float("-inf"))
        logits = torch.cat([pos, neg], dim=1)
        labels = torch.zeros(n, dtype=torch.long, device=queries.device)
    return nn.functional.cross_entropy(logits.float() / temperature, labels, reduction=reduction)


def masked_info_nce(
    queries: torch.Tensor,
    positives: torch.Tensor,
    negatives: torch.Tensor | None = None,
    temperature: float = 0.05,
    in_batch_positives: bool = True,
    keys: RelevanceKeys | None = None,
    gather: bool = False,
) -> tuple[torch.Tensor, torch.Tensor]:
    """InfoNCE with false negatives masked; returns (loss, number of masked query-candidate pairs).

    With `gather`, this rank's queries are scored against the positives and negatives of every rank (keys
    gathered alike), and the loss is this rank's summed cross-entropy times world_size / global batch: DDP
    averages the gradients of the ranks, so the update equals the gradient of the mean loss over the
    concatenated batch (and the mean of the ranks' values is that loss). Without a process group the
    gathered form is the local one.
    """
    size = world()[0] if gather else 1
    if negatives is None:  # every rank must join the collective, also one without hard negatives
        negatives = positives.new_zeros((0, positives.shape[1]))
    all_pos, all_neg, offset = positives, negatives, 0
    if gather:
        pos = gather_rows(positives)
        all_pos, all_neg, offset = pos.rows, gather_rows(negatives).rows, pos.offset
    exclude = None
    if keys is not None:
        cand = [keys.positive, keys.negative]
        if gather:
            cand = [gather_rows(keys.positive).rows, gather_rows(keys.negative).rows]
        labels = torch.arange(offset, offset + queries.shape[0], device=queries.device)
        exclude = false_negative_mask(keys.query, torch.cat(cand), labels)
    reduction = "sum" if gather else "mean"
    loss = info_nce(queries, all_pos, all_neg, temperature, in_batch_positives, offset, reduction, exclude)
    if gather:
        loss = loss * (size / all_pos.shape[0])
    masked = exclude.sum() if exclude is not None else torch.zeros((), dtype=torch.long, device=queries.device)
    return loss, masked


class InfoNCELoss(nn.Module):
    """Configurable InfoNCE (temperature, whether other positives count as negatives)."""

    def __init__(self, temperature: float = 0.05, in_batch_positives: bool = True) -> None:
        super().__init__()
        self.temperature = temperature
        self.in_batch_positives = in_batch_positives
        self.last_masked: torch.Tensor | None = None

    def forward(
        self, queries: torch.Tensor, positives: torch.Tensor, negatives: torch.Tensor | None = None,
        gather: bool = False, keys: RelevanceKeys | None = None,
    ) -> torch.Tensor:
        """Scalar loss for one batch; `gather` scores against the passages of all ranks, `keys` masks.

        The number of masked query-candidate pairs of the last call is kept in `last_masked` (a tensor:
        reading it on the host is left to the logging steps).
        """
        loss, self.last_masked = masked_info_nce(queries, positives, negatives, self.temperature,
                                                 self.in_batch_positives, keys, gather)
        return loss
