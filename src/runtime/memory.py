"""Process memory on Linux: resident size, its high-water mark, and handing freed heap back to the OS.

A CPU training step allocates activations of ever-changing shapes (batches differ in length); glibc keeps
the freed blocks mapped in fragmented arenas, so the resident size creeps up step after step while live
memory stays flat (docs/hardware.md: Memory). `malloc_trim(0)` returns those pages; `MemoryCallback` calls it every
few steps (measured: bench/memory.py) and logs RSS so the creep is visible in MLflow.
"""

from __future__ import annotations

import ctypes
import ctypes.util
from functools import cache
from typing import Any

from lightning.pytorch import Callback, LightningModule, Trainer


def proc_status_mib(key: str) -> float | None:
    """A `VmRSS` / `VmHWM` line of /proc/self/status in MiB (None where there is no /proc)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


@cache
def _libc() -> Any:
    """glibc, when this process runs on it (musl, macOS and Windows have no malloc_trim)."""
    name = ctypes.util.find_library("c")
    try:
        lib = ctypes.CDLL(name) if name else None
    except OSError:
        return None
    return lib if lib is not None and hasattr(lib, "malloc_trim") else None


def malloc_trim() -> bool:
    """Return free heap pages of every glibc arena to the OS; False where unavailable."""
    lib = _libc()
    return bool(lib.malloc_trim(0)) if lib is not None else False


class MemoryCallback(Callback):
    """Trims the heap every `trim_every_n_steps` optimizer steps; logs RSS and its peak on logging steps."""

    def __init__(self, trim_every_n_steps: int | None = 10, log_rss: bool = True) -> None:
        super().__init__()
        self.trim_every_n_steps = trim_every_n_steps
        self.log_rss = log_rss

    def on_train_batch_end(self, trainer: Trainer, module: LightningModule, *args: Any) -> None:
        """Trim on the configured steps (after the optimizer step: activations and grads are freed)."""
        step = trainer.global_step
        if self.trim_every_n_steps and step % self.trim_every_n_steps == 0:
            malloc_trim()
        if self.log_rss and step % max(1, trainer.log_every_n_steps) == 0:
            rss, peak = proc_status_mib("VmRSS"), proc_status_mib("VmHWM")
            if rss is not None and peak is not None:
                module.log_dict({"train/rss_mib": rss, "train/peak_rss_mib": peak}, on_step=True, on_epoch=False)
