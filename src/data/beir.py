"""Retrieval sets with a corpus: the BEIR folder layout, and the record type shared with MIRACL.

A BEIR folder (the de-facto exchange format for retrieval benchmarks) holds

    corpus.jsonl       {"_id": ..., "title": ..., "text": ...}   one passage per line
    queries.jsonl      {"_id": ..., "text": ...}
    qrels/{split}.tsv  query-id <TAB> corpus-id <TAB> score      with that header line

The corpus is loaded with `datasets` into an Arrow table that is memory-mapped from the cache, so a
corpus of tens of millions of passages never becomes a Python list; queries and judgements are small
and kept in memory.
"""

from __future__ import annotations

import csv
import json
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

QRELS_HEADER = ("query-id", "corpus-id", "score")
Qrels = dict[str, dict[str, int]]  # query id -> {corpus id: grade}


@dataclass
class RetrievalSet:
    """Judged queries with graded judgements into one corpus (Arrow-backed `datasets.Dataset`: _id, [title,] text).

    `rel[i]` holds the corpus rows judged relevant for query i (-1 padding, and -1 for a judged passage
    that is missing from the corpus: it still counts in recall's denominator, as in trec_eval), `grades[i]`
    their grades (0 on padding).
    """

    name: str
    language: str | None
    corpus: Any  # datasets.Dataset
    query_ids: list[str]
    queries: list[str]
    rel: np.ndarray
    grades: np.ndarray
    source: str

    def doc_ids(self, rows: np.ndarray) -> np.ndarray:
        """Corpus `_id`s of row indices (any shape; -1 -> empty string), gathered from Arrow without a copy."""
        import pyarrow as pa

        rows = np.asarray(rows)
        flat = rows.ravel()
        valid = flat >= 0
        col = self.corpus.with_format(None).data.column("_id")
        out = np.full(flat.shape, "", dtype=object)
        if valid.any():
            out[valid] = col.take(pa.array(flat[valid])).to_numpy(zero_copy_only=False)
        return out.reshape(rows.shape)


def read_jsonl(path: Path, required: Sequence[str]) -> Iterable[dict[str, Any]]:
    """Yield the JSON objects of a .jsonl file, failing with file:line when one is malformed or lacks a field."""
    with open(path, encoding="utf-8") as fh:
        for n, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as err:
                raise ValueError(f"{path}:{n}: not valid JSON ({err.msg})") from err
            missing = [k for k in required if k not in obj]
            if missing:
                raise ValueError(f"{path}:{n}: missing field(s) {missing} (expected {list(required)})")
            yield obj


def read_queries(path: Path) -> dict[str, str]:
    """BEIR queries.jsonl -> {query id: text}."""
    out: dict[str, str] = {}
    for obj in read_jsonl(path, ("_id", "text")):
        qid = str(obj["_id"])
        if qid in out:
            raise ValueError(f"{path}: query id {qid!r} occurs twice")
        out[qid] = str(obj["text"])
    return out


def read_qrels(path: Path) -> Qrels:
    """BEIR qrels TSV with the header `query-id corpus-id score` -> {query id: {corpus id: grade}}."""
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no qrels file (expected a TSV with header {' '.join(QRELS_HEADER)})")
    qrels: Qrels = {}
    with open(path, encoding="utf-8", newline="") as fh:
        reader = csv.reader(fh, delimiter="\t")
        header = next(reader, None)
        if header is None or tuple(h.strip() for h in header[:3]) != QRELS_HEADER:
            raise ValueError(f"{path}: first line {header} is not the header {list(QRELS_HEADER)}")
        for n, row in enumerate(reader, 2):
            if not row:
                continue
            if len(row) < 3 or not row[2].strip().lstrip("-").isdigit():
                raise ValueError(f"{path}:{n}: expected query-id<TAB>corpus-id<TAB>integer score, got {row}")
            qrels.setdefault(row[0], {})[row[1]] = int(row[2])
    return qrels


def load_corpus(files: Sequence[Path], id_field: str = "_id", cache_dir: str | Path | None = None) -> Any:
    """JSON-lines passages -> an Arrow-backed `datasets.Dataset` with string columns _id, [title,] text."""
    import datasets

    for f in files:
        if not Path(f).is_file():
            raise FileNotFoundError(f"{f}: corpus file not found")
    corpus = datasets.load_dataset(
        "json", data_files=[str(f) for f in files], split="train",
        cache_dir=str(cache_dir) if cache_dir else None,
    )
    for col in (id_field, "text"):
        if col not in corpus.column_names:
            raise ValueError(f"{files[0]}: corpus rows need the fields {id_field!r} and 'text' "
                             f"(found {corpus.column_names})")
    if id_field != "_id":
        corpus = corpus.rename_column(id_field, "_id")
    # A missing title column stays missing (adding one would build an n-row Python list); readers default it.
    corpus = corpus.select_columns([c for c in ("_id", "title", "text") if c in corpus.column_names])
    if corpus.features["_id"].dtype != "string":  # numeric ids in the JSON
        corpus = corpus.cast_column("_id", datasets.Value("string"))
    return corpus


