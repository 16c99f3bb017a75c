"""Padding of token batches: widths rounded to a multiple, rows grouped by length (built by the data module,
consumed by the encoder's forward)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch


def round_up(width: int, multiple: int) -> int:
    """`width` rounded up to a multiple of `multiple` (1 = unchanged)."""
    return -(-width // multiple) * multiple


@dataclass(frozen=True)
class LengthBuckets:
    """A padded side's rows grouped by length; each group runs trimmed to its own longest row.

    A training batch pads every passage to the longest of ~64 (MLQA-R: 7.7k padded tokens for 3.0k real);
    four length groups pad to 4.0k, and since padding is masked the embeddings are the same. Built on the
    host from the token counts (no device sync), moved with the batch.
    """

    rows: tuple[torch.Tensor, ...]  # row indices of each group, longest rows first
    widths: tuple[int, ...]  # each group's longest row
    inverse: torch.Tensor  # where each original row sits in the concatenated groups

    @classmethod
    def from_lengths(cls, lengths: np.ndarray, groups: int, multiple: int = 1) -> LengthBuckets:
        """Sort rows by length (stable, longest first), split into `groups` near-equal groups; widths rounded up."""
        if groups < 1:
            raise ValueError(f"groups must be >= 1, got {groups}")
        lengths = np.asarray(lengths)
        order = np.argsort(-lengths, kind="stable")
        parts = [c for c in np.array_split(order, min(groups, max(len(order), 1))) if len(c)]
        widths = tuple(round_up(max(int(lengths[c].max()), 1), multiple) for c in parts)
        return cls(tuple(torch.from_numpy(c) for c in parts), widths, torch.from_numpy(np.argsort(order, kind="stable")))

    def to(self, device: torch.device) -> LengthBuckets:
        """The same groups with their index tensors on `device`."""
        return LengthBuckets(tuple(r.to(device, non_blocking=True) for r in self.rows), self.widths,
                             self.inverse.to(device, non_blocking=True))
