"""Alternating A/B runner: warm-up, then repetitions that interleave the arms in one process.

Interleaving (A, B, A, B, ...) rather than (A, A, ..., B, B, ...) means slow drifts of the machine — other
processes, thermal state, page cache — hit every arm alike, so the ratio of medians stays meaningful on a
shared, noisy machine even when the absolute times are not.
"""

from __future__ import annotations

import functools
import gc
import json
import mmap
import platform
import statistics
import subprocess
import time
import tracemalloc
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

RESULTS_DIR = Path(__file__).resolve().parent / "results"


def _proc_status_kib(key: str) -> int | None:
    """A `VmRSS`/`VmHWM` line of /proc/self/status in KiB (None where /proc is missing, e.g. macOS)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def reset_rss_peak() -> bool:
    """Reset the kernel's RSS high-water mark of this process (Linux `clear_refs` 5); False if unsupported."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


_PROBE_MIB = 64


@functools.cache
def rss_peak_is_tracked() -> bool:
    """Whether this kernel's reset high-water mark sees a freed 64 MiB buffer (once per process).

    Some sandboxes accept `clear_refs` but account the high-water mark lazily: a buffer freed before
    `VmHWM` is read can go half unseen (a CI machine reported +34 MiB for a 76 MiB array). There the
    harness reports no RSS peak rather than a wrong one.
    """
    if not reset_rss_peak():
        return False
    rss0 = _proc_status_kib("VmRSS")
    # A fresh anonymous mapping, not malloc: a long-lived process's free heap could serve the buffer from pages
    # that are already resident, and no kernel would see a rise.
    with mmap.mmap(-1, _PROBE_MIB << 20) as probe:
        for offset in range(0, len(probe), mmap.PAGESIZE):
            probe[offset] = 1
    rise = _rss_rise_mib(rss0)
    return rise is not None and rise >= 0.9 * _PROBE_MIB


def _rss_rise_mib(rss0: int | None) -> float | None:
    """How far the RSS high-water mark (since the last reset) is above `rss0` KiB, in MiB; None where unknown."""
    hwm = _proc_status_kib("VmHWM")
    return (hwm - rss0) / 1024 if hwm is not None and rss0 is not None else None


@dataclass
class Timed:
    """An arm's own measurement: return it from an arm to replace the wall time of the whole call.

    For arms with set-up that is not what is compared (e.g. building a Trainer), the arm times the part that
    is (e.g. the median training step) and hands it back with its result.
    """

    seconds: float
    result: Any = None


@dataclass
class Sample:
    """One timed call of one arm: wall seconds and how far memory rose above its level at the start."""

    seconds: float
    rss_peak_mib: float | None  # RSS high-water minus RSS at the start: torch, numpy and Python together
    py_peak_mib: float | None  # tracemalloc peak (Python objects + numpy buffers), when traced
    py_retained_mib: float | None = None  # traced memory still held when fn returned: its result's size


def run_once(fn: Callable[[], Any], trace_python: bool = False) -> tuple[Sample, Any]:
    """Call fn once, timing it and recording its peak memory; returns the sample and fn's result."""
    gc.collect()
    rss0 = _proc_status_kib("VmRSS")
    can_reset = rss_peak_is_tracked() and reset_rss_peak()
    if trace_python:
        tracemalloc.start()
    t0 = time.perf_counter()
    try:
        result = fn()
        seconds = time.perf_counter() - t0
    finally:
        py_now, py_peak = tracemalloc.get_traced_memory() if trace_python else (None, None)
        if trace_python:
            tracemalloc.stop()
    if isinstance(result, Timed):
        seconds, result = result.seconds, result.result
    rss_peak = _rss_rise_mib(rss0) if can_reset else None
    mib = (lambda b: None if b is None else b / 2**20)
    return Sample(seconds, rss_peak, mib(py_peak), mib(py_now)), result


@dataclass
class ArmStats:
    """Summary of one arm over the timed repetitions."""

    name: str
    seconds: list[float]
    median_s: float
    rss_peak_mib: float | None  # max over repetitions
    py_peak_mib: float | None


