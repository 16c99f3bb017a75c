"""Cross-rank gathering of embeddings for global in-batch negatives (works on gloo and NCCL).

`gather_rows` concatenates a (n_r, d) tensor from every rank in rank order. Ranks may hold different row
counts (a batch's hard negatives vary), so rows are padded to the largest count for `all_gather` and
trimmed again. The backward pass sums the gradient of the global tensor over ranks and hands each rank
the rows it contributed, so a rank's encoder also receives the gradient that *other* ranks' queries put
on its passages, exactly as if one process had scored the concatenated batch.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.distributed as dist


def world() -> tuple[int, int]:
    """(world size, rank) of the default process group; (1, 0) when none is initialised."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_world_size(), dist.get_rank()
    return 1, 0


@dataclass(frozen=True)
class Gathered:
    """A tensor gathered from all ranks and where this rank's rows sit in it."""

    rows: torch.Tensor  # (sum_r n_r, d), rank order
    offset: int  # first row contributed by this rank
    counts: tuple[int, ...]  # rows contributed by each rank


def _all_counts(n: int, device: torch.device) -> tuple[int, ...]:
    """Row counts of every rank (one small all_gather)."""
    size, _ = world()
    mine = torch.tensor([n], dtype=torch.long, device=device)
    out = [torch.zeros_like(mine) for _ in range(size)]
    dist.all_gather(out, mine)
    return tuple(int(c.item()) for c in out)


class _GatherRows(torch.autograd.Function):
    """all_gather with padding in forward; all_reduce(sum) of the global gradient in backward."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, counts: tuple[int, ...], rank: int) -> torch.Tensor:  # type: ignore[override]
        """Concatenate every rank's rows (padded to the largest count for the collective)."""
        width = max(counts)
        padded = x.new_zeros((width, *x.shape[1:]))
        padded[: x.shape[0]] = x
        parts = [torch.empty_like(padded) for _ in counts]
        dist.all_gather(parts, padded.contiguous())
        ctx.counts, ctx.rank = counts, rank
        return torch.cat([p[:c] for p, c in zip(parts, counts)], dim=0)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None, None]:  # type: ignore[override]
        """Each rank's loss contributed a gradient for every global row; sum them, keep our own rows."""
        total = grad.contiguous().clone()
        dist.all_reduce(total, op=dist.ReduceOp.SUM)
        start = sum(ctx.counts[: ctx.rank])
        return total[start : start + ctx.counts[ctx.rank]], None, None


def gather_rows(x: torch.Tensor) -> Gathered:
    """All ranks' rows of `x` in rank order, differentiable; the identity without a process group."""
    size, rank = world()
    if size == 1:
        return Gathered(x, 0, (x.shape[0],))
    counts = _all_counts(x.shape[0], x.device)
    if max(counts) == 0:  # e.g. no rank has hard negatives this step
        return Gathered(x, 0, counts)
    rows = _GatherRows.apply(x, counts, rank)
    return Gathered(rows, sum(counts[:rank]), counts)
