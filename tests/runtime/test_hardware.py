"""Precision / thread resolvers: every branch as a pure function, then detection on this machine."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from src.runtime.hardware import (
    EXPLICIT_PRECISIONS,
    CpuInfo,
    available_cores,
    cgroup_cpu_limit,
    local_processes,
    resolve_device,
    resolve_precision,
    resolve_threads,
)

ROOT = Path(__file__).resolve().parents[2]


def cpu(isa: str = "AVX512", amx: bool = False, avx512_bf16: bool = False, onednn_bf16: bool = True) -> CpuInfo:
    return CpuInfo(model="test", isa=isa, amx=amx, avx512_bf16=avx512_bf16, onednn_bf16=onednn_bf16)


@pytest.mark.parametrize(
    ("info", "native"),
    [
        (cpu(amx=True, avx512_bf16=True), True),  # Sapphire Rapids and later
        (cpu(avx512_bf16=True), True),  # Cooper Lake, Zen 4
        (cpu(), False),  # Skylake/Cascade Lake: AVX-512 without bf16 units (oneDNN emulates)
        (cpu(isa="AVX2", onednn_bf16=False), False),  # Zen 2/3, most laptops
        (cpu(isa="AVX2", amx=True, avx512_bf16=True, onednn_bf16=False), False),  # AMX CPU capped to AVX2
        (cpu(amx=True, avx512_bf16=True, onednn_bf16=False), False),  # ONEDNN_MAX_CPU_ISA below AMX/BF16
        (cpu(isa="DEFAULT", onednn_bf16=False), False),  # no vector ISA (e.g. aarch64 build)
    ],
)
def test_native_bf16(info: CpuInfo, native: bool) -> None:
    assert info.native_bf16 is native


@pytest.mark.parametrize(
    ("device", "cpu_bf16", "cuda_bf16", "expected"),
    [
        ("cpu", True, False, "bf16-mixed"),
        ("cpu", False, False, "32-true"),
        ("cuda", False, True, "bf16-mixed"),  # Ampere and later
        ("cuda", True, False, "16-mixed"),  # Volta/Turing: no bf16, fp16 with a grad scaler
        ("mps", True, True, "32-true"),  # other accelerators: full precision unless asked
    ],
)
def test_auto_precision(device: str, cpu_bf16: bool, cuda_bf16: bool, expected: str) -> None:
    assert resolve_precision("auto", device, cpu_bf16, cuda_bf16) == expected


@pytest.mark.parametrize("explicit", EXPLICIT_PRECISIONS)
@pytest.mark.parametrize("device", ["cpu", "cuda"])
def test_explicit_precision_always_wins(explicit: str, device: str) -> None:
    for cpu_bf16 in (True, False):
        for cuda_bf16 in (True, False):
            assert resolve_precision(explicit, device, cpu_bf16, cuda_bf16) == explicit


def test_null_precision_is_left_to_lightning() -> None:
    assert resolve_precision(None, "cpu", True, True) is None  # trainer.plugins carries the precision


def test_unknown_precision_names_the_key() -> None:
    with pytest.raises(ValueError, match=r"^precision='fast': expected one of auto, 32-true"):
        resolve_precision("fast", "cpu", True, True)


@pytest.mark.parametrize(
    ("accelerator", "cuda", "expected"),
    [("cpu", True, "cpu"), ("gpu", False, "cuda"), ("cuda", True, "cuda"), ("auto", True, "cuda"),
     ("auto", False, "cpu"), ("mps", False, "mps"), ("AUTO", False, "cpu")],
)
def test_resolve_device(accelerator: str, cuda: bool, expected: str) -> None:
    assert resolve_device(accelerator, cuda) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [("max 100000", None), ("200000 100000", 2.0), ("150000 100000\n", 1.5), ("50000 100000", 0.5)],
)
def test_cgroup_v2(text: str, expected: float | None) -> None:
    assert cgroup_cpu_limit(text) == expected


def test_cgroup_v1() -> None:
    assert cgroup_cpu_limit(None, "-1\n", "100000\n") is None  # no quota
    assert cgroup_cpu_limit(None, "300000\n", "100000\n") == 3.0
    assert cgroup_cpu_limit(None, None, None) is None


def test_threads() -> None:
    assert resolve_threads(None, cores=8) == 8
    assert resolve_threads(None, cores=8, processes=2) == 4  # DDP ranks on one machine share its cores
    assert resolve_threads(None, cores=2, processes=4) == 1  # never below one
    assert resolve_threads(3, cores=2, processes=2) == 3  # explicit wins
    with pytest.raises(ValueError, match=r"threads=0: expected an integer >= 1"):
        resolve_threads(0, cores=2)


@pytest.mark.parametrize(
    ("devices", "device", "cuda_count", "expected"),
    [(1, "cpu", 0, 1), (2, "cpu", 0, 2), ("2", "cpu", 0, 2), ([0, 1, 3], "cuda", 4, 3), ("0,1", "cuda", 4, 2),
     ("auto", "cpu", 0, 1), ("auto", "cuda", 4, 4), (-1, "cuda", 2, 2)],
)
def test_local_processes(devices: object, device: str, cuda_count: int, expected: int) -> None:
    assert local_processes(devices, device, cuda_count) == expected


def test_available_cores_respects_affinity() -> None:
    if not hasattr(os, "sched_getaffinity"):
        pytest.skip("no CPU affinity on this OS")
    assert 1 <= available_cores() <= len(os.sched_getaffinity(0))


_PROBE = (
    "import json; from src.runtime import setup_runtime; "
    "r = setup_runtime({'accelerator': 'cpu', 'precision': 'auto', 'devices': 1}, None, announce=False); "
    "import torch; print(json.dumps({'precision': r.precision, 'threads': torch.get_num_threads(), "
    "'flags': r.cpu.flags(), 'omp': __import__('os').environ['OMP_NUM_THREADS']}))"
)


def _probe(env: dict[str, str]) -> dict:
    out = subprocess.run([sys.executable, "-c", _PROBE], cwd=ROOT, env={**os.environ, **env}, capture_output=True,
                         text=True, check=True, timeout=120)
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_detection_follows_what_torch_and_onednn_report() -> None:
    # Capping ATen and oneDNN to AVX2 is how an AVX2-only CPU looks to torch: auto must fall back to fp32 there.
    capped = _probe({"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2"})
    assert capped["precision"] == "32-true" and capped["flags"].startswith("AVX2")
    native = _probe({})
    import torch

    has_native = (torch.cpu._is_amx_tile_supported() or torch.cpu._is_avx512_bf16_supported()) and \
        torch.backends.cpu.get_cpu_capability() == "AVX512"
    assert native["precision"] == ("bf16-mixed" if has_native else "32-true")
    assert native["threads"] == available_cores() and native["omp"] == str(available_cores())
