"""Grid CSVs of one evaluation set: `grid_{metric}.csv` per summary metric and `rank_distance.csv`."""

from __future__ import annotations

import csv
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from src.core import keys
from src.evaluation.grid import GridResult

MEAN_ROW = "mean"


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
    return mat, [*langs, MEAN_ROW], [*langs, keys.MULTI]


def _fmt(value: float) -> str:
    """Shortest round-trip text of a float ('nan' for missing), so CSV values equal summary() exactly."""
    return repr(float(value))


def write_grid_csv(result: GridResult, out_dir: Path, metrics: Sequence[str] = keys.GRID_METRICS) -> list[Path]:
    """One `grid_{metric}.csv` per metric (query rows, candidate columns + multi, mean row) and rank_distance.csv."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for metric in metrics:
        mat, rows, cols = grid_matrix(result, metric)
        path = out_dir / f"grid_{keys.logged_name(metric)}.csv"
        with path.open("w", newline="", encoding="utf-8") as f:
            w = csv.writer(f, lineterminator="\n")
            w.writerow(["query_lang", *cols])
            for name, values in zip(rows, mat):
                w.writerow([name, *map(_fmt, values)])
        paths.append(path)
    if result.multi:  # the pooled setting's bias; Tatoeba has no pooled setting
        paths.append(_write_rank_distance_csv(result, out_dir / f"{keys.RANK_DISTANCE}.csv"))
    return paths


def write_breakdown_csv(dataset: Any, result: GridResult, path: Path, metrics: Sequence[str] = ("map", "r@1")) -> Path:
    """`by_{label}.csv`: macro values of each scored setting over the rows of each label (SIB-200 topic, ...)."""
    from src.evaluation.bitext import label_breakdown

    tables = {m: label_breakdown(dataset, result, m) for m in metrics}
    labels = list(tables[metrics[0]])
    settings = [s for s in (keys.CROSS, keys.MULTI) if s in result.settings]
    with Path(path).open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow([dataset.label_name, "rows", *[f"{s}_{keys.logged_name(m)}" for m in metrics for s in settings],
                    *([f"{keys.MULTI}_{keys.RANK_DISTANCE}"] if keys.MULTI in settings else [])])
        for label in labels:
            row = tables[metrics[0]][label]
            w.writerow([label, str(int(row["rows"])), *[_fmt(tables[m][label][s]) for m in metrics for s in settings],
                        *([_fmt(row[keys.RANK_DISTANCE])] if keys.MULTI in settings else [])])
    return Path(path)


def _write_rank_distance_csv(result: GridResult, path: Path) -> Path:
    """Pooled-setting language bias per query language: mean/median max-min relevant rank, mean #relevant."""
    rows = []
    for x in result.languages:
        rd = np.asarray(result.multi[x][keys.RANK_DISTANCE], dtype=np.float64)
        n_rel = np.asarray(result.multi[x]["n_relevant"], dtype=np.float64)
        finite = rd[np.isfinite(rd)]
        rows.append([result.multi_mean(x, keys.RANK_DISTANCE)[0],
                     float(np.median(finite)) if finite.size else math.nan,
                     float(n_rel.mean()) if n_rel.size else math.nan,
                     float(rd.size)])
    mat = np.asarray(rows, dtype=np.float64).reshape(len(rows), 4)
    mean = _nanmean(mat, axis=0)
    mean[3] = mat[:, 3].sum()  # total queries, not a mean
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["query_lang", "rank_distance", "rank_distance_median", "n_relevant_mean", "n_queries"])
        for name, values in zip([*result.languages, MEAN_ROW], [*mat, mean]):
            w.writerow([name, *map(_fmt, values[:3]), str(int(values[3]))])
    return path
