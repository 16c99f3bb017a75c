"""FAISS indexes for inner-product search: exact (flat), IVF and HNSW, built shard by shard.

Embeddings are L2-normalised, so inner product = cosine. `eval.index` picks the kind:

- `flat`: exact `IndexFlatIP` (the default; every query scans every vector);
- `ivf`: `IVF{nlist},Flat`, k-means trained on a sample, `nprobe` lists scanned per query;
- `hnsw`: `HNSW{m},Flat` graph, `efSearch` candidates kept per query (`efConstruction` while building).

The flat and IVF indexes move to the GPUs when faiss-gpu finds one (`faiss.get_num_gpus() > 0`) and the
searches ask for at most GPU_MAX_K neighbours (`on_gpu`); FAISS has no GPU HNSW, so that one stays on the CPU.
This is the project's one FAISS path: the corpus kinds (retrieval.py) and the LAReQA TREC runs
(artifacts/trec.py) both build and search through it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import faiss
import numpy as np

from src.core.specs import IndexSpec

# FAISS GPU search selects at most this many neighbours per query (2048 on recent CUDA builds, 1024 on older).
GPU_MAX_K = 1024


def gpu_available() -> bool:
    """True when this FAISS build has GPU support and sees at least one GPU."""
    return hasattr(faiss, "get_num_gpus") and faiss.get_num_gpus() > 0


def on_gpu(spec: IndexSpec, k: int | None = None) -> bool:
    """Whether an index of `spec` searched for up to `k` neighbours (None: not known) goes to the GPUs.

    Asked for, a kind FAISS has on the GPU (not HNSW), a GPU seen, and k within the GPU's selection limit:
    above GPU_MAX_K the GPU search fails, so such an index stays on the CPU.
    """
    return spec.use_gpu and spec.kind != "hnsw" and gpu_available() and (k is None or k <= GPU_MAX_K)


def _as_float32(x: np.ndarray) -> np.ndarray:
    """C-contiguous float32, the only layout FAISS accepts (float16 shards are widened here)."""
    return np.ascontiguousarray(x, dtype=np.float32)


def sample_rows(shards: Iterable[np.ndarray], n_total: int, size: int, seed: int = 0) -> np.ndarray:
    """A uniform sample of `size` rows (all rows when there are fewer) drawn across shards in one pass."""
    rng = np.random.default_rng(seed)
    picked = np.sort(rng.choice(n_total, size=min(size, n_total), replace=False))
    out, offset = [], 0
    for shard in shards:
        lo, hi = np.searchsorted(picked, [offset, offset + len(shard)])
        if hi > lo:
            out.append(_as_float32(shard[picked[lo:hi] - offset]))
        offset += len(shard)
    return np.concatenate(out) if out else np.empty((0, 0), dtype=np.float32)


def build_index(spec: IndexSpec, dim: int, shards: Callable[[], Iterable[np.ndarray]] | np.ndarray,
                n_total: int | None = None, k: int | None = None) -> faiss.Index:
    """Build an inner-product index and add the vectors shard by shard (never one (n, d) copy in memory).

    `shards` is an (n, d) array or a zero-argument callable returning a fresh iterator over (rows, d)
    shards: IVF reads the vectors twice (training sample, then adding). `k`, the most neighbours any
    search will ask for, decides with the spec whether the index goes to the GPUs (`on_gpu`).
    """
    if isinstance(shards, np.ndarray):
        array = shards
        shards, n_total = (lambda: iter([array])), len(array)
    if n_total is None:
        n_total = sum(len(s) for s in shards())
    index = faiss.index_factory(dim, spec.factory_string(n_total), faiss.METRIC_INNER_PRODUCT)
    if spec.kind == "hnsw":
        faiss.downcast_index(index).hnsw.efConstruction = spec.ef_construction
    if spec.kind == "ivf":
        index.train(sample_rows(shards(), n_total, spec.train_rows_for(n_total), spec.seed))
    if on_gpu(spec, k):
        index = faiss.index_cpu_to_all_gpus(index)
    for shard in shards():
        index.add(_as_float32(shard))
    set_search_params(index, spec)
    return index


def set_search_params(index: faiss.Index, spec: IndexSpec) -> None:
    """Apply nprobe (IVF) or efSearch (HNSW) to a built index, CPU or GPU."""
    if spec.kind == "ivf":
        if gpu_available() and not isinstance(index, faiss.IndexIVF):
            faiss.GpuParameterSpace().set_index_parameter(index, "nprobe", spec.nprobe)
        else:
            faiss.extract_index_ivf(index).nprobe = spec.nprobe
    elif spec.kind == "hnsw":
        faiss.downcast_index(index).hnsw.efSearch = spec.ef_search


def search(index: faiss.Index, queries: np.ndarray, k: int, batch_size: int = 4096) -> tuple[np.ndarray, np.ndarray]:
    """Top-k (scores, ids) per query; ids are -1 where the index holds fewer than k reachable vectors."""
    q = _as_float32(queries)
    scores = np.empty((len(q), k), dtype=np.float32)
    ids = np.empty((len(q), k), dtype=np.int64)
    for start in range(0, len(q), batch_size):
        scores[start:start + batch_size], ids[start:start + batch_size] = index.search(q[start:start + batch_size], k)
    return scores, ids


def order_ties_by_id(scores: np.ndarray, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rows sorted by (-score, id): the grid's tie-break (metrics.py), where FAISS leaves equal scores unordered."""
    order = np.lexsort((ids, -scores), axis=-1)
    return np.take_along_axis(scores, order, axis=1), np.take_along_axis(ids, order, axis=1)


