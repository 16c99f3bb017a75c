"""FAISS on the GPU: flat and IVF indexes equal exact search; an index goes to the GPU only for k <= 1024.

`make gpu-bundle` carries faiss-cpu (faiss-gpu-cu12 needs CUDA 12's cuBLAS, hundreds of MB over the carry
limit), so on the lent machine these tests skip unless a faiss with GPU support is installed there.
"""

from __future__ import annotations

import numpy as np
import pytest

from tests.gpu import GPU

pytest.importorskip("faiss")  # before the project modules below, which import it

from src.evaluation.index import (
    GPU_MAX_K,
    IndexSpec,
    build_index,
    exact_topk,
    gpu_available,
    order_ties_by_id,
    recall_vs_exact,
    search,
)

pytestmark = [*GPU, pytest.mark.skipif(not gpu_available(), reason="this faiss has no GPU support (faiss-cpu)")]


def unit_rows(n: int, dim: int, seed: int) -> np.ndarray:
    """Random unit vectors (inner product = cosine, as the encoders produce)."""
    x = np.random.default_rng(seed).standard_normal((n, dim)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def spec(kind: str, **overrides: object) -> IndexSpec:
    """An index spec with the GPU on and the config's other defaults irrelevant to these tests."""
    fields = {"kind": kind, "nlist": None, "nprobe": 1, "hnsw_m": 32, "ef_construction": 128, "ef_search": 768,
              "train_size": None, "use_gpu": True}
    return IndexSpec(**{**fields, **overrides})


@pytest.mark.parametrize("kind", ["flat", "ivf"])
def test_gpu_index_equals_exact_search(kind: str) -> None:
    """Flat, and IVF probing every list, on the GPU return the exact top 100."""
    corpus, queries = unit_rows(20_000, 64, 0), unit_rows(300, 64, 1)
    overrides = {"nlist": 64, "nprobe": 64} if kind == "ivf" else {}
    index = build_index(spec(kind, **overrides), 64, corpus)
    assert "Gpu" in type(index).__name__  # really on the GPU
    _, ids = search(index, queries, 100)
    _, exact = exact_topk(queries, [corpus], 100)
    assert recall_vs_exact(ids, exact, 100) >= 0.999  # GEMM rounding may swap near-equal scores at rank 100


@pytest.mark.parametrize("k", [GPU_MAX_K, GPU_MAX_K + 1])
def test_topk_on_gpu_only_up_to_the_selection_limit(k: int) -> None:
    """k <= 1024 searches on the GPU, above it on the CPU (the TREC runs' exact index); both match exact search."""
    corpus, queries = unit_rows(3_000, 32, 2), unit_rows(50, 32, 3)
    index = build_index(IndexSpec.exact(), 32, corpus, k=k)
    assert ("Gpu" in type(index).__name__) == (k <= GPU_MAX_K)
    scores, ids = order_ties_by_id(*search(index, queries, k))
    _, exact = exact_topk(queries, [corpus], k)
    assert ids.shape == (50, k) and recall_vs_exact(ids, exact, k) >= 0.999
    assert (np.diff(scores, axis=1) <= 1e-6).all()  # best first
