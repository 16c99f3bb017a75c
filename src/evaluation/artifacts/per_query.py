"""The per-query file of one LAReQA evaluation set, `per_query.npz`: its format, writer and reader.

A numpy ``.npz`` of plain arrays (no pickles), read by src/report.py for paired significance tests and
per-language heatmaps. Arrays (L = languages, n_x = query language x's questions)::

    name                     shape   dtype  content
    meta/dataset             ()      str    the evaluation set's name
    meta/languages           (L,)    str    the grid's languages, in order
    qids/{x}                 (n_x,)  str    x's question ids ({x}:{xling_id}), the row order of x's arrays
    labels/{x}               (n_x,)  str    optional: a label per query (SIB-200 topic, TICO-19 origin)
    clusters/{x}             (n_x,)  str    optional: each query's randomisation unit when it is not its
                                            qid's id part (NTREX lines: their document)
    meta/label_name          ()      str    optional: what the labels are ("topic", "origin")
    mono/{x}-{x}/{metric}    (n_x,)  *      x's questions against x's candidates
    cross/{x}-{y}/{metric}   (n_x,)  *      x's questions against y's candidates, y != x
    multi/{x}/{metric}       (n_x,)  *      x's questions against the candidates of all languages pooled

Translation-retrieval sets (src/evaluation/bitext.py) have no mono arrays, and Tatoeba no multi ones; its
English rows outside a pair's table are NaN in that pair's arrays.

``{metric}`` is each of PER_QUERY_METRICS: map, mrr, r@1, r@10, ndcg@10 (float, NaN for a question
without a relevant candidate in the pool), rank_distance (float; the pooled setting's language bias) and
n_relevant (int). Array names are built and split by src/core/keys.py (array_key, parse_array_key).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np

from src.core import keys
from src.evaluation.grid import GridResult

FILE_NAME = "per_query.npz"
# The arrays metrics.per_query_metrics returns for the grid's cut-offs.
PER_QUERY_METRICS = ("map", "mrr", *(f"r@{k}" for k in keys.RECALL_CUTOFFS), f"ndcg@{keys.NDCG_CUTOFF}",
                     keys.RANK_DISTANCE, "n_relevant")
_DATASET, _LANGUAGES, _QIDS = "meta/dataset", "meta/languages", "qids/"
_LABELS, _LABEL_NAME, _CLUSTERS = "labels/", "meta/label_name", "clusters/"


class QuerySet(Protocol):
    """What the per-query file needs of an evaluation set: its languages, qids and labels per language."""

    languages: tuple[str, ...]

    def query_ids(self, lang: str) -> Sequence[str]: ...

    def labels(self, lang: str) -> Sequence[str] | None: ...

    def clusters(self, lang: str) -> Sequence[str] | None: ...


@dataclass
class PerQuery:
    """Per-query metric arrays of one grid (names as in the module docstring) and each language's qids."""

    dataset: str
    languages: tuple[str, ...]
    qids: dict[str, np.ndarray]  # query language -> qids in the row order of every array of that language
    arrays: dict[str, np.ndarray]
    labels: dict[str, np.ndarray] = field(default_factory=dict)  # query language -> a label per row, if any
    label_name: str | None = None
    clusters: dict[str, np.ndarray] = field(default_factory=dict)  # query language -> randomisation unit per row

    def grid(self) -> GridResult:
        """Rebuild the GridResult (e.g. for summary()) from the flat arrays."""
        res = GridResult(dataset=self.dataset, languages=self.languages)
        for name, values in self.arrays.items():
            _, x, y, metric = keys.parse_array_key(name)
            if y is None:
                res.multi.setdefault(x, {})[metric] = values
            else:
                res.pairs.setdefault((x, y), {})[metric] = values
        return res


def save_per_query(result: GridResult, out_dir: Path, dataset: QuerySet, label_name: str | None = None) -> Path:
    """Write `out_dir/per_query.npz` (compressed): every pair's and the pooled setting's arrays plus qid order.

    `dataset` supplies the qids (GridResult only holds row-ordered arrays); they let paired significance
    tests check that two runs scored the same queries in the same order.
    """
    if tuple(dataset.languages) != tuple(result.languages):
        raise ValueError(f"dataset languages {dataset.languages} differ from the result's {result.languages}")
    arrays: dict[str, np.ndarray] = {
        _DATASET: np.array(result.dataset),
        _LANGUAGES: np.array(result.languages, dtype=str),
    }
    if label_name is not None:
        arrays[_LABEL_NAME] = np.array(label_name)
    for x in result.languages:
        qids = np.array(dataset.query_ids(x), dtype=str)
        arrays[_QIDS + x] = qids
        for prefix, values in ((_LABELS, dataset.labels(x)), (_CLUSTERS, dataset.clusters(x))):
            if values is not None:
                arrays[prefix + x] = np.array(values, dtype=str)
        groups = [(y, result.pairs[(x, y)]) for y in result.languages if (x, y) in result.pairs]
        groups += [(None, result.multi[x])] if x in result.multi else []
        for y, metrics in groups:
            for metric, values in metrics.items():
                name = keys.array_key(keys.MULTI, x, metric) if y is None else keys.pair_array_key(x, y, metric)
                values = np.asarray(values)
                if values.shape != (len(qids),):
                    raise ValueError(f"{name} has shape {values.shape}, expected ({len(qids)},)")
                arrays[name] = values
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / FILE_NAME
    np.savez_compressed(path, **arrays)
    return path


def load_per_query(path: Path) -> PerQuery:
    """Read a `per_query.npz` written by :func:`save_per_query` (no pickles: plain arrays only)."""
    with np.load(Path(path), allow_pickle=False) as npz:
        data = {k: npz[k] for k in npz.files}
    languages = tuple(str(x) for x in data.pop(_LANGUAGES))
    dataset = str(data.pop(_DATASET))
    label_name = str(data.pop(_LABEL_NAME)) if _LABEL_NAME in data else None
    qids = {k.removeprefix(_QIDS): v for k, v in data.items() if k.startswith(_QIDS)}
    labels = {k.removeprefix(_LABELS): v for k, v in data.items() if k.startswith(_LABELS)}
    clusters = {k.removeprefix(_CLUSTERS): v for k, v in data.items() if k.startswith(_CLUSTERS)}
    arrays = {k: v for k, v in data.items() if not k.startswith((_QIDS, _LABELS, _CLUSTERS))}
    return PerQuery(dataset=dataset, languages=languages, qids=qids, arrays=arrays, labels=labels,
                    label_name=label_name, clusters=clusters)
