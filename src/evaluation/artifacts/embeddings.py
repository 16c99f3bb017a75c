"""Embeddings of one evaluation set, `{lang}.{questions,candidates}.{npy,jsonl}` plus a README.txt."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from src.data.bitext import BitextDataset
from src.data.lareqa import LareqaDataset
from src.evaluation.grid import Embeddings

_README = """\
Embeddings of the {dataset} evaluation set ({n_langs} languages: {langs}).

Files per language L:
  L.questions.npy    float32 (n_questions, dim), row i = line i of L.questions.jsonl
  L.candidates.npy   float32 (n_candidates, dim), row j = line j of L.candidates.jsonl
  L.questions.jsonl  {{"qid", "xling_id", "text", "relevant_uid"}} per line
  L.candidates.jsonl {{"uid", "sentence", "paragraph"}} per line

Row order is the dataset's record order (articles, paragraphs, then questions / sentences as they appear
in L.json). qid = "L:xling_id"; uid = "L:article-paragraph-sentence"; paragraph = "L:article-paragraph".

Relevance: a question's relevant candidate in its own language is its relevant_uid. Its relevant candidate
in language Y is the relevant_uid of the Y question with the same xling_id (none if Y lacks that
question). In the pooled (multi) setting every such candidate, over all languages, is relevant.
Scores are inner products of the rows (the encoder already normalised them if it normalises).
"""


def save_embeddings(dataset: LareqaDataset, emb: Embeddings, out_dir: Path) -> list[Path]:
    """Per language `{lang}.{questions,candidates}.{npy,jsonl}` in record order, plus a README.txt."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for x in dataset.languages:
        split = dataset.by_lang[x]
        q = np.asarray(emb.questions[x], dtype=np.float32)
        c = np.asarray(emb.candidates[x], dtype=np.float32)
        if q.shape[0] != len(split.questions) or c.shape[0] != len(split.candidates):
            raise ValueError(f"embeddings of '{x}' have {q.shape[0]}/{c.shape[0]} rows, the dataset "
                             f"{len(split.questions)} questions / {len(split.candidates)} candidates")
        records = {
            "questions": ({"qid": r.qid, "xling_id": r.xling_id, "text": r.text, "relevant_uid": r.relevant_uid}
                          for r in split.questions),
            "candidates": ({"uid": r.uid, "sentence": r.sentence, "paragraph": r.paragraph}
                           for r in split.candidates),
        }
        for side, matrix in (("questions", q), ("candidates", c)):
            npy = out_dir / f"{x}.{side}.npy"
            np.save(npy, matrix)
            jsonl = out_dir / f"{x}.{side}.jsonl"
            jsonl.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records[side]),
                             encoding="utf-8")
            paths += [npy, jsonl]
    readme = out_dir / "README.txt"
    readme.write_text(_README.format(dataset=dataset.name, n_langs=len(dataset.languages),
                                     langs=", ".join(dataset.languages)), encoding="utf-8")
    paths.append(readme)
    return paths


def load_embeddings(out_dir: Path, languages: Sequence[str]) -> Embeddings:
    """Read back the `.npy` files written by :func:`save_embeddings`."""
    out_dir = Path(out_dir)
    return Embeddings(
        questions={x: np.load(out_dir / f"{x}.questions.npy") for x in languages},
        candidates={x: np.load(out_dir / f"{x}.candidates.npy") for x in languages},
    )


def save_bitext_embeddings(dataset: BitextDataset, emb: Embeddings, out_dir: Path) -> list[Path]:
    """Per language `{lang}.sentences.npy` (query order, src/data/bitext.py) and `{lang}.sentences.jsonl`."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for x in dataset.languages:
        rows = dataset.rows(x)
        matrix = np.asarray(emb.questions[x], dtype=np.float32)
        if matrix.shape[0] != len(rows):
            raise ValueError(f"embeddings of '{x}' have {matrix.shape[0]} rows, the dataset {len(rows)} sentences")
        npy, jsonl = out_dir / f"{x}.sentences.npy", out_dir / f"{x}.sentences.jsonl"
        np.save(npy, matrix)
        jsonl.write_text("".join(json.dumps({"id": t.ids[i], "table": t.name, "text": t.texts[x][i]},
                                            ensure_ascii=False) + "\n" for t, i in rows), encoding="utf-8")
        paths += [npy, jsonl]
    return paths