def corpus_rows(corpus: Any, ids: Iterable[str], chunk: int = 1_000_000) -> dict[str, int]:
    """Row index of each wanted corpus id, scanning the Arrow `_id` column chunk by chunk (no full id dict)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    wanted = pa.array(sorted(set(ids)), type=pa.string())
    col = corpus.with_format(None).data.column("_id")
    found: dict[str, int] = {}
    for start in range(0, len(col), chunk):
        part = col.slice(start, chunk)
        hit = np.flatnonzero(pc.is_in(part, value_set=wanted).to_numpy(zero_copy_only=False))
        for i, doc in zip(hit, part.take(pa.array(hit)).to_pylist()):
            if doc in found:
                raise ValueError(f"corpus id {doc!r} occurs twice (rows {found[doc]} and {start + i})")
            found[doc] = start + int(i)
    return found


def build_set(name: str, language: str | None, corpus: Any, queries: Mapping[str, str], qrels: Qrels,
              source: str, max_queries: int | None = None) -> RetrievalSet:
    """Keep the judged queries (as trec_eval: one judged non-relevant only scores 0), map judged ids to rows."""
    judged = list(qrels)
    unknown = [q for q in judged if q not in queries]
    if unknown:
        raise ValueError(f"{source}: qrels name {len(unknown)} query id(s) absent from the queries, e.g. {unknown[:3]}")
    if max_queries is not None:
        judged = judged[:max_queries]
    relevant = [{d: g for d, g in qrels[q].items() if g > 0} for q in judged]
    if not any(relevant):
        raise ValueError(f"{source}: no query has a relevant (score > 0) judgement")
    rows = corpus_rows(corpus, (d for docs in relevant for d in docs))
    missing = sorted({d for docs in relevant for d in docs if d not in rows})
    if missing:
        log.warning("%s: %d judged passage(s) are not in the corpus (counted as never retrieved), e.g. %s",
                    source, len(missing), missing[:3])
    width = max(len(docs) for docs in relevant)  # >= 1: some query has a relevant judgement
    rel = np.full((len(judged), width), -1, dtype=np.int64)
    grades = np.zeros((len(judged), width), dtype=np.float64)
    for i, docs in enumerate(relevant):
        for j, (doc, grade) in enumerate(docs.items()):
            rel[i, j], grades[i, j] = rows.get(doc, -1), grade
    return RetrievalSet(name, language, corpus, judged, [queries[q] for q in judged], rel, grades, source)


def load_beir(path: str | Path, split: str = "test", name: str = "beir", language: str | None = None,
              max_queries: int | None = None, cache_dir: str | Path | None = None) -> RetrievalSet:
    """Load a BEIR-layout folder: corpus.jsonl, queries.jsonl and qrels/{split}.tsv."""
    root = Path(path)
    if not root.is_dir():
        raise FileNotFoundError(f"data.eval.{name}.path={path}: folder does not exist (expected the BEIR layout "
                                "corpus.jsonl, queries.jsonl, qrels/<split>.tsv)")
    for f in ("corpus.jsonl", "queries.jsonl"):
        if not (root / f).is_file():
            raise FileNotFoundError(f"data.eval.{name}.path={path}: no {f} (BEIR layout expected)")
    qrels_file = root / "qrels" / f"{split}.tsv"
    if not qrels_file.is_file():
        have = sorted(p.stem for p in (root / "qrels").glob("*.tsv")) if (root / "qrels").is_dir() else []
        raise FileNotFoundError(f"data.eval.{name}.split={split}: no {qrels_file} (splits present: {have})")
    corpus = load_corpus([root / "corpus.jsonl"], cache_dir=cache_dir)
    return build_set(name, language, corpus, read_queries(root / "queries.jsonl"), read_qrels(qrels_file),
                     str(qrels_file), max_queries)


def write_beir(folder: str | Path, corpus: Iterable[Mapping[str, str]], queries: Mapping[str, str],
               qrels: Qrels, split: str = "test") -> Path:
    """Write passages, queries and judgements as a BEIR folder (fixtures, conversions)."""
    root = Path(folder)
    (root / "qrels").mkdir(parents=True, exist_ok=True)
    with open(root / "corpus.jsonl", "w", encoding="utf-8") as fh:
        fh.writelines(json.dumps({"_id": doc["_id"], "title": doc.get("title", ""), "text": doc["text"]},
                                ensure_ascii=False) + "\n" for doc in corpus)
    with open(root / "queries.jsonl", "w", encoding="utf-8") as fh:
        fh.writelines(json.dumps({"_id": qid, "text": text}, ensure_ascii=False) + "\n" for qid, text in queries.items())
    with open(root / "qrels" / f"{split}.tsv", "w", encoding="utf-8") as fh:
        fh.write("\t".join(QRELS_HEADER) + "\n")
        for qid, docs in qrels.items():
            fh.writelines(f"{qid}\t{doc}\t{grade}\n" for doc, grade in docs.items())
    return root
