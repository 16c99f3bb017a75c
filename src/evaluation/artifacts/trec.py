"""TREC files: the one run writer (`qid Q0 docid rank score tag`) and the LAReQA grid's run/qrels per setting.

Scores are written with ``%.9g``, so every float32 score is recovered exactly (distinct scores stay
distinct and keep their order). Ties: our metrics break score ties by candidate index (lower first), while
trec_eval / ir_measures sort a run by score and break ties by *docid* string; hence metrics recomputed from
a full-depth grid run match the project's numbers exactly only when a query has no tied scores. A depth-k
run additionally truncates the ranking, so AP/recall from it are the usual top-k approximations.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from src.core import keys
from src.data.bitext import BitextDataset
from src.data.lareqa import LareqaDataset
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
    questions: np.ndarray, keep: np.ndarray, candidates: np.ndarray, depth: int, index: Any | None,
    exclude: np.ndarray | None = None,
) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Yield (row numbers into the kept questions, scores, candidate indices), best first per row.

    `exclude` (one candidate per question, -1 none) is left out of the ranking: the search goes one deeper
    and drops it, so every row still lists `depth` candidates (the full ranking lists one fewer).
    """
    search_depth = depth if exclude is None else min(depth + 1, candidates.shape[0])
    for rows, scores, idx in _ranked_all(questions, keep, candidates, search_depth, index):
        if exclude is not None:
            ex = exclude[keep][rows]
            drop = idx == ex[:, None]
            # The excluded column moves last and is cut (a row without it loses its deepest candidate).
            order = np.argsort(drop, axis=1, kind="stable")[:, :idx.shape[1] - 1]
            scores, idx = np.take_along_axis(scores, order, axis=1), np.take_along_axis(idx, order, axis=1)
        yield rows, scores, idx


def _ranked_all(
    questions: np.ndarray, keep: np.ndarray, candidates: np.ndarray, depth: int, index: Any | None
) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """_ranked without exclusions: FAISS top-`depth` when an index is given, else the full ranking."""
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


@dataclass
class QueryGroup:
    """One language's queries against one candidate pool, for one setting's run and qrels files."""

    setting: str
    pool: tuple[str, ...]  # the pool's languages: one index per pool, shared by its query languages
    qids: list[str]  # unique across the setting's file (the pool is part of the id)
    queries: np.ndarray  # (n, d)
    rel: np.ndarray  # (n, max_rel) padded relevant columns into the pool; a row without any is left out
    exclude: np.ndarray | None = None  # (n,) a column per query left out of its pool (-1 none)


