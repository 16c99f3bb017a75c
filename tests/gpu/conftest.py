"""Fixtures of the gpu tests: a tiny BERT, float32 matrix products without TF32."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from src.model.weights.tiny import build_tiny_model
from tests.model.test_gradcache import NEGATIVES, PASSAGES, QUERIES


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The GradCache tests' tiny BERT (dropout 0.1), built for this module."""
    return build_tiny_model(QUERIES + PASSAGES + NEGATIVES, tmp_path_factory.mktemp("tiny") / "m", vocab_size=200)


@pytest.fixture
def exact_fp32() -> Iterator[None]:
    """Full float32 matmuls (no TF32), so CUDA and CPU results differ only by summation order."""
    before = torch.backends.cuda.matmul.allow_tf32, torch.get_float32_matmul_precision()
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.set_float32_matmul_precision("highest")
    yield
    torch.backends.cuda.matmul.allow_tf32 = before[0]
    torch.set_float32_matmul_precision(before[1])
