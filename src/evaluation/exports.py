"""Files from one evaluation: grid CSVs, a heatmap, TREC run/qrels, embeddings, per-query arrays.

Everything here only reads a :class:`GridResult` / :class:`Embeddings` and writes files, so an
evaluation can be re-analysed (other metrics, significance tests, other tools) without re-encoding.

TREC files and their ties: our metrics break score ties by candidate index (lower first), while
trec_eval / ir_measures sort a run by score and break ties by *docid* string. Scores are written with
``%.9g`` so that every float32 score is recovered exactly (distinct scores stay distinct and keep their
order); hence metrics recomputed from a full-depth run match the project's numbers exactly only when a
query has no tied scores. A depth-k run additionally truncates the ranking, so AP/recall from it are the
usual top-k approximations.
"""

from __future__ import annotations

import csv
import json
import math
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from src.data.lareqa import LareqaDataset
from src.evaluation.grid import Embeddings, GridResult, metric_key, relevance

__all__ = [
    "GRID_METRICS",
    "PER_QUERY_METRICS",
    "TREC_SETTINGS",
    "PerQuery",
    "export_all",
    "grid_matrix",
    "load_embeddings",
    "load_per_query",
    "plot_heatmap",
    "save_embeddings",
    "save_per_query",
    "write_grid_csv",
    "write_trec",
]

GRID_METRICS = ("map", "r@1", "r@10", "mrr", "ndcg@10")
PER_QUERY_METRICS = ("map", "mrr", "r@1", "r@10", "ndcg@10", "rank_distance", "n_relevant")
TREC_SETTINGS = ("mono", "cross", "multi")
# Metrics bounded in [0, 1]: their heatmaps share a fixed colour scale so figures compare across runs.
_UNIT_METRICS = re.compile(r"^(map|mrr|r@\d+|ndcg@\d+)$")
# Same row blocks as metrics.ranks_from_embeddings, so full-depth run scores are the very float32
# products the grid ranked (BLAS may round a row differently inside a differently shaped block).
_SCORE_BLOCK = 256
# Lines formatted per write: bounds the memory of the joined string (~70 bytes a line).
_LINES_PER_WRITE = 1 << 20
# FAISS GPU flat search only selects up to this many neighbours (2048 on recent CUDA builds, 1024 on older).
_GPU_MAX_K = 1024
_WHITESPACE = re.compile(r"\s")


# ----------------------------------------------------------------------------------------- grid CSVs
def _nanmean(values: np.ndarray, axis: int) -> np.ndarray:
    """np.nanmean without the 'mean of empty slice' warning: an all-NaN slice is a valid NaN."""
    finite = np.isfinite(values)
    count = finite.sum(axis=axis)
    total = np.where(finite, values, 0.0).sum(axis=axis)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / np.maximum(count, 1), np.nan)


def grid_matrix(result: GridResult, metric: str) -> tuple[np.ndarray, list[str], list[str]]:
    """(L+1, L+1) means: rows = query languages + 'mean', columns = candidate languages + 'multi'."""
    langs = result.languages
    first = next(iter(result.pairs.values()), {})
    if metric not in first:
        raise KeyError(f"metric '{metric}' is not in the grid result (has: {', '.join(first)})")
    mat = np.full((len(langs), len(langs) + 1), np.nan)
    for i, x in enumerate(langs):
        for j, y in enumerate(langs):
            mat[i, j] = result.pair_mean(x, y, metric)[0]
        mat[i, -1] = result.multi_mean(x, metric)[0]
    # Column mean over query languages, skipping NaN pairs as summary() does for its macro averages.
    mat = np.vstack([mat, _nanmean(mat, axis=0)])
    return mat, [*langs, "mean"], [*langs, "multi"]


def _fmt(value: float) -> str:
    """Shortest round-trip text of a float ('nan' for missing), so CSV values equal summary() exactly."""
    return repr(float(value))


