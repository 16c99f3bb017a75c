"""Gradient caching (GradCache, Gao et al. 2021): contrastive batches larger than memory allows.

Pass 1 embeds the batch chunk by chunk without an autograd graph; the loss is computed over the whole
batch with the embeddings as leaf tensors, and its backward stops at them (a (B, d) gradient, cheap).
Pass 2 re-embeds each chunk with a graph and backpropagates `embedding · cached gradient`, so the
parameter gradients equal those of the uncached computation while only one chunk's activations are
alive at a time. Dropout must draw the same masks in both passes, so each chunk's RNG state is recorded
in pass 1 and replayed in pass 2 (inside `fork_rng`, leaving the global stream where pass 1 left it).
Likewise the autocast state: Lightning runs `backward` outside the training step's autocast, so pass 2
re-enters the one pass 1 ran under (else a bf16-mixed run would redo every chunk in float32: slower, and
the gradient of another function than the one the loss saw).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import TracebackType

import torch

Encode = Callable[..., torch.Tensor]


class ReplayRng:
    """Captures the CPU (and the device's CUDA) RNG state now; `with` replays it, then restores the stream."""

    def __init__(self, device: torch.device) -> None:
        self.devices = [device] if device.type == "cuda" else []
        self.cpu = torch.get_rng_state()
        self.cuda = [torch.cuda.get_rng_state(d) for d in self.devices]
        self._fork: object | None = None

    def __enter__(self) -> None:
        """Fork the RNG streams and set them to the captured state."""
        self._fork = torch.random.fork_rng(devices=self.devices)
        self._fork.__enter__()  # type: ignore[attr-defined]
        torch.set_rng_state(self.cpu)
        for dev, state in zip(self.devices, self.cuda):
            torch.cuda.set_rng_state(state, dev)

    def __exit__(self, kind: type[BaseException] | None, err: BaseException | None, tb: TracebackType | None) -> None:
        """Return the RNG streams to where they were before `__enter__`."""
        assert self._fork is not None
        self._fork.__exit__(kind, err, tb)  # type: ignore[attr-defined]
        self._fork = None


def chunk_slices(n: int, size: int) -> list[slice]:
    """Consecutive row slices of at most `size` rows covering range(n) (none for n = 0)."""
    if size < 1:
        raise ValueError(f"chunk size must be >= 1, got {size}")
    return [slice(s, min(s + size, n)) for s in range(0, n, size)]


@dataclass(frozen=True)
class AutocastState:
    """Whether autocast is on for a device type, and its dtype; calling it re-enters that state."""

    device_type: str
    enabled: bool
    dtype: torch.dtype

    @classmethod
    def capture(cls, device: torch.device) -> AutocastState:
        """The autocast state in force now for this device's type."""
        return cls(device.type, torch.is_autocast_enabled(device.type), torch.get_autocast_dtype(device.type))

    def __call__(self) -> torch.autocast:
        """A context manager with this state (also when it is off: an enclosing autocast is then disabled)."""
        return torch.autocast(self.device_type, dtype=self.dtype, enabled=self.enabled)


@dataclass
class CachedSide:
    """One side of a batch (queries or passages) embedded without graph, ready for pass 2."""

    embeddings: torch.Tensor  # leaf, requires_grad: the loss backpropagates into its .grad
    chunks: list[tuple[dict[str, torch.Tensor], ReplayRng]] = field(default_factory=list)
    autocast: AutocastState | None = None  # pass 1's, re-entered by pass 2


def embed_without_graph(encode: Encode, batch: Mapping[str, torch.Tensor], chunk_size: int) -> CachedSide:
    """Pass 1: embed `batch` (padded tensors, rows = examples) chunk by chunk under no_grad."""
    n = next(iter(batch.values())).shape[0]
    device = next(iter(batch.values())).device
    parts, chunks = [], []
    for rows in chunk_slices(n, chunk_size):
        chunk = {k: v[rows] for k, v in batch.items()}
        rng = ReplayRng(device)
        with torch.no_grad():
            parts.append(encode(**chunk))
        chunks.append((chunk, rng))
    emb = torch.cat(parts) if parts else torch.empty(0)
    return CachedSide(emb.detach().requires_grad_(True), chunks, AutocastState.capture(device))


def backward_through_chunks(
    encode: Encode, sides: list[CachedSide], before_last: Callable[[torch.Tensor], None] | None = None
) -> None:
    """Pass 2: re-embed every chunk with graph and backpropagate its slice of the cached gradient.

    Call after the loss's backward has filled `side.embeddings.grad`. `before_last` runs on the last
    chunk's embeddings just before its backward (DDP re-arms its gradient all-reduce there).
    """
    jobs = []
    for side in sides:
        if side.embeddings.grad is None:
            raise RuntimeError("backward_through_chunks needs the loss's gradient: call loss.backward() first")
        start = 0
        for chunk, rng in side.chunks:
            n = next(iter(chunk.values())).shape[0]
            jobs.append((chunk, rng, side.autocast, side.embeddings.grad[start : start + n]))
            start += n
    for i, (chunk, rng, autocast, grad) in enumerate(jobs):
        with rng, (autocast() if autocast is not None else contextlib.nullcontext()):
            emb = encode(**chunk)
        if before_last is not None and i == len(jobs) - 1:
            before_last(emb)
        # (emb * grad).sum() backpropagated: d/dθ of the loss restricted to this chunk's rows.
        torch.autograd.backward(emb, grad_tensors=grad.to(emb.dtype))