def write_trec_groups(
    groups: Iterable[QueryGroup], pools: Mapping[tuple[str, ...], tuple[np.ndarray, np.ndarray]], out_dir: Path,
    depth: int = 100, tag: str = "xlir",
) -> list[Path]:
    """`run.{setting}.trec` (top-`depth`, 0 = full ranking) and `qrels.{setting}.txt` of every setting with a group.

    `pools` maps a pool's languages to (candidate matrix, docids). Queries without a relevant candidate in
    their pool are left out of both files, as the grid excludes them.
    """
    if isinstance(depth, bool) or not isinstance(depth, (int, np.integer)) or depth < 0:
        raise ValueError(f"depth must be an int >= 0 (0 = full ranking), got {depth!r}")
    line = run_line(tag)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    by_setting: dict[str, list[QueryGroup]] = {}
    for g in groups:
        by_setting.setdefault(g.setting, []).append(g)
    indexes: dict[tuple[str, ...], tuple[int, Any | None]] = {}
    paths = []
    for setting in [s for s in keys.SETTINGS if s in by_setting]:
        run_path, qrels_path = out_dir / f"run.{setting}.trec", out_dir / f"qrels.{setting}.txt"
        with run_path.open("w", encoding="utf-8", newline="\n") as run_f, \
                qrels_path.open("w", encoding="utf-8", newline="\n") as qrels_f:
            for g in by_setting[setting]:
                cand, docs = pools[g.pool]
                if g.pool not in indexes:  # one index per candidate pool, reused by every query language
                    k = min(int(depth), cand.shape[0])
                    search_k = k if g.exclude is None else min(k + 1, cand.shape[0])
                    indexes[g.pool] = (k, _exact_index(cand, search_k) if depth and k > 0 else None)
                k, index = indexes[g.pool]
                keep = (g.rel >= 0).any(axis=1)
                if not keep.any() or cand.shape[0] == 0:
                    continue
                kept_qids = np.array([q for q, ok in zip(g.qids, keep) if ok], dtype=object)
                qrels_f.write("".join(f"{q} 0 {docs[j]} 1\n"
                                      for q, row in zip(kept_qids, g.rel[keep]) for j in row if j >= 0))
                for rows, scores, idx in _ranked(g.queries, keep, cand, k, index, g.exclude):
                    step = max(1, _LINES_PER_WRITE // max(idx.shape[1], 1))
                    for s in range(0, len(rows), step):
                        run_f.write(run_lines(line, kept_qids[rows[s:s + step]], docs[idx[s:s + step]],
                                              scores[s:s + step]))
        paths += [run_path, qrels_path]
    return paths


def write_trec(
    dataset: LareqaDataset, emb: Embeddings, out_dir: Path, depth: int = 100, tag: str = "xlir"
) -> list[Path]:
    """`run.{setting}.trec` (top-`depth`, 0 = full ranking) and `qrels.{setting}.txt` for mono, cross, multi.

    qid = ``{qlang}:{xling_id}->{clang}`` (``->multi`` for the pooled pool): the same question is a
    different query per candidate pool, and ids stay unique across a file. docid = candidate uid. Queries
    without a relevant candidate in their pool are left out of both files, as the grid excludes them.
    Sizes: XQuAD-R at depth 100 is 15.7M lines (~1 GB, cross 0.83 GB); depth 0 there is ~340M lines (~23 GB).
    """
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
    pools = pooled(candidates, docids, [(y,) for y in langs] + [tuple(langs)])
    groups = (QueryGroup(setting, targets, [f"{q}->{suffix}" for q in qids[x]], questions[x],
                         relevance(dataset, x, targets))
              for setting in keys.SETTINGS for x, targets, suffix in _trec_jobs(setting, langs))
    return write_trec_groups(groups, pools, out_dir, depth, tag)


def pooled(candidates: Mapping[str, np.ndarray], docids: Mapping[str, np.ndarray],
           pools: Iterable[tuple[str, ...]]) -> dict[tuple[str, ...], tuple[np.ndarray, np.ndarray]]:
    """(candidate matrix, docids) of each pool: its languages' candidates concatenated in order."""
    out = {}
    for pool in pools:
        out[pool] = ((candidates[pool[0]], docids[pool[0]]) if len(pool) == 1 else
                     (np.concatenate([candidates[y] for y in pool], axis=0), np.concatenate([docids[y] for y in pool])))
    return out


def _trec_jobs(setting: str, langs: Sequence[str]) -> Iterator[tuple[str, tuple[str, ...], str]]:
    """(query language, candidate languages, qid suffix) of every query group of a setting."""
    for x in langs:
        if setting == keys.MONO:
            yield x, (x,), x
        elif setting == keys.CROSS:
            yield from ((x, (y,), y) for y in langs if y != x)
        else:
            yield x, tuple(langs), keys.MULTI


def write_bitext_trec(
    dataset: BitextDataset, emb: Embeddings, out_dir: Path, depth: int = 100, tag: str = "xlir"
) -> list[Path]:
    """`run.cross.trec` / `qrels.cross.txt` (and `multi` for N-way sets) of a translation-retrieval set.

    qid = ``{qlang}:{row id}->{clang}`` (``->multi``), docid = ``{lang}:{row id}``; in the pooled run the query
    sentence itself is not a candidate (src/evaluation/bitext.py).
    """
    groups, pools = [], {}
    for t in dataset.tables:
        position = {x: _table_rows(dataset, x, t.name) for x in t.languages}
        vectors = {x: _check_finite(emb.candidates[x][position[x]], f"embeddings of '{x}'") for x in t.languages}
        docids = {x: np.array([f"{x}:{i}" for i in t.ids], dtype=object) for x in t.languages}
        check_ids([i for d in docids.values() for i in d], "sentence id")
        n, identity = len(t.ids), np.arange(len(t.ids), dtype=np.int64)[:, None]
        for x in t.languages:
            for y in t.languages:
                if y != x:
                    pools[(t.name, y)] = (vectors[y], docids[y])
                    groups.append(QueryGroup(keys.CROSS, (t.name, y), [f"{x}:{i}->{y}" for i in t.ids],
                                             vectors[x], identity))
        if dataset.multi:
            pool = (t.name, *t.languages)
            pools[pool] = pooled(vectors, docids, [t.languages])[t.languages]
            for j, x in enumerate(t.languages):
                rel = np.stack([k * n + np.arange(n) for k in range(len(t.languages)) if k != j], axis=1)
                groups.append(QueryGroup(keys.MULTI, pool, [f"{x}:{i}->{keys.MULTI}" for i in t.ids], vectors[x],
                                         rel.astype(np.int64), exclude=j * n + np.arange(n)))
    return write_trec_groups(groups, pools, out_dir, depth, tag)


def _table_rows(dataset: BitextDataset, lang: str, table: str) -> np.ndarray:
    """Positions in `lang`'s query order of the rows of one table."""
    return np.array([k for k, (t, _) in enumerate(dataset.rows(lang)) if t.name == table], dtype=np.int64)
