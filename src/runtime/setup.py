"""Resolve `trainer.precision: auto` and `threads`, apply the threads once, say what was chosen."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from src.runtime.hardware import (
    CpuInfo,
    available_cores,
    detect_cpu,
    local_processes,
    resolve_device,
    resolve_precision,
    resolve_threads,
)


@dataclass(frozen=True)
class Runtime:
    """What this process runs with: device, resolved precision, intra-op threads and the CPU behind them."""

    device: str
    requested_precision: str | None
    precision: str | None  # None: the precision plugin in trainer.plugins decides
    threads: int
    cores: int
    cpu: CpuInfo

    def params(self) -> dict[str, str]:
        """MLflow params/tags: resolved precision, threads and the CPU (what a table's numbers depend on)."""
        return {"runtime.device": self.device, "runtime.precision": str(self.precision),
                "runtime.threads": str(self.threads), "runtime.cores": str(self.cores),
                "runtime.cpu_model": self.cpu.model, "runtime.cpu_flags": self.cpu.flags()}

    def describe(self) -> str:
        """One line for the start of a run's log."""
        why = ("" if self.requested_precision != "auto" else
               f" (auto: {'native' if self.cpu.native_bf16 else 'no native'} bf16 on this CPU)"
               if self.device == "cpu" else " (auto)")
        precision = self.precision or "from trainer.plugins"
        return (f"runtime: {self.device} · precision {precision}{why} · {self.threads} threads of "
                f"{self.cores} usable cores · CPU {self.cpu.model} [{self.cpu.flags()}]")


def apply_threads(threads: int) -> None:
    """Set torch's intra-op threads and OMP_NUM_THREADS (inherited by DDP ranks; Lightning keeps it)."""
    import torch

    os.environ["OMP_NUM_THREADS"] = str(threads)
    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)


def resolve_runtime(trainer: Mapping[str, Any], threads: int | None) -> Runtime:
    """Resolve precision and threads from `trainer.*` and `threads` on this machine (applies nothing)."""
    import torch

    cuda = torch.cuda.is_available()
    device = resolve_device(str(trainer.get("accelerator", "cpu")), cuda)
    cpu = detect_cpu()
    cuda_bf16 = cuda and torch.cuda.is_bf16_supported()
    requested = trainer.get("precision", "auto")
    precision = resolve_precision(None if requested is None else str(requested), device, cpu.native_bf16, cuda_bf16)
    cores = available_cores()
    processes = local_processes(trainer.get("devices", 1), device, torch.cuda.device_count() if cuda else 0)
    return Runtime(device, requested, precision, resolve_threads(threads, cores, processes), cores, cpu)


def setup_runtime(trainer: Mapping[str, Any], threads: int | None, announce: bool = True) -> Runtime:
    """Resolve precision and threads, apply the threads once at start-up, print the choice (rank 0)."""
    runtime = resolve_runtime(trainer, threads)
    apply_threads(runtime.threads)
    if announce and int(os.environ.get("LOCAL_RANK", "0")) == 0:
        print(runtime.describe(), flush=True)
    return runtime
