"""Evaluation of corpus kinds (beir, miracl): encode queries, encode the corpus, search an index, score.

Metric keys (src/core/keys.py): `{dataset}/mono/{metric}` (ir_measures names through
`keys.logged_name`: `nDCG@10` -> `nDCG10`); MIRACL adds one row per language `{dataset}/mono/{metric}/{lang}`,
and the unsuffixed key is the macro mean over languages. An approximate index also reports
`{dataset}/index/recall100_vs_exact`: the mean fraction of the exact top 100 it returned, on a sample of
queries.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from lightning.pytorch import Trainer

from src.core import keys
from src.data.beir import RetrievalSet
from src.evaluation.artifacts.trec import write_run
from src.evaluation.corpus import encode_corpus
from src.evaluation.index import IndexSpec, build_index, exact_topk, recall_vs_exact, search
from src.evaluation.metrics import mean_ignoring_missing, parse_measure, topk_metrics

EXACT_CHECK_K = 100


@dataclass
class CorpusEvalSettings:
    """Everything the corpus evaluation reads from `eval.*` (built by `settings_from_config`; no defaults of its own)."""

    measures: Sequence[str]
    index: IndexSpec
    batch_size: int
    shard_size: int
    embedding_dtype: str
    cache_dir: str
    exact_check_queries: int
    autocast_dtype: Any
    seed: int

    @property
    def depth(self) -> int:
        """How many passages to retrieve per query: the largest cut-off."""
        return max(parse_measure(m)[1] for m in self.measures)


@dataclass
class RunResult:
    """One retrieval run (one corpus): the top-k rows, their scores and per-query metric values."""

    data: RetrievalSet
    ids: np.ndarray
    scores: np.ndarray
    per_query: dict[str, np.ndarray]
    recall_vs_exact: float | None
    encode_s: float
    search_s: float

    def write_trec(self, path: Path, tag: str = "xlir") -> Path:
        """The run in TREC format (artifacts/trec.py), every retrieved passage (ids -1: fewer found)."""
        return write_run(path, self.data.query_ids, self.data.doc_ids(self.ids), self.scores, tag,
                         keep=self.ids >= 0)


def evaluate_corpus(data: RetrievalSet, encoder: Any, trainer: Trainer, settings: CorpusEvalSettings,
                    model_fp: str | None = None) -> RunResult | None:
    """Encode (cached, sharded, on every rank), then on rank 0 search and score; other ranks get None."""
    t0 = time.perf_counter()
    store = encode_corpus(encoder, data.corpus, trainer, settings.cache_dir, settings.batch_size,
                          settings.shard_size, settings.embedding_dtype, model_fp)
    if not trainer.is_global_zero:
        return None
    queries = encoder.encode(data.queries, "query", batch_size=settings.batch_size,
                             autocast_dtype=settings.autocast_dtype)
    t1 = time.perf_counter()
    # The deepest search on this index decides whether it fits on the GPU (index.on_gpu).
    index = build_index(settings.index, store.dim, store.shards, store.n_rows, max(settings.depth, EXACT_CHECK_K))
    scores, ids = search(index, queries, settings.depth)
    per_query = topk_metrics(ids, data.rel, data.grades, settings.measures)
    check = None
    if settings.index.kind != "flat" and settings.exact_check_queries > 0:
        rng = np.random.default_rng(settings.seed)
        sample = np.sort(rng.choice(len(queries), min(settings.exact_check_queries, len(queries)), replace=False))
        _, exact = exact_topk(queries[sample], store.shards(), EXACT_CHECK_K)
        _, approx = search(index, queries[sample], EXACT_CHECK_K)
        check = recall_vs_exact(approx, exact, EXACT_CHECK_K)
    return RunResult(data, ids, scores, per_query, check, t1 - t0, time.perf_counter() - t1)


def summarize(name: str, runs: Mapping[str | None, RunResult], measures: Sequence[str]) -> dict[str, float]:
    """Flat MLflow metrics of one dataset; with per-language runs, a row per language plus the macro mean."""
    out: dict[str, float] = {}
    per_lang = len(runs) > 1 or next(iter(runs)) is not None
    for m in measures:
        metric = keys.logged_name(m)
        values = {lang: mean_ignoring_missing(r.per_query[m])[0] for lang, r in runs.items()}
        if per_lang:
            out.update({keys.key(name, keys.MONO, metric, lang): v for lang, v in values.items()})
        out[keys.key(name, keys.MONO, metric)] = float(np.nanmean(list(values.values())))
    checks = {lang: r.recall_vs_exact for lang, r in runs.items() if r.recall_vs_exact is not None}
    if checks:
        metric = keys.logged_name(f"recall@{EXACT_CHECK_K}") + "_vs_exact"
        if per_lang:
            out.update({keys.key(name, keys.INDEX, metric, lang): v for lang, v in checks.items()})
        out[keys.key(name, keys.INDEX, metric)] = float(np.mean(list(checks.values())))
    out[keys.key(name, keys.MONO, keys.QUERIES)] = float(sum(len(r.data.query_ids) for r in runs.values()))
    out[keys.time_key(name, "encode")] = sum(r.encode_s for r in runs.values())
    out[keys.time_key(name, "search")] = sum(r.search_s for r in runs.values())
    return out


def load_sets(name: str, spec: Any, cache_dir: str | Path) -> dict[str | None, RetrievalSet]:
    """Load one `data.eval.<name>` entry of a corpus kind: {language: set} (MIRACL) or {None: set} (BEIR)."""
    from src.data.beir import load_beir
    from src.data.miracl import load_miracl

    if spec.kind == "beir":
        lang = spec.languages[0] if spec.languages else None
        return {None: load_beir(spec.path, spec.split, name, lang, spec.max_queries, Path(cache_dir) / "datasets")}
    if spec.kind == "miracl":
        return dict(load_miracl(spec.path, list(spec.languages), spec.split, name, spec.max_queries, cache_dir,
                                spec.hub_topics or "miracl/miracl", spec.hub_corpus or "miracl/miracl-corpus"))
    raise ValueError(f"data.eval.{name}.kind={spec.kind!r}: not a corpus kind (beir, miracl)")


def settings_from_config(cfg: Any, precision: str) -> CorpusEvalSettings:
    """CorpusEvalSettings from the composed config (`eval.*`, `paths.cache_dir`, `seed`) and the resolved precision."""
    from src.evaluation.driver import autocast_dtype

    e = cfg.eval
    spec = IndexSpec.from_config(e, seed=cfg.seed)
    return CorpusEvalSettings(
        measures=list(e.measures), index=spec, batch_size=e.batch_size, shard_size=e.corpus_shard_size,
        embedding_dtype=e.embedding_dtype,
        cache_dir=str(cfg.paths.cache_dir) if e.cache_embeddings else str(Path(cfg.paths.output_dir) / "cache"),
        exact_check_queries=e.exact_check_queries, autocast_dtype=autocast_dtype(precision),
        seed=cfg.seed,
    )


def evaluate_corpus_sets(cfg: Any, encoder: Any, trainer: Trainer,
                         sets: Mapping[str, Mapping[str | None, RetrievalSet]],
                         precision: str) -> tuple[dict[str, float], dict]:
    """Evaluate every corpus set (every language); rank 0 returns (metrics, runs), other ranks ({}, {})."""
    from src.evaluation.corpus import model_fingerprint

    settings = settings_from_config(cfg, precision)
    model_fp = model_fingerprint(encoder)  # hash the weights once for all corpora
    metrics: dict[str, float] = {}
    runs: dict[str, dict[str | None, RunResult]] = {}
    for name, by_lang in sets.items():
        results = {lang: evaluate_corpus(data, encoder, trainer, settings, model_fp) for lang, data in by_lang.items()}
        if trainer.is_global_zero:
            runs[name] = results  # type: ignore[assignment]  # rank 0 always gets results
            metrics.update(summarize(name, runs[name], settings.measures))
    return metrics, runs