def write_grid_csv(result: GridResult, out_dir: Path, metrics: Sequence[str] = GRID_METRICS) -> list[Path]:
    """One `grid_{metric}.csv` per metric (query rows, candidate columns + multi, mean row) and rank_distance.csv."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for metric in metrics:
        mat, rows, cols = grid_matrix(result, metric)
        path = out_dir / f"grid_{metric_key(metric)}.csv"
        with path.open("w", newline="", encoding="utf-8") as f:
            w = csv.writer(f, lineterminator="\n")
            w.writerow(["query_lang", *cols])
            for name, values in zip(rows, mat):
                w.writerow([name, *map(_fmt, values)])
        paths.append(path)
    paths.append(_write_rank_distance_csv(result, out_dir / "rank_distance.csv"))
    return paths


def _write_rank_distance_csv(result: GridResult, path: Path) -> Path:
    """Pooled-setting language bias per query language: mean/median max-min relevant rank, mean #relevant."""
    rows = []
    for x in result.languages:
        rd = np.asarray(result.multi[x]["rank_distance"], dtype=np.float64)
        n_rel = np.asarray(result.multi[x]["n_relevant"], dtype=np.float64)
        finite = rd[np.isfinite(rd)]
        rows.append([result.multi_mean(x, "rank_distance")[0],
                     float(np.median(finite)) if finite.size else math.nan,
                     float(n_rel.mean()) if n_rel.size else math.nan,
                     float(rd.size)])
    mat = np.asarray(rows, dtype=np.float64).reshape(len(rows), 4)
    mean = _nanmean(mat, axis=0)
    mean[3] = mat[:, 3].sum()  # total queries, not a mean
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["query_lang", "rank_distance", "rank_distance_median", "n_relevant_mean", "n_queries"])
        for name, values in zip([*result.languages, "mean"], [*mat, mean]):
            w.writerow([name, *map(_fmt, values[:3]), str(int(values[3]))])
    return path


# ------------------------------------------------------------------------------------------ heatmap
def plot_heatmap(result: GridResult, path: Path, metric: str = "map") -> Path:
    """PNG heatmap of the L x L pair grid plus the pooled (multi) column, each cell annotated."""
    # Figure + Agg canvas directly (no pyplot): no global backend switch or figure registry, so this is
    # safe to call from training callbacks and threads and never opens a window.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.colors import Normalize
    from matplotlib.figure import Figure
    from matplotlib.patches import Rectangle

    mat, _, cols = grid_matrix(result, metric)
    grid = mat[:-1]  # the mean row is in the CSV; the title carries the macro averages instead
    langs = list(result.languages)
    n_rows, n_cols = grid.shape
    key = metric_key(metric)
    s = result.summary([metric])
    macro = {st: s[f"{result.dataset}/{st}/{key}"] for st in ("mono", "cross", "multi")}

    if _UNIT_METRICS.match(metric):
        vmin, vmax = 0.0, 1.0
    else:
        finite = grid[np.isfinite(grid)]
        vmin, vmax = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
        if vmin == vmax:
            vmax = vmin + 1.0
    # Cells ~0.6 x 0.5 in; a floor keeps the title and axis label of small grids from being clipped.
    fig = Figure(figsize=(max(6.0, 1.6 + 0.62 * n_cols), max(3.5, 1.4 + 0.52 * n_rows)), dpi=120)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    cmap = heatmap_cmap()
    norm = Normalize(vmin=vmin, vmax=vmax)
    im = ax.imshow(np.ma.masked_invalid(grid), cmap=cmap, norm=norm, aspect="auto")
    fontsize = 8 if n_cols > 8 else 10
    for i in range(n_rows):
        for j in range(n_cols):
            v = grid[i, j]
            if not np.isfinite(v):
                ax.text(j, i, "–", ha="center", va="center", fontsize=fontsize, color="0.3")
                continue
            # Dark text on light cells and vice versa, judged by the cell colour's luminance.
            r, g, b, _ = cmap(norm(v))
            color = "black" if 0.299 * r + 0.587 * g + 0.114 * b > 0.5 else "white"
            ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=fontsize, color=color)
    # Outline the diagonal: mono pairs are a different setting from their cross neighbours.
    for i in range(min(n_rows, n_cols - 1)):
        ax.add_patch(Rectangle((i - 0.5, i - 0.5), 1, 1, fill=False, edgecolor="white", linewidth=1.5))
    # A gap before the pooled column: it is a different setting, not one more candidate language.
    ax.axvline(n_cols - 1.5, color="white", linewidth=4)
    ax.set_xticks(range(n_cols), cols, fontsize=fontsize + 1)
    ax.set_yticks(range(n_rows), langs, fontsize=fontsize + 1)
    ax.xaxis.tick_top()
    ax.xaxis.set_label_position("top")
    ax.set_xlabel("candidate language (multi = all languages pooled)", fontsize=fontsize + 1)
    ax.set_ylabel("query language", fontsize=fontsize + 1)
    ax.tick_params(length=0)
    fig.colorbar(im, ax=ax, fraction=0.04, pad=0.02).ax.tick_params(labelsize=fontsize)
    ax.set_title(f"{result.dataset} · {metric}\nmono {macro['mono']:.3f} · cross {macro['cross']:.3f} · "
                 f"multi {macro['multi']:.3f}", fontsize=fontsize + 2, pad=8)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png", dpi=120)
    return path


