"""TREC files: the one run writer (`qid Q0 docid rank score tag`) and the LAReQA grid's run/qrels per setting.

Scores are written with ``%.9g``, so every float32 score is recovered exactly (distinct scores stay
distinct and keep their order). Ties: our metrics break score ties by candidate index (lower first), while
trec_eval / ir_measures sort a run by score and break ties by *docid* string; hence metrics recomputed from
a full-depth grid run match the project's numbers exactly only when a query has no tied scores. A depth-k
run additionally truncates the ranking, so AP/recall from it are the usual top-k approximations.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from src.data.lareqa import LareqaDataset
from src.evaluation import keys
from src.evaluation.grid import Embeddings, relevance

# Same row blocks as metrics.ranks_from_embeddings, so full-depth run scores are the very float32
# products the grid ranked (BLAS may round a row differently inside a differently shaped block).
_SCORE_BLOCK = 256
# Lines formatted per write: bounds the memory of the joined string (~70 bytes a line).
_LINES_PER_WRITE = 1 << 20
_WHITESPACE = re.compile(r"\s")


def check_ids(ids: Sequence[str], what: str) -> None:
    """TREC files are whitespace-separated, so an id with a space would shift every later column."""
    bad = next((i for i in ids if not i or _WHITESPACE.search(i)), None)
    if bad is not None:
        raise ValueError(f"{what} {bad!r} is empty or contains whitespace; it cannot be written to a TREC file")


def run_line(tag: str = "xlir") -> str:
    """The str.format template of one run line for fields (qid, docid, rank, score); the tag is checked."""
    check_ids([tag], "run tag")
    # Braces in the tag would be read as format fields by str.format.
    return "{} Q0 {} {} {:.9g} " + tag.replace("{", "{{").replace("}", "}}") + "\n"


def run_lines(line: str, qids: Sequence[str], docids: np.ndarray, scores: np.ndarray,
              keep: np.ndarray | None = None) -> str:
    """Run lines of (n, k) docids and scores, best first per query; `keep` masks out (n, k) entries.

    Formatted by C-level map/join over flat Python lists, one bound str.format and no bytecode per line:
    13M lines take seconds, not minutes. Ranks are column positions + 1.
    """
    n, k = docids.shape
    columns = [np.repeat(np.asarray(qids, dtype=object), k), docids.ravel(),
               np.tile(np.array([str(r) for r in range(1, k + 1)], dtype=object), n), scores.ravel()]
    if keep is not None:
        mask = np.asarray(keep, dtype=bool).ravel()
        columns = [c[mask] for c in columns]
    return "".join(map(line.format, *(c.tolist() for c in columns)))


def write_run(path: Path, qids: Sequence[str], docids: np.ndarray, scores: np.ndarray, tag: str = "xlir",
              keep: np.ndarray | None = None) -> Path:
    """A whole run into `path`: (n, k) docids and scores, best first per query, masked by `keep`."""
    line = run_line(tag)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    step = max(1, _LINES_PER_WRITE // max(docids.shape[1], 1))
    with path.open("w", encoding="utf-8", newline="\n") as fh:
        for s in range(0, len(qids), step):
            fh.write(run_lines(line, qids[s:s + step], docids[s:s + step], scores[s:s + step],
                               None if keep is None else keep[s:s + step]))
    return path


def _check_finite(matrix: np.ndarray, what: str) -> np.ndarray:
    """float32 C-contiguous copy for FAISS/BLAS; NaN/inf would make the ranking undefined."""
    m = np.ascontiguousarray(matrix, dtype=np.float32)
    if m.ndim != 2:
        raise ValueError(f"{what} must be a 2-D matrix, got shape {m.shape}")
    if not np.isfinite(m).all():
        raise ValueError(f"{what} contains NaN or inf; rankings are undefined")
    return m


def _ranked(
    questions: np.ndarray, keep: np.ndarray, candidates: np.ndarray, depth: int, index: Any | None
) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Yield (row numbers into the kept questions, scores, candidate indices), best first per row."""
    if index is not None:
        from src.evaluation.index import order_ties_by_id, search

        # One FAISS call for all questions of the language: the library batches and threads it.
        kept = questions[keep]
        scores, idx = search(index, kept, depth, batch_size=len(kept))
        yield (np.arange(scores.shape[0]), *order_ties_by_id(scores, idx))
        return
    # Full ranking: the same float32 block products as the grid, then a stable argsort of -score, which
    # is exactly the grid's tie-break (lower candidate index first).
    kept_before = np.concatenate([[0], np.cumsum(keep)])
    c_t = candidates.T
    for start in range(0, questions.shape[0], _SCORE_BLOCK):
        block = questions[start:start + _SCORE_BLOCK] @ c_t
        sel = keep[start:start + _SCORE_BLOCK]
        if not sel.any():
            continue
        block = block[sel]
        idx = np.argsort(-block, axis=1, kind="stable")
        yield (np.arange(kept_before[start], kept_before[start] + block.shape[0]),
               np.take_along_axis(block, idx, axis=1), idx)


