"""What this machine runs fast: CPU capabilities, `trainer.precision: auto`, intra-op threads.

bf16 autocast is a win only where the CPU computes bf16 natively (AMX tiles or AVX512-BF16): elsewhere
(AVX2-only servers, many laptops) oneDNN emulates it and a training step is 5-17x slower than fp32
(docs/hardware.md). The resolvers are pure functions of what was detected, so every branch
is tested without the hardware; `detect_cpu` reads what torch and oneDNN report, never a model-name list.
"""

from __future__ import annotations

import math
import os
import platform
from dataclasses import dataclass
from pathlib import Path

AUTO = "auto"
# Lightning's precision values that this project passes through unchanged when given explicitly.
EXPLICIT_PRECISIONS = ("32-true", "32", "bf16-mixed", "16-mixed", "bf16-true", "16-true", "64-true", "64")
PRECISIONS = (AUTO, *EXPLICIT_PRECISIONS)
CUDA_ACCELERATORS = ("gpu", "cuda")


@dataclass(frozen=True)
class CpuInfo:
    """The CPU as torch sees it: model name, ATen's dispatch ISA and the bf16-relevant features."""

    model: str
    isa: str  # torch.backends.cpu.get_cpu_capability(): AVX512, AVX2, DEFAULT, ... (ATEN_CPU_CAPABILITY caps it)
    amx: bool  # AMX tiles (Sapphire Rapids and later)
    avx512_bf16: bool
    onednn_bf16: bool  # oneDNN runs bf16 kernels here (false under ONEDNN_MAX_CPU_ISA=AVX2 and on AVX2-only CPUs)

    @property
    def native_bf16(self) -> bool:
        """bf16 matrix units in hardware and both ATen and oneDNN allowed to use them."""
        return (self.amx or self.avx512_bf16) and self.onednn_bf16 and self.isa.startswith("AVX512")

    def flags(self) -> str:
        """Compact capability string for logs and tags, e.g. `AVX512 amx avx512_bf16 onednn_bf16`."""
        names = [n for n in ("amx", "avx512_bf16", "onednn_bf16") if getattr(self, n)]
        return " ".join([self.isa, *names])


def detect_cpu() -> CpuInfo:
    """Read the CPU's capabilities from torch (cpuinfo) and oneDNN."""
    import torch

    cpu = getattr(torch, "cpu", None)

    def has(name: str) -> bool:
        fn = getattr(cpu, name, None)
        return bool(fn()) if callable(fn) else False

    try:
        onednn = bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        onednn = False
    return CpuInfo(model=cpu_model_name(), isa=str(torch.backends.cpu.get_cpu_capability()),
                   amx=has("_is_amx_tile_supported"), avx512_bf16=has("_is_avx512_bf16_supported"),
                   onednn_bf16=onednn)


def cpu_model_name() -> str:
    """`model name` from /proc/cpuinfo (Linux), else what platform reports."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def resolve_device(accelerator: str, cuda_available: bool) -> str:
    """`cuda` or `cpu`: what Lightning's accelerator setting runs on here (`auto` takes CUDA when present)."""
    acc = str(accelerator).lower()
    if acc in CUDA_ACCELERATORS or (acc == AUTO and cuda_available):
        return "cuda"
    if acc in ("cpu", AUTO):
        return "cpu"
    return acc  # mps, tpu, ...: passed through, resolved to full precision below


def resolve_precision(requested: str | None, device: str, cpu_native_bf16: bool, cuda_bf16: bool) -> str | None:
    """An explicit precision wins; `auto` is bf16-mixed where bf16 is native, else 32-true (CPU) / 16-mixed (CUDA).

    `None` stays None: Lightning then takes the precision from `trainer.plugins` (e.g. an explicit MixedPrecision).
    """
    if requested is None:
        return None
    requested = str(requested)
    if requested not in PRECISIONS:
        raise ValueError(f"precision={requested!r}: expected one of {', '.join(PRECISIONS)}")
    if requested != AUTO:
        return requested
    if device == "cuda":
        return "bf16-mixed" if cuda_bf16 else "16-mixed"
    if device == "cpu":
        return "bf16-mixed" if cpu_native_bf16 else "32-true"
    return "32-true"


def cgroup_cpu_limit(cpu_max: str | None = None, cfs_quota: str | None = None, cfs_period: str | None = None) -> float | None:
    """CPUs allowed by a cgroup quota: v2 `cpu.max` ("200000 100000" / "max 100000") or v1 quota/period."""
    if cpu_max is not None:
        quota, _, period = cpu_max.strip().partition(" ")
        if quota != "max" and period:
            return int(quota) / int(period)
        return None
    if cfs_quota is not None and cfs_period is not None and int(cfs_quota) > 0:
        return int(cfs_quota) / int(cfs_period)
    return None


def _read(path: str) -> str | None:
    """A small file's text, or None when it is absent or unreadable."""
    try:
        return Path(path).read_text()
    except OSError:
        return None


def available_cores() -> int:
    """Cores this process may use: its CPU affinity, capped by a cgroup quota (containers, SLURM, systemd)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        cores = os.cpu_count() or 1
    limit = cgroup_cpu_limit(_read("/sys/fs/cgroup/cpu.max"))
    if limit is None:
        limit = cgroup_cpu_limit(None, _read("/sys/fs/cgroup/cpu/cpu.cfs_quota_us"),
                                 _read("/sys/fs/cgroup/cpu/cpu.cfs_period_us"))
    if limit is not None:
        cores = min(cores, max(1, math.ceil(limit)))
    return max(1, cores)


def resolve_threads(requested: int | None, cores: int, processes: int = 1) -> int:
    """Intra-op threads per process: the explicit value, else the usable cores shared by the local processes."""
    if requested is not None:
        if requested < 1:
            raise ValueError(f"threads={requested!r}: expected an integer >= 1, or null for the usable cores")
        return requested
    return max(1, cores // max(1, processes))


def local_processes(devices: object, device: str, cuda_count: int) -> int:
    """How many processes of one job share this machine: `trainer.devices` (an int, a list, or `auto`)."""
    if isinstance(devices, int) and devices > 0:
        return devices
    if isinstance(devices, (list, tuple)):
        return max(1, len(devices))
    if isinstance(devices, str) and devices.isdigit():
        return max(1, int(devices))
    if isinstance(devices, str) and "," in devices:
        return len([d for d in devices.split(",") if d.strip()])
    return max(1, cuda_count) if device == "cuda" else 1  # `auto` / -1: every GPU, or one CPU process
