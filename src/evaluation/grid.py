"""Zero-shot evaluation over the full language grid: encode every text once, score every setting.

Settings (LAReQA / arXiv 2408.10536): mono (X->X), cross (X->Y, Y != X) and multi (X -> the pooled
candidates of all languages, where every parallel answer sentence is relevant).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from src.core import keys
from src.data.lareqa import LareqaDataset
from src.evaluation.metrics import mean_ignoring_missing, per_query_metrics, ranks_of_views

# Encodes texts of one side ("query"/"passage"), optionally with context segments, to (n, d) float32.
EncodeFn = Callable[[Sequence[str], str, Sequence[str] | None], np.ndarray]


@dataclass
class Embeddings:
    """Each language's question and candidate embeddings, rows in the dataset's record order."""

    questions: dict[str, np.ndarray]
    candidates: dict[str, np.ndarray]


@dataclass
class GridResult:
    """Per-query metrics for the scored (query language, candidate language) pairs and the pooled setting.

    The LAReQA grid scores every pair (mono on the diagonal) and every language pooled; other kinds score
    fewer (translation retrieval has no mono pair, Tatoeba no pooled setting): absent pairs are not logged.
    """

    dataset: str
    languages: tuple[str, ...]
    pairs: dict[tuple[str, str], dict[str, np.ndarray]] = field(default_factory=dict)
    multi: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)
    # Log `{set}/{setting}/missing_queries`: false where a NaN row is structural, not a query without an answer
    # (Tatoeba: an English row of one language's table has no pair with another language's table).
    count_missing: bool = True

    @property
    def settings(self) -> tuple[str, ...]:
        """The settings this result scored, in keys.SETTINGS order."""
        found = {keys.pair_setting(x, y) for x, y in self.pairs} | ({keys.MULTI} if self.multi else set())
        return tuple(s for s in keys.SETTINGS if s in found)

    def pair_mean(self, q: str, c: str, metric: str) -> tuple[float, int]:
        """Mean over the queries that have a relevant candidate in the pair, and how many had none (NaN, 0: unscored)."""
        if (q, c) not in self.pairs:
            return float("nan"), 0
        return mean_ignoring_missing(self.pairs[(q, c)][metric])

    def multi_mean(self, q: str, metric: str) -> tuple[float, int]:
        """Mean over a query language's queries in the pooled setting (NaN, 0 where it was not scored)."""
        if q not in self.multi:
            return float("nan"), 0
        return mean_ignoring_missing(self.multi[q][metric])

    def summary(self, metrics: Sequence[str] = keys.GRID_METRICS) -> dict[str, float]:
        """Flat `{dataset}/{setting}/{metric}[/{lang or pair}]` keys of the scored settings: macro averages,
        rows, pairs, bias."""
        d, langs, out = self.dataset, self.languages, {}
        mono_langs = [x for x in langs if (x, x) in self.pairs]
        targets = {x: [y for y in langs if y != x and (x, y) in self.pairs] for x in langs}
        cross_langs = [x for x in langs if targets[x]]
        multi_langs = [x for x in langs if x in self.multi]
        for m in metrics:
            name = keys.logged_name(m)
            mono = [self.pair_mean(x, x, m)[0] for x in mono_langs]
            cross_rows = []
            for x in langs:
                if x in mono_langs:
                    out[keys.key(d, keys.MONO, name, keys.pair(x, x))] = mono[mono_langs.index(x)]
                if x in cross_langs:
                    row = []
                    for y in targets[x]:
                        value = self.pair_mean(x, y, m)[0]
                        out[keys.key(d, keys.CROSS, name, keys.pair(x, y))] = value
                        row.append(value)
                    cross_rows.append(float(np.nanmean(row)))
                    out[keys.key(d, keys.CROSS, name, x)] = cross_rows[-1]
                if x in multi_langs:
                    out[keys.key(d, keys.MULTI, name, x)] = self.multi_mean(x, m)[0]
            if mono_langs:
                out[keys.key(d, keys.MONO, name)] = float(np.nanmean(mono))
            if cross_langs:
                out[keys.key(d, keys.CROSS, name)] = float(np.nanmean(cross_rows))
            if multi_langs:
                out[keys.key(d, keys.MULTI, name)] = float(np.nanmean([self.multi_mean(x, m)[0] for x in multi_langs]))
        if multi_langs:
            bias = [self.multi_mean(x, keys.RANK_DISTANCE)[0] for x in multi_langs]
            out.update({keys.key(d, keys.MULTI, keys.RANK_DISTANCE, x): v for x, v in zip(multi_langs, bias)})
            out[keys.key(d, keys.MULTI, keys.RANK_DISTANCE)] = float(np.nanmean(bias))
        if self.count_missing:
            if cross_langs:
                out[keys.key(d, keys.CROSS, keys.MISSING_QUERIES)] = float(
                    sum(self.pair_mean(x, y, "map")[1] for x in cross_langs for y in targets[x]))
            if multi_langs:
                out[keys.key(d, keys.MULTI, keys.MISSING_QUERIES)] = float(
                    sum(self.multi_mean(x, "map")[1] for x in multi_langs))
        return out


