"""Translation retrieval over aligned sentences: a query is a sentence, its relevant candidates its translations.

Settings (src/data/bitext.py for the data):
- cross X->Y: X's sentences against every sentence of Y in the same table; the relevant one is the query's
  translation, so R@1 is the accuracy of bitext mining.
- multi (N-way sets only): X's sentences against every sentence of every language except the query sentence
  itself; relevant = its translations in all other languages. Unrelated sentences of the query's own language
  compete with the translations: the rank distance over them is the language-bias test.
- mono is undefined (a sentence would retrieve itself): it is not scored and not logged.

Every distinct text of a set is encoded once, on the encoder's `sentence` side (the query prefix, which E5
prescribes for both sides of symmetric tasks, and the passage length limit), so a sentence's query and
candidate vectors are the same vector.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from src.core import keys
from src.data.bitext import BitextDataset
from src.evaluation.grid import Embeddings, GridResult, language_segments
from src.evaluation.metrics import per_query_metrics, ranks_from_embeddings, ranks_of_views

# Encodes texts as one side ("query"/"passage") to (n, d) float32; context segments are not used here.
EncodeTexts = Callable[[Sequence[str], str], np.ndarray]


def encode_bitext(dataset: BitextDataset, encode: EncodeTexts, side: str = "sentence") -> Embeddings:
    """Each language's sentence vectors in query order; every distinct text encoded once (one call)."""
    texts: dict[str, int] = {}
    rows = {x: [texts.setdefault(t.texts[x][i], len(texts)) for t, i in dataset.rows(x)] for x in dataset.languages}
    vectors = encode(list(texts), side)
    by_lang = {x: vectors[idx] for x, idx in rows.items()}
    # One array per language serves both sides: the query of a row is the candidate of the same row.
    return Embeddings(questions=by_lang, candidates=by_lang)


def _nan_rows(metrics: dict[str, np.ndarray], n: int, rows: np.ndarray) -> dict[str, np.ndarray]:
    """Metric arrays over all `n` queries of a language, the scored `rows` filled in (NaN / 0 elsewhere)."""
    out = {}
    for name, values in metrics.items():
        full = np.zeros(n, dtype=values.dtype) if name == "n_relevant" else np.full(n, np.nan)
        full[rows] = values
        out[name] = full
    return out


def score_bitext(dataset: BitextDataset, emb: Embeddings, ks: Sequence[int] = keys.RECALL_CUTOFFS) -> GridResult:
    """Cross pairs inside every table and, for N-way sets, the pooled setting without the query itself."""
    langs = dataset.languages
    # Tatoeba's English rows outside a pair's table are structural NaNs, not queries without an answer.
    result = GridResult(dataset=dataset.name, languages=langs, count_missing=len(dataset.tables) == 1)
    if dataset.multi:
        _score_pooled_table(dataset, emb, result, ks)
        return result
    # Rows of each language's query order that belong to each table (Tatoeba: English spans ten tables).
    offsets: dict[tuple[str, str], np.ndarray] = {}
    for x in langs:
        position = 0
        for t in dataset.tables:
            if x in t.texts:
                offsets[(x, t.name)] = np.arange(position, position + len(t.ids))
                position += len(t.ids)
    for t in dataset.tables:
        identity = np.arange(len(t.ids), dtype=np.int64)[:, None]  # row i's translation is row i
        for x in t.languages:
            rows_x = offsets[(x, t.name)]
            for y in t.languages:
                if y == x:
                    continue
                ranks = ranks_from_embeddings(emb.questions[x][rows_x], emb.candidates[y][offsets[(y, t.name)]],
                                              identity)
                metrics = per_query_metrics(ranks, ks=ks, ndcg_k=keys.NDCG_CUTOFF)
                result.pairs[(x, y)] = _nan_rows(metrics, len(emb.questions[x]), rows_x)
    return result


def _score_pooled_table(dataset: BitextDataset, emb: Embeddings, result: GridResult, ks: Sequence[int]) -> None:
    """An N-way table: X->Y for every Y and X->pool without the query itself, from one score matrix per X."""
    (t,) = dataset.tables
    n = len(t.ids)
    pool = np.concatenate([emb.candidates[y] for y in t.languages], axis=0)
    segments = language_segments({y: n for y in t.languages})
    identity = np.arange(n, dtype=np.int64)[:, None]  # row i's translation is row i
    for j, x in enumerate(t.languages):
        others = [y for y in t.languages if y != x]
        # Row i's translations sit at k * n + i in the pool; the query itself at j * n + i is left out.
        rel = np.stack([segments[y].start + np.arange(n) for y in others], axis=1).astype(np.int64)
        views = [(segments[y], identity) for y in others] + [(slice(None), rel)]
        *cross, pooled = ranks_of_views(emb.questions[x], pool, views, exclude=j * n + np.arange(n))
        for y, ranks in zip(others, cross):
            result.pairs[(x, y)] = per_query_metrics(ranks, ks=ks, ndcg_k=keys.NDCG_CUTOFF)
        result.multi[x] = per_query_metrics(pooled, ks=ks, ndcg_k=keys.NDCG_CUTOFF)


def label_breakdown(dataset: BitextDataset, result: GridResult, metric: str = "map") -> dict[str, dict[str, float]]:
    """{label: {setting: macro value}} over the rows of each label (SIB-200 topic, TICO-19 origin); {} without labels.

    The macro value is computed like the grid's (mean over a query language's pairs of the mean over its
    queries, then over query languages), restricted to the label's rows.
    """
    if dataset.label_name is None:
        return {}
    labels = {x: np.asarray(dataset.labels(x)) for x in dataset.languages}
    out: dict[str, dict[str, float]] = {}
    for label in sorted({v for arr in labels.values() for v in arr.tolist()}):
        row: dict[str, float] = {}
        per_lang = []
        for x in dataset.languages:
            pair_means = [_masked_mean(result.pairs[(x, y)][metric], labels[x] == label)
                          for y in dataset.languages if (x, y) in result.pairs]
            pair_means = [v for v in pair_means if np.isfinite(v)]
            if pair_means:
                per_lang.append(float(np.mean(pair_means)))
        if per_lang:
            row[keys.CROSS] = float(np.mean(per_lang))
        if result.multi:
            row[keys.MULTI] = float(np.mean([_masked_mean(result.multi[x][metric], labels[x] == label)
                                             for x in dataset.languages]))
            row[keys.RANK_DISTANCE] = float(np.mean([_masked_mean(result.multi[x][keys.RANK_DISTANCE],
                                                                  labels[x] == label) for x in dataset.languages]))
        row["rows"] = float(np.count_nonzero(labels[dataset.languages[0]] == label))
        out[label] = row
    return out


def _masked_mean(values: np.ndarray, mask: np.ndarray) -> float:
    """Mean of the finite values where mask holds (NaN if none)."""
    v = np.asarray(values, dtype=np.float64)[mask]
    v = v[np.isfinite(v)]
    return float(v.mean()) if v.size else float("nan")
