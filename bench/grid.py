"""Comparison 2: full-grid evaluation — project `evaluate_sets` vs one `InformationRetrievalEvaluator` per pair.

The reference is how the grid is evaluated with sentence-transformers today: one evaluator per (query
language, candidate language) pair, each re-encoding its queries and its corpus, plus one for the pooled
setting, with the evaluator's default cut-offs. Goals: >= 10x faster; the same mAP to 1e-6 where both
compute it (the evaluator's MAP@k with k = corpus size is full-ranking AP, checked on the same embeddings);
and project evaluation time / pure encoding time of the same texts <= 1.10 (the physical floor).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from bench import common
from bench.harness import alternate
from src.data.lareqa import LareqaDataset
from src.evaluation.driver import evaluate_sets
from src.evaluation.grid import Embeddings, encode_dataset, score_grid

GOAL_SPEEDUP = 10.0
GOAL_FLOOR = 1.10
GOAL_MAP_DIFF = 1e-6


@dataclass(frozen=True)
class Size:
    """Which slices of XQuAD-R each part of the comparison uses."""

    side_languages: tuple[str, ...] | None  # None: all 11
    side_articles: int  # first n of 48 articles per language (a complete, smaller retrieval set)
    side_model: str
    floor_model: str
    floor_languages: tuple[str, ...] | None
    floor_articles: int
    repetitions: int
    batch_size: int = 128


QUICK = Size(side_languages=("en", "de", "zh"), side_articles=1, side_model="tiny", floor_model="tiny",
             floor_languages=("en",), floor_articles=1, repetitions=1)
# The bundled model on both parts: with a model that costs what a real one costs, encoding dominates as it
# does for users (the tiny model's encoding is so cheap that fixed per-call costs decide the ratio).
FULL = Size(side_languages=None, side_articles=2, side_model="me5_small_bundled", floor_model="me5_small_bundled",
            floor_languages=None, floor_articles=2, repetitions=2)


def ir_inputs(ds: LareqaDataset, q_langs: Sequence[str], c_langs: Sequence[str]) -> tuple[dict, dict, dict]:
    """Queries, corpus and relevant docs for one evaluator; corpus ids are zero-padded pool positions.

    The evaluator breaks score ties by corpus id as a string; zero-padding makes that the pool order, which
    is the project's tie-break (lower candidate index first).
    """
    corpus, uid_to_id = {}, {}
    for y in c_langs:
        for c in ds.by_lang[y].candidates:
            cid = f"{len(corpus):07d}"
            corpus[cid], uid_to_id[c.uid] = c.sentence, cid
    answers: dict[str, set[str]] = {}
    for y in c_langs:
        for q in ds.by_lang[y].questions:
            answers.setdefault(q.xling_id, set()).add(uid_to_id[q.relevant_uid])
    queries, relevant = {}, {}
    for x in q_langs:
        for q in ds.by_lang[x].questions:
            queries[q.qid] = q.text
            if q.xling_id in answers:
                relevant[q.qid] = answers[q.xling_id]
    return queries, corpus, relevant


def evaluators(ds: LareqaDataset, batch_size: int, full_ranking: bool = False) -> dict[str, Any]:
    """One evaluator per pair `x-y` plus `pooled`; full_ranking sets MAP@k to the corpus size."""
    from sentence_transformers.sentence_transformer.evaluation import InformationRetrievalEvaluator

    langs = ds.languages
    specs = {f"{x}-{y}": ([x], [y]) for x in langs for y in langs}
    specs["pooled"] = (list(langs), list(langs))
    out = {}
    for name, (qs, cs) in specs.items():
        queries, corpus, relevant = ir_inputs(ds, qs, cs)
        kwargs = {"map_at_k": [len(corpus)]} if full_ranking else {}
        out[name] = InformationRetrievalEvaluator(queries, corpus, relevant, batch_size=batch_size, name=name,
                                                  write_csv=False, **kwargs)
    return out


def reference_grid(st: Any, ds: LareqaDataset, batch_size: int) -> dict[str, dict[str, float]]:
    """What users run today: build and call an evaluator for every pair and the pooled setting."""
    return {name: ev(st) for name, ev in evaluators(ds, batch_size).items()}


class FrozenEmbedder:
    """One fixed vector per (side, text), served to the project and to the evaluator alike.

    Re-encoding a text in another batch changes its padding and so its float rounding (~1e-7); with a
    random-init model that flips near-ties. A lookup makes both rank identical vectors, and rounding them
    to multiples of 2^-8 makes every dot product exact in float32 (products are multiples of 2^-16, sums
    stay far below 2^8), so numpy and torch, in any summation order, produce the same scores and the same
    exact ties. Any mAP difference left is a difference in the metric, not in the embeddings.
    """

    def __init__(self, enc: Any, ds: LareqaDataset, batch_size: int) -> None:
        self.table: dict[str, dict[str, np.ndarray]] = {}
        texts = common.dataset_texts(ds)
        for side, side_texts in (("query", texts.queries), ("passage", texts.passages)):
            unique = sorted(set(side_texts))
            vectors = np.round(enc.encode(unique, side, batch_size=batch_size) * 256) / 256
            self.table[side] = dict(zip(unique, vectors))

    def encode(self, texts: Sequence[str], side: str, contexts: Sequence[str] | None = None) -> np.ndarray:
        """Project-side `EncodeFn`: rows of the table."""
        return np.stack([self.table[side][t] for t in texts])

    def encode_query(self, sentences: Sequence[str], **_: Any) -> torch.Tensor:
        """Evaluator-side query embeddings."""
        return torch.from_numpy(self.encode(sentences, "query"))

    def encode_document(self, sentences: Sequence[str], **_: Any) -> torch.Tensor:
        """Evaluator-side corpus embeddings."""
        return torch.from_numpy(self.encode(sentences, "passage"))


def map_agreement(enc: Any, ds: LareqaDataset, batch_size: int) -> dict[str, Any]:
    """Largest |mAP difference| between the evaluator (MAP@corpus size) and the project, same embeddings."""
    from sentence_transformers.util import dot_score

    embedder, diffs = FrozenEmbedder(enc, ds, batch_size), {}
    res = score_grid(ds, encode_dataset(ds, embedder.encode))
    for name, ev in evaluators(ds, batch_size, full_ranking=True).items():
        ev.score_functions = {"dot": dot_score}  # the project ranks by inner product; exact on these vectors
        theirs = ev.compute_all_metrics(embedder)["dot"]["map@k"][ev.map_at_k[0]]
        if name == "pooled":
            ours = float(np.nanmean(np.concatenate([res.multi[x]["map"] for x in ds.languages])))
        else:
            x, y = name.split("-")
            ours = res.pair_mean(x, y, "map")[0]
        diffs[name] = abs(float(theirs) - ours)
    worst = max(diffs, key=diffs.get)
    return {"compared": len(diffs), "max_abs_diff": diffs[worst], "worst": worst}


def floor_ratio(enc: Any, ds: LareqaDataset, batch_size: int, repetitions: int,
                precision: str | None = None) -> dict[str, Any]:
    """Project evaluation vs encoding alone of the same texts (same precision), alternated."""
    from src.evaluation.driver import autocast_dtype

    dtype = autocast_dtype(precision)

    def pure_encode() -> Embeddings:
        return encode_dataset(ds, lambda t, s, c: enc.encode(t, s, c, batch_size=batch_size, autocast_dtype=dtype))

    res = alternate({"evaluate_sets": lambda: evaluate_sets(enc, {"xquad_r": ds}, batch_size, precision=precision),
                     "encode only": pure_encode},
                    baseline="encode only", repetitions=repetitions, warmup=0)
    return res.to_json()


def floor_row(setting: str, floor: dict[str, Any], projected: float | None = None, extra: str = "") -> dict[str, Any]:
    """The summary-table row of a floor measurement (`floor_ratio`), met when the ratio (and any projection) is."""
    ratio = floor["ratios"]["evaluate_sets"]
    return {
        "comparison": "2 floor", "setting": setting, "project_s": floor["arms"]["evaluate_sets"]["median_s"],
        "reference_s": floor["arms"]["encode only"]["median_s"], "ratio": ratio, "goal": f"<= {GOAL_FLOOR}",
        "met": ratio["median"] <= GOAL_FLOOR and (projected is None or projected <= GOAL_FLOOR), "extra": extra,
    }


def full_scoring_seconds(ds: LareqaDataset, dim: int) -> dict[str, float]:
    """score_grid on the shapes of all of `ds` (random unit vectors): the scoring share of a full evaluation."""
    rng = np.random.default_rng(0)

    def unit(n: int) -> np.ndarray:
        v = rng.standard_normal((n, dim)).astype(np.float32)
        return v / np.linalg.norm(v, axis=1, keepdims=True)

    emb = Embeddings({x: unit(len(ds.by_lang[x].questions)) for x in ds.languages},
                     {x: unit(len(ds.by_lang[x].candidates)) for x in ds.languages})
    t0 = time.perf_counter()
    score_grid(ds, emb)
    return {"score_s": time.perf_counter() - t0, "texts": ds.num_questions + ds.num_candidates}


def run(quick: bool = False) -> dict[str, Any]:
    """Side by side (and mAP agreement) on the side model, then the floor ratio on the bundled model."""
    size = QUICK if quick else FULL
    full = common.xquad_r(size.side_languages)
    side = common.article_subset(full, size.side_articles)
    enc = common.encoder(size.side_model)
    st = common.sentence_transformer(enc)
    n_texts = side.num_questions + side.num_candidates
    n_pairs = len(side.languages) ** 2
    print(f"grid side by side: {size.side_model}, {len(side.languages)} languages, {n_texts} texts, "
          f"{n_pairs} pairs + pooled")
    reference_grid(st, common.article_subset(side, 1), size.batch_size)  # warm-up on a smaller slice
    evaluate_sets(enc, {"xquad_r": common.article_subset(side, 1)}, size.batch_size)
    res = alternate({"project": lambda: evaluate_sets(enc, {"xquad_r": side}, size.batch_size),
                     "IR evaluator per pair": lambda: reference_grid(st, side, size.batch_size)},
                    baseline="IR evaluator per pair", repetitions=size.repetitions, warmup=0)
    agreement = map_agreement(enc, side, size.batch_size)
    speedup = 1 / res.ratios["project"]["median"]
    rows = [{
        "comparison": "2 full grid", "setting": f"{size.side_model} model, {len(side.languages)} languages x "
        f"{size.side_articles} articles ({n_texts} texts), {n_pairs} pairs + pooled, fp32",
        "project_s": res.arms["project"].median_s, "reference_s": res.arms["IR evaluator per pair"].median_s,
        "ratio": res.ratios["project"], "goal": f">= {GOAL_SPEEDUP:.0f}x faster, |dmAP| <= {GOAL_MAP_DIFF:g}",
        "met": speedup >= GOAL_SPEEDUP and agreement["max_abs_diff"] <= GOAL_MAP_DIFF,
        "extra": f"{speedup:.1f}x faster; max |dmAP| {agreement['max_abs_diff']:.1e} over {agreement['compared']} "
                 f"evaluators (same embeddings)",
    }]

    bundled = enc if size.floor_model == size.side_model else common.encoder(size.floor_model)
    floor_full = full if size.floor_languages == size.side_languages else common.xquad_r(size.floor_languages)
    floor_ds = common.article_subset(floor_full, size.floor_articles)
    n_floor = floor_ds.num_questions + floor_ds.num_candidates
    floor_setting = (f"{size.floor_model}, {len(floor_ds.languages)} languages x {size.floor_articles} articles "
                     f"({n_floor} texts), fp32")
    print(f"grid floor: {floor_setting}")
    warm = LareqaDataset("xquad_r", {x: floor_ds.by_lang[x] for x in floor_ds.languages[:1]})
    evaluate_sets(bundled, {"xquad_r": warm}, size.batch_size)  # warm-up on one language
    floor = floor_ratio(bundled, floor_ds, size.batch_size, size.repetitions)
    enc_s = floor["arms"]["encode only"]["median_s"]
    scoring = full_scoring_seconds(full if size.side_languages is None else common.xquad_r(), bundled.dim)
    projected = 1 + scoring["score_s"] / (enc_s / n_floor * scoring["texts"])
    rows.append(floor_row(
        f"{floor_setting}: evaluate_sets / encode only", floor, projected,
        f"full XQuAD-R projected {projected:.3f} (scoring all 121 pairs + pooled: "
        f"{scoring['score_s']:.1f} s vs ~{enc_s / n_floor * scoring['texts']:.0f} s encoding)",
    ))
    return {"size": size.__dict__, "rows": rows, "side_by_side": res.to_json(), "map_agreement": agreement,
            "floor": floor, "full_scoring": scoring, "projected_full_floor": projected}