def relevance(dataset: LareqaDataset, q_lang: str, c_langs: Sequence[str]) -> np.ndarray:
    """Padded relevance (n_questions_in_q_lang, len(c_langs)) into the concatenated candidates of c_langs.

    A question's relevant candidate in language Y is the answer sentence of the Y question with the same
    xling_id; -1 where Y has no such question.
    """
    offsets, answer = 0, {}
    for y in c_langs:
        split = dataset.by_lang[y]
        pos = {c.uid: offsets + i for i, c in enumerate(split.candidates)}
        answer[y] = {q.xling_id: pos[q.relevant_uid] for q in split.questions}
        offsets += len(split.candidates)
    questions = dataset.by_lang[q_lang].questions
    rel = np.full((len(questions), len(c_langs)), -1, dtype=np.int64)
    for i, q in enumerate(questions):
        for j, y in enumerate(c_langs):
            rel[i, j] = answer[y].get(q.xling_id, -1)
    return rel


def encode_dataset(dataset: LareqaDataset, encode: EncodeFn, candidate_text: str = "sentence") -> Embeddings:
    """Encode every question and every candidate exactly once (one call per side over all languages)."""
    langs = dataset.languages
    q_texts = [q.text for x in langs for q in dataset.by_lang[x].questions]
    c_texts = [c.sentence for x in langs for c in dataset.by_lang[x].candidates]
    contexts = None
    if candidate_text == "sentence_context":
        contexts = [c.context for x in langs for c in dataset.by_lang[x].candidates]
    q_all = encode(q_texts, "query", None)
    c_all = encode(c_texts, "passage", contexts)
    questions, candidates, qo, co = {}, {}, 0, 0
    for x in langs:
        nq, nc = len(dataset.by_lang[x].questions), len(dataset.by_lang[x].candidates)
        questions[x], candidates[x] = q_all[qo : qo + nq], c_all[co : co + nc]
        qo, co = qo + nq, co + nc
    return Embeddings(questions, candidates)


def language_segments(sizes: dict[str, int]) -> dict[str, slice]:
    """Each language's column slice in the pool that concatenates the languages in the given order."""
    out, start = {}, 0
    for lang, n in sizes.items():
        out[lang] = slice(start, start + n)
        start += n
    return out


def score_grid(dataset: LareqaDataset, emb: Embeddings, ks: Sequence[int] = keys.RECALL_CUTOFFS) -> GridResult:
    """Rank relevant candidates for all L*L pairs and the pooled setting, reusing the embeddings."""
    langs = dataset.languages
    result = GridResult(dataset=dataset.name, languages=langs)
    pool = np.concatenate([emb.candidates[y] for y in langs], axis=0)
    segments = language_segments({y: len(emb.candidates[y]) for y in langs})
    for x in langs:
        # X->Y is the Y columns of X->pool: one score matrix per query language serves both settings.
        views = [(segments[y], relevance(dataset, x, [y])) for y in langs] + [(slice(None), relevance(dataset, x, langs))]
        *cross, pooled = ranks_of_views(emb.questions[x], pool, views)
        for y, ranks in zip(langs, cross):
            result.pairs[(x, y)] = per_query_metrics(ranks, ks=ks, ndcg_k=keys.NDCG_CUTOFF)
        result.multi[x] = per_query_metrics(pooled, ks=ks, ndcg_k=keys.NDCG_CUTOFF)
    return result
