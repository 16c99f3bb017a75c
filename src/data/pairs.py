"""Training pairs from LAReQA sets: a question in X with its answer sentence in Y, plus a hard negative."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from src.data.lareqa import Candidate, LareqaDataset
from src.data.text import normalise

CandidateText = Literal["sentence", "sentence_context"]


@dataclass
class PairTable:
    """Columnar pair table; texts are stored once and pairs point at them by index."""

    queries: list[str]
    passages: list[str]
    passage_contexts: list[str] | None  # second segment per passage when candidate_text=sentence_context
    q_idx: np.ndarray  # int64 index into queries
    p_idx: np.ndarray  # int64 index into passages (the positive)
    neg_idx: np.ndarray  # int64 index into passages, -1 where there is no hard negative
    q_lang: list[str]
    p_lang: list[str]
    xling_id: list[str]

    def __len__(self) -> int:
        """Number of pairs."""
        return len(self.q_idx)

    @property
    def languages(self) -> tuple[str, ...]:
        """Sorted set of languages on either side."""
        return tuple(sorted(set(self.q_lang) | set(self.p_lang)))


def build_pairs(
    dataset: LareqaDataset,
    candidate_text: CandidateText = "sentence",
    hard_negatives: bool = True,
    seed: int = 0,
) -> PairTable:
    """Every xling_id x every ordered language pair (X, Y) in which it exists, X = Y included."""
    if candidate_text not in ("sentence", "sentence_context"):
        raise ValueError(
            f"candidate_text={candidate_text!r}: expected 'sentence' or 'sentence_context'"
        )
    rng = np.random.default_rng(seed)
    queries: list[str] = []
    q_index: dict[str, int] = {}
    passages: list[str] = []
    contexts: list[str] = []
    c_index: dict[str, int] = {}
    para_members: dict[str, list[int]] = {}
    # xling_id -> {lang: (question index, positive candidate index)}
    by_id: dict[str, dict[str, tuple[int, int]]] = {}
    for lang, split in dataset.by_lang.items():
        cand_by_uid: dict[str, Candidate] = {c.uid: c for c in split.candidates}
        for cand in split.candidates:
            c_index[cand.uid] = len(passages)
            passages.append(cand.sentence)
            contexts.append(cand.context)
            para_members.setdefault(cand.paragraph, []).append(c_index[cand.uid])
        for q in split.questions:
            q_index[q.qid] = len(queries)
            queries.append(q.text)
            assert q.relevant_uid in cand_by_uid  # guaranteed by the loader
            by_id.setdefault(q.xling_id, {})[lang] = (q_index[q.qid], c_index[q.relevant_uid])
    cand_paragraph = np.empty(len(passages), dtype=object)
    for para, members in para_members.items():
        cand_paragraph[members] = para

    q_idx, p_idx, neg_idx, q_lang, p_lang, xid = [], [], [], [], [], []
    for xling_id in sorted(by_id):
        langs = by_id[xling_id]
        for x in sorted(langs):
            for y in sorted(langs):
                pos = langs[y][1]
                q_idx.append(langs[x][0])
                p_idx.append(pos)
                q_lang.append(x)
                p_lang.append(y)
                xid.append(xling_id)
                neg = -1
                if hard_negatives:
                    others = [m for m in para_members[cand_paragraph[pos]] if m != pos]
                    if others:
                        neg = int(others[rng.integers(len(others))])
                neg_idx.append(neg)
    return PairTable(
        queries=queries,
        passages=passages,
        passage_contexts=contexts if candidate_text == "sentence_context" else None,
        q_idx=np.asarray(q_idx, dtype=np.int64),
        p_idx=np.asarray(p_idx, dtype=np.int64),
        neg_idx=np.asarray(neg_idx, dtype=np.int64),
        q_lang=q_lang,
        p_lang=p_lang,
        xling_id=xid,
    )


def relevance_keys(pairs: PairTable) -> tuple[np.ndarray, np.ndarray]:
    """Keys that say which passages are relevant to which query, for masking in-batch false negatives.

    Returns `passage_key` (one int per passage: the id of its normalised text, so the same sentence and an
    identical sentence elsewhere share a key) and `relevant` (one row per pair: the keys of every positive
    of that pair's question id, in any language, padded with -1). A passage whose key is in a query's row
    answers that query, whichever question id or pair brought it into the batch.
    """
    ids: dict[str, int] = {}
    passage_key = np.fromiter((ids.setdefault(normalise(t), len(ids)) for t in pairs.passages), dtype=np.int64,
                              count=len(pairs.passages))
    by_question: dict[str, set[int]] = {}
    for xid, p in zip(pairs.xling_id, pairs.p_idx):
        by_question.setdefault(xid, set()).add(int(passage_key[p]))
    width = max((len(v) for v in by_question.values()), default=1)
    table = {xid: sorted(v) + [-1] * (width - len(v)) for xid, v in by_question.items()}
    relevant = np.array([table[xid] for xid in pairs.xling_id], dtype=np.int64).reshape(len(pairs), width)
    return passage_key, relevant