def heatmap_cmap():
    """viridis with grey for missing pairs (NaN cells are masked)."""
    import matplotlib

    return matplotlib.colormaps["viridis"].with_extremes(bad="0.85")


# --------------------------------------------------------------------------------------------- TREC
def _check_ids(ids: Sequence[str], what: str) -> None:
    """TREC files are whitespace-separated, so an id with a space would shift every later column."""
    bad = next((i for i in ids if not i or _WHITESPACE.search(i)), None)
    if bad is not None:
        raise ValueError(f"{what} {bad!r} is empty or contains whitespace; it cannot be written to a TREC file")


def _check_finite(matrix: np.ndarray, what: str) -> np.ndarray:
    """float32 C-contiguous copy for FAISS/BLAS; NaN/inf would make the ranking undefined."""
    m = np.ascontiguousarray(matrix, dtype=np.float32)
    if m.ndim != 2:
        raise ValueError(f"{what} must be a 2-D matrix, got shape {m.shape}")
    if not np.isfinite(m).all():
        raise ValueError(f"{what} contains NaN or inf; rankings are undefined")
    return m


class _TopK:
    """Top-k inner-product search over one candidate matrix (FAISS IndexFlatIP, on GPU when there is one)."""

    def __init__(self, candidates: np.ndarray, k: int) -> None:
        import faiss

        index = faiss.IndexFlatIP(candidates.shape[1])
        index.add(candidates)
        # faiss-cpu has no GPU symbols; the GPU build selects at most _GPU_MAX_K neighbours per query.
        n_gpus = faiss.get_num_gpus() if hasattr(faiss, "get_num_gpus") else 0
        if n_gpus > 0 and k <= _GPU_MAX_K and hasattr(faiss, "index_cpu_to_all_gpus"):
            index = faiss.index_cpu_to_all_gpus(index)
        self.index, self.k = index, k

    def search(self, queries: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(scores, indices), each (n, k), best first; ties re-ordered by lower candidate index like the grid."""
        scores, idx = self.index.search(queries, self.k)
        # FAISS leaves the order of equal scores unspecified; lexsort makes it (-score, index), the grid's order.
        order = np.lexsort((idx, -scores), axis=-1)
        return np.take_along_axis(scores, order, axis=1), np.take_along_axis(idx, order, axis=1)


def _ranked(
    questions: np.ndarray, keep: np.ndarray, candidates: np.ndarray, depth: int, topk: _TopK | None
) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Yield (row numbers into the kept questions, scores, candidate indices), best first per row."""
    if topk is not None:
        # One FAISS call for all questions of the language: the library batches and threads it.
        scores, idx = topk.search(questions[keep])
        yield np.arange(scores.shape[0]), scores, idx
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


def _run_lines(qids: np.ndarray, docids: np.ndarray, scores: np.ndarray, idx: np.ndarray, line: str) -> str:
    """Run lines for a block of queries, formatted by C-level map/join (13M lines take seconds, not minutes)."""
    n, k = idx.shape
    ranks = [str(r) for r in range(1, k + 1)] * n
    # Every column is a flat Python list, and one bound str.format is mapped over them: no bytecode per line.
    return "".join(map(line.format, np.repeat(qids, k).tolist(), docids[idx.ravel()].tolist(), ranks,
                       scores.ravel().tolist()))


def _trec_jobs(setting: str, langs: Sequence[str]) -> Iterator[tuple[str, tuple[str, ...], str]]:
    """(query language, candidate languages, qid suffix) of every query group of a setting."""
    for x in langs:
        if setting == "mono":
            yield x, (x,), x
        elif setting == "cross":
            yield from ((x, (y,), y) for y in langs if y != x)
        else:
            yield x, tuple(langs), "multi"


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
    _check_ids([tag], "run tag")
    langs = dataset.languages
    qids, docids, questions, candidates = {}, {}, {}, {}
    for x in langs:
        split = dataset.by_lang[x]
        _check_ids([q.qid for q in split.questions], "question id")
        _check_ids([c.uid for c in split.candidates], "candidate uid")
        qids[x] = [q.qid for q in split.questions]
        docids[x] = np.array([c.uid for c in split.candidates], dtype=object)
        questions[x] = _check_finite(emb.questions[x], f"question embeddings of '{x}'")
        candidates[x] = _check_finite(emb.candidates[x], f"candidate embeddings of '{x}'")
        if questions[x].shape[0] != len(split.questions) or candidates[x].shape[0] != len(split.candidates):
            raise ValueError(f"embeddings of '{x}' have {questions[x].shape[0]} question / "
                             f"{candidates[x].shape[0]} candidate rows, the dataset {len(split.questions)} / "
                             f"{len(split.candidates)}")
    # Braces in the tag would be read as format fields by str.format.
    line = "{} Q0 {} {} {:.9g} " + tag.replace("{", "{{").replace("}", "}}") + "\n"
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    pools: dict[tuple[str, ...], tuple[np.ndarray, np.ndarray, _TopK | None]] = {}
    paths = []
    for setting in TREC_SETTINGS:
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
                    pools[targets] = (cand, docs, _TopK(cand, k) if depth and k > 0 else None)
                cand, docs, topk = pools[targets]
                rel = relevance(dataset, x, targets)
                keep = (rel >= 0).any(axis=1)
                if not keep.any() or cand.shape[0] == 0:
                    continue
                kept_qids = np.array([f"{q}->{suffix}" for q, ok in zip(qids[x], keep) if ok], dtype=object)
                qrels_f.write("".join(f"{q} 0 {docs[j]} 1\n"
                                      for q, row in zip(kept_qids, rel[keep]) for j in row if j >= 0))
                for rows, scores, idx in _ranked(questions[x], keep, cand, int(depth), topk):
                    step = max(1, _LINES_PER_WRITE // max(idx.shape[1], 1))
                    for s in range(0, len(rows), step):
                        run_f.write(_run_lines(kept_qids[rows[s:s + step]], docs, scores[s:s + step],
                                               idx[s:s + step], line))
        paths += [run_path, qrels_path]
    return paths


# --------------------------------------------------------------------------------------- embeddings
_EMB_README = """\
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
    readme.write_text(_EMB_README.format(dataset=dataset.name, n_langs=len(dataset.languages),
                                         langs=", ".join(dataset.languages)), encoding="utf-8")
    paths.append(readme)
    return paths


# export_all's `save_embeddings` flag (the name callers pass) shadows the function inside it.
_save_embeddings = save_embeddings


def load_embeddings(out_dir: Path, languages: Sequence[str]) -> Embeddings:
    """Read back the `.npy` files written by :func:`save_embeddings`."""
    out_dir = Path(out_dir)
    return Embeddings(
        questions={x: np.load(out_dir / f"{x}.questions.npy") for x in languages},
        candidates={x: np.load(out_dir / f"{x}.candidates.npy") for x in languages},
    )


# ---------------------------------------------------------------------------------- per-query arrays
@dataclass
class PerQuery:
    """Per-query metric arrays of one grid (keys `cross/de-zh/map`, `mono/de-de/map`, `multi/de/map`)."""

    dataset: str
    languages: tuple[str, ...]
    qids: dict[str, np.ndarray]  # query language -> qids in the row order of every array of that language
    arrays: dict[str, np.ndarray]

    def grid(self) -> GridResult:
        """Rebuild the GridResult (e.g. for summary()) from the flat arrays."""
        res = GridResult(dataset=self.dataset, languages=self.languages)
        for key, values in self.arrays.items():
            setting, group, metric = key.split("/")
            if setting == "multi":
                res.multi.setdefault(group, {})[metric] = values
            else:
                x, y = group.split("-")
                res.pairs.setdefault((x, y), {})[metric] = values
        return res


def _pair_key(x: str, y: str) -> str:
    """`mono/x-x` or `cross/x-y`: the setting is in the key so files can be filtered by prefix."""
    return f"{'mono' if x == y else 'cross'}/{x}-{y}"


def save_per_query(result: GridResult, out_dir: Path, dataset: LareqaDataset) -> Path:
    """Compressed `per_query.npz` with every pair's and the pooled setting's per-query arrays plus qid order.

    `dataset` supplies the qids (GridResult only holds row-ordered arrays); they let paired significance
    tests check that two runs scored the same queries in the same order.
    """
    if tuple(dataset.languages) != tuple(result.languages):
        raise ValueError(f"dataset languages {dataset.languages} differ from the result's {result.languages}")
    arrays: dict[str, np.ndarray] = {
        "meta/dataset": np.array(result.dataset),
        "meta/languages": np.array(result.languages, dtype=str),
    }
    for x in result.languages:
        qids = np.array([q.qid for q in dataset.by_lang[x].questions], dtype=str)
        arrays[f"qids/{x}"] = qids
        groups = [(_pair_key(x, y), result.pairs[(x, y)]) for y in result.languages]
        groups.append((f"multi/{x}", result.multi[x]))
        for prefix, metrics in groups:
            for metric, values in metrics.items():
                values = np.asarray(values)
                if values.shape != (len(qids),):
                    raise ValueError(f"{prefix}/{metric} has shape {values.shape}, expected ({len(qids)},)")
                arrays[f"{prefix}/{metric}"] = values
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "per_query.npz"
    np.savez_compressed(path, **arrays)
    return path


def load_per_query(path: Path) -> PerQuery:
    """Read a `per_query.npz` written by :func:`save_per_query` (no pickles: plain arrays only)."""
    with np.load(Path(path), allow_pickle=False) as npz:
        data = {k: npz[k] for k in npz.files}
    languages = tuple(str(x) for x in data.pop("meta/languages"))
    dataset = str(data.pop("meta/dataset"))
    qids = {k.split("/", 1)[1]: v for k, v in data.items() if k.startswith("qids/")}
    arrays = {k: v for k, v in data.items() if not k.startswith("qids/")}
    return PerQuery(dataset=dataset, languages=languages, qids=qids, arrays=arrays)


# ------------------------------------------------------------------------------------------ all files
def export_all(
    dataset: LareqaDataset,
    emb: Embeddings,
    result: GridResult,
    out_dir: Path,
    trec_depth: int = 100,
    save_embeddings: bool = False,
    heatmap_metrics: Sequence[str] = ("map",),
) -> Path:
    """Every export of one evaluation set into `out_dir` (embeddings under `embeddings/` if asked); returns it."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    write_grid_csv(result, out_dir)
    for metric in heatmap_metrics:
        plot_heatmap(result, out_dir / f"heatmap_{metric_key(metric)}.png", metric)
    save_per_query(result, out_dir, dataset)
    write_trec(dataset, emb, out_dir / "trec", depth=trec_depth)
    if save_embeddings:
        # Opt-in: ~40 MB of float32 per 13k texts at 384-d, large for an MLflow artifact.
        _save_embeddings(dataset, emb, out_dir / "embeddings")
    return out_dir
