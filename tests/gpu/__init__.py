"""Tests that need CUDA: `pytest -m gpu` (tools/gpu_check.sh runs them on a lent GPU machine); skipped elsewhere."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

requires_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device (tools/gpu_check.sh)")
GPU = [pytest.mark.gpu, requires_cuda]


def artifacts_dir(fallback: Path) -> Path:
    """Where a gpu test leaves a file for the check's report: $XLIR_GPU_ARTIFACTS (the check's $OUT), else fallback."""
    out = Path(os.environ.get("XLIR_GPU_ARTIFACTS") or fallback)
    out.mkdir(parents=True, exist_ok=True)
    return out