@dataclass
class ABResult:
    """Medians per arm, and each arm's ratio to the baseline: median ratio and min-max over repetitions."""

    arms: dict[str, ArmStats]
    baseline: str
    ratios: dict[str, dict[str, float]] = field(default_factory=dict)
    last_results: dict[str, Any] = field(default_factory=dict, repr=False)

    def to_json(self) -> dict[str, Any]:
        """JSON-serialisable form (drops the arms' return values)."""
        return {"baseline": self.baseline, "arms": {k: asdict(v) for k, v in self.arms.items()},
                "ratios": self.ratios}


def paired_ratios(a: Sequence[float], b: Sequence[float]) -> dict[str, float]:
    """Ratio of medians plus the min and max of the per-repetition ratios a_i / b_i (paired by repetition)."""
    if len(a) != len(b) or not a:
        raise ValueError(f"need equally many non-zero repetitions per arm, got {len(a)} and {len(b)}")
    per_rep = [x / y for x, y in zip(a, b)]
    return {"median": statistics.median(a) / statistics.median(b), "min": min(per_rep), "max": max(per_rep)}


def _max_or_none(values: Sequence[float | None]) -> float | None:
    """Largest value, ignoring Nones; None when there is none."""
    present = [v for v in values if v is not None]
    return max(present) if present else None


def alternate(
    arms: Mapping[str, Callable[[], Any]],
    baseline: str,
    repetitions: int = 3,
    warmup: int = 1,
    trace_python: bool = False,
    log: Callable[[str], None] | None = print,
) -> ABResult:
    """Warm every arm up, then run `repetitions` rounds calling each arm once per round, in rotating order.

    The order rotates per round (A B, then B A, ...) so neither arm always runs right after the other.
    """
    if baseline not in arms:
        raise ValueError(f"baseline {baseline!r} is not one of the arms {sorted(arms)}")
    if repetitions < 1 or warmup < 0:
        raise ValueError(f"repetitions must be >= 1 and warmup >= 0, got {repetitions} and {warmup}")
    names = list(arms)
    for _ in range(warmup):
        for name in names:
            arms[name]()
    samples: dict[str, list[Sample]] = {n: [] for n in names}
    last: dict[str, Any] = {}
    for rep in range(repetitions):
        shift = rep % len(names)
        for name in names[shift:] + names[:shift]:
            sample, last[name] = run_once(arms[name], trace_python)
            samples[name].append(sample)
            if log:
                log(f"  rep {rep + 1}/{repetitions} {name:<28} {sample.seconds:9.3f} s")
    stats = {
        n: ArmStats(
            name=n,
            seconds=[s.seconds for s in ss],
            median_s=statistics.median(s.seconds for s in ss),
            rss_peak_mib=_max_or_none([s.rss_peak_mib for s in ss]),
            py_peak_mib=_max_or_none([s.py_peak_mib for s in ss]),
        )
        for n, ss in samples.items()
    }
    base = stats[baseline].seconds
    ratios = {n: paired_ratios(st.seconds, base) for n, st in stats.items() if n != baseline}
    return ABResult(arms=stats, baseline=baseline, ratios=ratios, last_results=last)


def machine_info() -> dict[str, Any]:
    """Which machine and software produced a result: CPU model, cores, load, library versions."""
    import os

    info: dict[str, Any] = {
        "date_utc": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "load_avg_1_5_15": [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None,
    }
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
        info["cpu_model"] = next((ln.split(":", 1)[1].strip() for ln in out.splitlines()
                                  if ln.startswith("Model name")), platform.processor())
    except OSError:
        info["cpu_model"] = platform.processor()
    for mod in ("torch", "transformers", "lightning", "numpy", "sentence_transformers"):
        try:
            info[mod] = __import__(mod).__version__
        except ImportError:
            info[mod] = None
    import torch

    from src.runtime.hardware import detect_cpu

    info["torch_threads"] = torch.get_num_threads()
    info["cpu_flags"] = detect_cpu().flags()  # what torch/oneDNN see (an --cap-isa run shows the cap)
    return info


def write_result(name: str, payload: Mapping[str, Any], results_dir: Path = RESULTS_DIR) -> Path:
    """Write one comparison's results as `<results_dir>/<name>.json`, stamped with the machine."""
    results_dir.mkdir(parents=True, exist_ok=True)
    path = results_dir / f"{name}.json"
    path.write_text(json.dumps({"comparison": name, "machine": machine_info(), **payload}, indent=2,
                               default=float) + "\n")
    return path