def exact_topk(queries: np.ndarray, shards: Iterable[np.ndarray], k: int) -> tuple[np.ndarray, np.ndarray]:
    """Exact top-k inner-product search streamed over shards, merging each shard's top-k.

    Equal scores inside the result are ordered by lower corpus row; which of several vectors tied exactly at
    the k-th score is kept is unspecified (as in FAISS).
    """
    q = _as_float32(queries)
    best_s = np.full((len(q), 0), -np.inf, dtype=np.float32)
    best_i = np.full((len(q), 0), -1, dtype=np.int64)
    offset = 0
    for shard in shards:
        s = q @ _as_float32(shard).T
        kk = min(k, s.shape[1])
        if kk < s.shape[1]:
            part = np.argpartition(-s, kk - 1, axis=1)[:, :kk]
        else:  # the whole shard fits in the top k
            part = np.broadcast_to(np.arange(s.shape[1]), s.shape)
        cand_s = np.concatenate([best_s, np.take_along_axis(s, part, axis=1)], axis=1)
        cand_i = np.concatenate([best_i, part + offset], axis=1)
        best_s, best_i = (a[:, :k] for a in order_ties_by_id(cand_s, cand_i))
        offset += s.shape[1]
    if best_s.shape[1] < k:  # fewer vectors than k: pad like FAISS does
        pad = k - best_s.shape[1]
        best_s = np.pad(best_s, ((0, 0), (0, pad)), constant_values=-np.inf)
        best_i = np.pad(best_i, ((0, 0), (0, pad)), constant_values=-1)
    return best_s, best_i


def recall_vs_exact(approx_ids: np.ndarray, exact_ids: np.ndarray, k: int = 100) -> float:
    """Mean fraction of each query's exact top-k ids that the approximate top-k also returned."""
    if approx_ids.shape[0] != exact_ids.shape[0]:
        raise ValueError(f"approx ({approx_ids.shape[0]}) and exact ({exact_ids.shape[0]}) query counts differ")
    hits = []
    for a, e in zip(approx_ids[:, :k], exact_ids[:, :k]):
        truth = e[e >= 0]
        if truth.size:
            hits.append(np.isin(truth, a[a >= 0]).mean())
    return float(np.mean(hits)) if hits else float("nan")