def _exact_index(candidates: np.ndarray, k: int) -> Any:
    """An exact inner-product index of one candidate pool for top-k search (index.py, the one FAISS path)."""
    # Imported here: reading per-query files (the report) loads this package but never needs FAISS.
    from src.evaluation.index import IndexSpec, build_index

    return build_index(IndexSpec.exact(), candidates.shape[1], candidates, k=k)


def _trec_jobs(setting: str, langs: Sequence[str]) -> Iterator[tuple[str, tuple[str, ...], str]]:
    """(query language, candidate languages, qid suffix) of every query group of a setting."""
    for x in langs:
        if setting == keys.MONO:
            yield x, (x,), x
        elif setting == keys.CROSS:
            yield from ((x, (y,), y) for y in langs if y != x)
        else:
            yield x, tuple(langs), keys.MULTI


def write_trec(
    dataset: LareqaDataset, emb: Embeddings, out_dir: Path, depth: int = 100, tag: str = "xlir"
) -> list[Path]:
    """`run.{setting}.trec` (top-`depth`, 0 = full ranking) and `qrels.{setting}.txt` for mono, cross, multi.

    qid = ``{qlang}:{xling_id}->{clang}`` (``->multi`` for the pooled pool): the same question is a
    different query per candidate pool, and ids stay unique across a file. docid = candidate uid. Queries
    without a relevant candidate in their pool are left out of both files, as the grid excludes them.
    Sizes: XQuAD-R at depth 100 is 15.7M lines (~1 GB, cross 0.83 GB); depth 0 there is ~340M lines (~23 GB).
    """
    if isinstance(depth, bool) or not isinstance(depth, (int, np.integer)) or depth < 0:
        raise ValueError(f"depth must be an int >= 0 (0 = full ranking), got {depth!r}")
    line = run_line(tag)
    langs = dataset.languages
    qids, docids, questions, candidates = {}, {}, {}, {}
    for x in langs:
        split = dataset.by_lang[x]
        check_ids([q.qid for q in split.questions], "question id")
        check_ids([c.uid for c in split.candidates], "candidate uid")
        qids[x] = [q.qid for q in split.questions]
        docids[x] = np.array([c.uid for c in split.candidates], dtype=object)
        questions[x] = _check_finite(emb.questions[x], f"question embeddings of '{x}'")
        candidates[x] = _check_finite(emb.candidates[x], f"candidate embeddings of '{x}'")
        if questions[x].shape[0] != len(split.questions) or candidates[x].shape[0] != len(split.candidates):
            raise ValueError(f"embeddings of '{x}' have {questions[x].shape[0]} question / "
                             f"{candidates[x].shape[0]} candidate rows, the dataset {len(split.questions)} / "
                             f"{len(split.candidates)}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    pools: dict[tuple[str, ...], tuple[np.ndarray, np.ndarray, int, Any | None]] = {}
    paths = []
    for setting in keys.SETTINGS:
        run_path, qrels_path = out_dir / f"run.{setting}.trec", out_dir / f"qrels.{setting}.txt"
        with run_path.open("w", encoding="utf-8", newline="\n") as run_f, \
                qrels_path.open("w", encoding="utf-8", newline="\n") as qrels_f:
            for x, targets, suffix in _trec_jobs(setting, langs):
                if targets not in pools:  # one index per candidate pool, reused by every query language
                    cand = candidates[targets[0]] if len(targets) == 1 else \
                        np.concatenate([candidates[y] for y in targets], axis=0)
                    docs = docids[targets[0]] if len(targets) == 1 else \
                        np.concatenate([docids[y] for y in targets])
                    k = min(int(depth), cand.shape[0])
                    pools[targets] = (cand, docs, k, _exact_index(cand, k) if depth and k > 0 else None)
                cand, docs, k, index = pools[targets]
                rel = relevance(dataset, x, targets)
                keep = (rel >= 0).any(axis=1)
                if not keep.any() or cand.shape[0] == 0:
                    continue
                kept_qids = np.array([f"{q}->{suffix}" for q, ok in zip(qids[x], keep) if ok], dtype=object)
                qrels_f.write("".join(f"{q} 0 {docs[j]} 1\n"
                                      for q, row in zip(kept_qids, rel[keep]) for j in row if j >= 0))
                for rows, scores, idx in _ranked(questions[x], keep, cand, k, index):
                    step = max(1, _LINES_PER_WRITE // max(idx.shape[1], 1))
                    for s in range(0, len(rows), step):
                        run_f.write(run_lines(line, kept_qids[rows[s:s + step]], docs[idx[s:s + step]],
                                              scores[s:s + step]))
        paths += [run_path, qrels_path]
    return paths
