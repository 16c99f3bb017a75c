"""Approximate-index benchmark on synthetic embeddings: recall@100 of IVF and HNSW against exact search.

    python -m bench.ann                         # 1M x 384, 1,000 queries -> bench/results/ann.json
    python -m bench.ann --n 20000 --out /tmp/ann.json

The vectors imitate sentence embeddings: unit vectors from an anisotropic Gaussian whose variance
falls off as a power law over the axes (see `sample_embeddings`); queries come from the same
distribution. For each index the smallest setting of the search knob (IVF
`nprobe`, HNSW `efSearch`) that reaches the target recall is reported with build time, search time
and index memory (FAISS's serialized size); peak RSS of the process is recorded too.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import time
from pathlib import Path
from typing import Any

import faiss
import numpy as np

from bench import common
from src.evaluation.index import IndexSpec, build_index, recall_vs_exact, search, set_search_params

RESULTS = Path(__file__).resolve().parent / "results" / "ann.json"


def spectrum(dim: int, decay: float) -> np.ndarray:
    """Per-axis standard deviations with a power-law variance spectrum, variance_i ~ i^-decay."""
    return np.arange(1, dim + 1, dtype=np.float32) ** np.float32(-decay / 2)


def sample_embeddings(n: int, dim: int, rng: np.random.Generator, decay: float = 1.0) -> np.ndarray:
    """n unit vectors normalise(z * spectrum), z standard normal; generated in blocks of 100k rows.

    Sentence-embedding spaces are anisotropic: a few directions carry most of the variance. A power-law
    spectrum (decay 1 over 384 axes = effective dimension ~26) imitates that without planting clusters an
    IVF index could trivially recover.
    """
    scale = spectrum(dim, decay)
    out = np.empty((n, dim), dtype=np.float32)
    for start in range(0, n, 100_000):
        block = rng.standard_normal((min(100_000, n - start), dim), dtype=np.float32) * scale
        out[start:start + len(block)] = block / np.linalg.norm(block, axis=1, keepdims=True)
    return out


def _index_bytes(index: faiss.Index) -> int:
    """Memory the index needs, measured as its serialized size."""
    return int(faiss.serialize_index(index).nbytes)


def sweep(spec: IndexSpec, data: np.ndarray, queries: np.ndarray, exact: np.ndarray, knob: str,
          values: list[int], k: int, target: float) -> dict[str, Any]:
    """Build once, then search with increasing knob values until recall@k reaches the target."""
    t0 = time.perf_counter()
    index = build_index(spec, data.shape[1], data)
    build_s = time.perf_counter() - t0
    rows = []
    for value in values:
        tuned = IndexSpec(**{**spec.__dict__, knob: value})
        set_search_params(index, tuned)
        t0 = time.perf_counter()
        _, ids = search(index, queries, k)
        search_s = time.perf_counter() - t0
        recall = recall_vs_exact(ids, exact, k)
        rows.append({knob: value, f"recall@{k}": round(recall, 4), "search_s": round(search_s, 3),
                     "ms_per_query": round(1000 * search_s / len(queries), 3)})
        print(f"  {spec.kind} {knob}={value}: recall@{k}={recall:.4f} search {search_s:.2f}s", flush=True)
        if recall >= target:
            break
    chosen = next((r for r in rows if r[f"recall@{k}"] >= target), rows[-1])
    return {"factory": spec.factory_string(len(data)), "build_s": round(build_s, 2),
            "index_bytes": _index_bytes(index), "chosen": chosen, "sweep": rows,
            "reached_target": chosen[f"recall@{k}"] >= target}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Generate data, run exact search for ground truth, sweep IVF and HNSW, write the JSON results."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=1_000_000)
    p.add_argument("--dim", type=int, default=384)
    p.add_argument("--queries", type=int, default=1000)
    p.add_argument("--decay", type=float, default=1.0, help="power-law exponent of the variance spectrum")
    p.add_argument("--k", type=int, default=100)
    p.add_argument("--target", type=float, default=0.95)
    p.add_argument("--nlist", type=int, default=None, help="IVF lists (default 4*sqrt(n))")
    p.add_argument("--hnsw-m", type=int, default=None, help="default: eval.hnsw_m of conf/config.yaml")
    p.add_argument("--ef-construction", type=int, default=None, help="default: eval.ef_construction of the config")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--indexes", default="ivf,hnsw", help="comma-separated subset of ivf,hnsw to benchmark")
    p.add_argument("--out", type=Path, default=RESULTS)
    args = p.parse_args(argv)

    t0 = time.perf_counter()
    rng = np.random.default_rng(args.seed)
    data = sample_embeddings(args.n, args.dim, rng, args.decay)
    queries = sample_embeddings(args.queries, args.dim, rng, args.decay)  # same distribution, not in the data
    print(f"data {data.shape} generated in {time.perf_counter() - t0:.1f}s", flush=True)

    defaults = common.compose().eval  # the index settings users get; flags override single knobs
    flat = IndexSpec.from_config(defaults, kind="flat", use_gpu=False)
    t0 = time.perf_counter()
    exact_index = build_index(flat, args.dim, data)
    flat_build = time.perf_counter() - t0
    t0 = time.perf_counter()
    _, exact = search(exact_index, queries, args.k)
    flat_search = time.perf_counter() - t0
    flat_bytes = _index_bytes(exact_index)
    del exact_index
    print(f"exact: build {flat_build:.2f}s search {flat_search:.2f}s", flush=True)

    ivf = IndexSpec.from_config(defaults, seed=args.seed, kind="ivf", nlist=args.nlist, use_gpu=False)
    hnsw = IndexSpec.from_config(defaults, kind="hnsw", use_gpu=False,
                                 hnsw_m=args.hnsw_m or defaults.hnsw_m,
                                 ef_construction=args.ef_construction or defaults.ef_construction)
    result = {
        "n": args.n, "dim": args.dim, "queries": args.queries, "spectrum_decay": args.decay, "k": args.k,
        "target_recall": args.target, "threads": faiss.omp_get_max_threads(), "faiss": faiss.__version__,
        "machine": platform.processor() or platform.machine(),
        "data_bytes": int(data.nbytes),
        "flat": {"factory": "Flat", "build_s": round(flat_build, 2), "search_s": round(flat_search, 3),
                 "ms_per_query": round(1000 * flat_search / args.queries, 3), "index_bytes": flat_bytes},
    }
    chosen = set(args.indexes.split(","))
    if "ivf" in chosen:
        result["ivf"] = sweep(ivf, data, queries, exact, "nprobe", [16, 32, 64, 128, 256, 512], args.k, args.target)
    if "hnsw" in chosen:
        result["hnsw"] = sweep(hnsw, data, queries, exact, "ef_search", [128, 256, 384, 512, 768, 1024, 1536],
                               args.k, args.target)
    result["peak_rss_bytes"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: result[k] for k in ("flat", "ivf", "hnsw") if k in result}, indent=2))
    print(f"written to {args.out}")
    return result


if __name__ == "__main__":
    main()
