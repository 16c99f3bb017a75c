"""The grid driver: encode each evaluation set once (with progress), score its kind's settings, time both.

Any grid kind (src/evaluation/kinds.py: LAReQA question -> sentence, translation retrieval) goes through the
same steps. No Lightning here: src/evaluate.py calls it directly, the callbacks (src/evaluation/callback.py)
call it from their hooks, and the corpus kinds (src/evaluation/retrieval.py) share its precision mapping.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from rich.console import Console
from rich.table import Table

from src.core import keys
from src.evaluation.debias import debias_embeddings
from src.evaluation.grid import Embeddings, GridResult
from src.evaluation.kinds import kind_of
from src.evaluation.progress import progress

AUTOCAST = {"bf16-mixed": torch.bfloat16, "16-mixed": torch.float16, "bf16-true": torch.bfloat16}


def autocast_dtype(precision: str | int | None) -> torch.dtype | None:
    """The autocast dtype matching a Lightning precision string (None for full precision)."""
    return AUTOCAST.get(str(precision))


def encode_with_progress(
    encoder: Any, ds: Any, batch_size: int, candidate_text: str, dtype: torch.dtype | None,
    console: Console | None = None,
) -> Embeddings:
    """Encode one evaluation set once, with progress and ETA over all its texts (bar or log lines)."""
    kind = kind_of(ds)
    with progress(f"encoding {ds.name}", kind.num_texts(ds), console) as advance:

        def encode(texts: Sequence[str], side: str, ctx: Sequence[str] | None) -> Any:
            return encoder.encode(texts, side, ctx, batch_size=batch_size, autocast_dtype=dtype, on_batch=advance)

        return kind.encode(ds, encode, candidate_text)


def evaluate_sets(
    encoder: Any,
    datasets: Mapping[str, Any],
    batch_size: int,
    candidate_text: str = "sentence",
    precision: str | None = None,
    console: Console | None = None,
    debias: Sequence[str] = (),
    debias_k: int = 1,
) -> tuple[dict[str, float], dict[str, GridResult], dict[str, Embeddings]]:
    """Encode and score every evaluation set, and each `debias` method of it as its own set (keys.debiased_set);

    returns flat metrics, per-query results and embeddings keyed by set name."""
    metrics: dict[str, float] = {}
    results: dict[str, GridResult] = {}
    embeddings: dict[str, Embeddings] = {}
    for name, ds in datasets.items():
        t0 = time.perf_counter()
        emb = encode_with_progress(encoder, ds, batch_size, candidate_text, autocast_dtype(precision), console)
        t1 = time.perf_counter()
        res = kind_of(ds).score(ds, emb)
        t2 = time.perf_counter()
        results[name], embeddings[name] = res, emb
        metrics.update(res.summary())
        metrics[keys.time_key(name, "encode")] = t1 - t0
        metrics[keys.time_key(name, "score")] = t2 - t1
        for method in debias:  # free: the same encoding, transformed and scored again
            t0 = time.perf_counter()
            variant = keys.debiased_set(name, method, debias_k)
            embeddings[variant] = debias_embeddings(emb, method, debias_k)  # type: ignore[arg-type]
            results[variant] = kind_of(ds).score(ds, embeddings[variant])
            results[variant].dataset = variant
            metrics.update(results[variant].summary())
            metrics[keys.time_key(variant, "score")] = time.perf_counter() - t0
    return metrics, results, embeddings


def summary_table(metrics: Mapping[str, float], names: Sequence[str]) -> Table:
    """Rich table: one row per evaluation set and setting, macro-averaged metrics as columns."""
    table = Table(title="zero-shot retrieval")
    table.add_column("set / setting")
    for name in keys.GRID_METRICS:
        table.add_column(keys.logged_name(name), justify="right")
    table.add_column("rank dist.", justify="right")
    for name, setting, values, bias in keys.summary_rows(metrics, names, skip_absent=True):
        table.add_row(f"{name} / {setting}", *[f"{v:.4f}" for v in values], "" if bias is None else f"{bias:.1f}")
    return table
