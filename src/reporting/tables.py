"""Report tables from run records: the paper's Tables 1-2 (macro) and 3-8 (per language), with significance."""

from __future__ import annotations

import csv
import itertools
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from src.reporting.stats import SETTINGS, holm, mean_ci, paired_sign_flip_test, query_contributions

ALPHA_LEVEL = 0.05
# Columns of the macro table per evaluation set: (metric key suffix, per-query setting, per-query metric).
MACRO_COLUMNS = (("mono/map", "mono", "map"), ("cross/map", "cross", "map"), ("multi/map", "multi", "map"),
                 ("multi/rank_distance", "multi", "rank_distance"))
LOWER_IS_BETTER = ("rank_distance",)  # bias: fewer ranks between a query's relevant passages is better


@dataclass
class RunRecord:
    """One training run as read from MLflow: what it was (model, sampler, seed) and what it scored."""

    run_id: str
    name: str
    status: str
    model: str
    sampling: str  # label, e.g. `xx` or `hybrid-a0.5`
    alpha: float | None
    seed: str
    eval_sets: tuple[str, ...]
    metrics: dict[str, float] = field(default_factory=dict)
    error: str = ""

    @property
    def group(self) -> tuple[str, str]:
        """Row of the macro table: (model, sampling label)."""
        return self.model, self.sampling


@dataclass
class Comparison:
    """One paired test between two samplers of a model on one column."""

    column: str  # e.g. `xquad_r/cross/map`
    model: str
    a: str
    b: str
    mean_a: float
    mean_b: float
    p: float
    p_holm: float = float("nan")

    @property
    def significant(self) -> bool:
        """Holm-adjusted p below the 0.05 level."""
        return self.p_holm < ALPHA_LEVEL

    def winner(self) -> str | None:
        """The better sampler when the difference is significant, else None."""
        if not self.significant:
            return None
        lower = self.column.rsplit("/", 1)[-1] in LOWER_IS_BETTER
        return self.a if (self.mean_a < self.mean_b) == lower else self.b


def columns(eval_sets: Sequence[str]) -> list[str]:
    """Macro-table metric keys: mono / cross / multi mAP and the rank-distance bias per evaluation set."""
    return [f"{s}/{suffix}" for s in eval_sets for suffix, _, _ in MACRO_COLUMNS]


def group_runs(runs: Sequence[RunRecord]) -> dict[tuple[str, str], list[RunRecord]]:
    """Runs by (model, sampling label), seeds together, rows sorted."""
    out: dict[tuple[str, str], list[RunRecord]] = {}
    for run in sorted(runs, key=lambda r: (r.model, r.sampling, r.seed)):
        out.setdefault(run.group, []).append(run)
    return out


def best_rows(cells: Mapping[tuple[str, str], tuple[float, float]], column: str) -> set[tuple[str, str]]:
    """Rows holding the best mean of a column (max, or min for lower-is-better metrics)."""
    finite = {k: v[0] for k, v in cells.items() if math.isfinite(v[0])}
    if len(finite) < 2:  # a single row is trivially best: mark nothing
        return set()
    pick = min if column.rsplit("/", 1)[-1] in LOWER_IS_BETTER else max
    best = pick(finite.values())
    return {k for k, v in finite.items() if v == best}


def significance(groups: Mapping[tuple[str, str], list[RunRecord]], cols: Sequence[str],
                 per_query: Callable[[RunRecord, str], tuple[tuple[str, ...], dict[str, np.ndarray]] | None],
                 n_resamples: int = 9999, seed: int = 0) -> list[Comparison]:
    """Paired tests between every two samplers of a model on every column, Holm-corrected together.

    `per_query(run, eval_set)` gives (languages, per-query arrays) or None when the run saved none; a
    group's arrays are averaged over its seeds (the same queries in every run) before testing.
    """
    by_column = {c: next((s, m) for suffix, s, m in MACRO_COLUMNS if c.endswith("/" + suffix)) for c in cols}
    averaged: dict[tuple[tuple[str, str], str], tuple[tuple[str, ...], dict[str, np.ndarray]] | None] = {}
    out: list[Comparison] = []
    models = sorted({m for m, _ in groups})
    for column in cols:
        eval_set = column.split("/", 1)[0]
        setting, metric = by_column[column]
        for model in models:
            samplers = [s for m, s in groups if m == model]
            for a, b in itertools.combinations(samplers, 2):
                shares = []
                for sampler in (a, b):
                    key = ((model, sampler), eval_set)
                    if key not in averaged:
                        averaged[key] = average_per_query([per_query(r, eval_set) for r in groups[model, sampler]])
                    if averaged[key] is None:
                        break
                    langs, arrays = averaged[key]  # type: ignore[misc]
                    shares.append(query_contributions(arrays, langs, setting, metric))
                if len(shares) < 2:
                    continue
                out.append(Comparison(column, model, a, b, float(shares[0].sum()), float(shares[1].sum()),
                                      paired_sign_flip_test(shares[0], shares[1], n_resamples, seed)))
    for comp, p in zip(out, holm([c.p for c in out])):
        comp.p_holm = float(p)
    return out


def average_per_query(
    items: Sequence[tuple[tuple[str, ...], dict[str, np.ndarray]] | None],
) -> tuple[tuple[str, ...], dict[str, np.ndarray]] | None:
    """Element-wise mean of several runs' per-query arrays (None if any run has none)."""
    if not items or any(i is None for i in items):
        return None
    langs, first = items[0]  # type: ignore[misc]
    for other_langs, arrays in items[1:]:  # type: ignore[misc]
        if other_langs != langs or arrays.keys() != first.keys():
            raise ValueError(f"runs evaluated different languages or settings ({langs} vs {other_langs})")
    return langs, {k: np.mean([i[1][k] for i in items], axis=0) for k in first}  # type: ignore[index]


def fmt(mean: float, ci: float, digits: int = 3) -> str:
    """`0.512 ± 0.010`, or the mean alone when there is no interval."""
    if not math.isfinite(mean):
        return "–"
    return f"{mean:.{digits}f}" + (f" ± {ci:.{digits}f}" if math.isfinite(ci) else "")


def macro_table(groups: Mapping[tuple[str, str], list[RunRecord]], cols: Sequence[str],
                comparisons: Sequence[Comparison]) -> tuple[list[str], list[list[str]], list[dict[str, object]]]:
    """(markdown header, markdown rows, csv rows): mean ± CI per cell, best in bold, significant wins marked.

    A cell's `>xy,xx` says this sampler is significantly better (Holm, 0.05) than those samplers of the
    same model on that column.
    """
    cells = {c: {g: mean_ci([r.metrics.get(c, math.nan) for r in runs]) for g, runs in groups.items()}
             for c in cols}
    wins: dict[tuple[str, str, str], list[str]] = {}
    for comp in comparisons:
        w = comp.winner()
        if w is not None:
            wins.setdefault((comp.column, comp.model, w), []).append(comp.b if w == comp.a else comp.a)
    header = ["model", "sampling", "seeds", *cols]
    md_rows, csv_rows = [], []
    for g, runs in groups.items():
        md = [g[0], g[1], str(len(runs))]
        row: dict[str, object] = {"model": g[0], "sampling": g[1], "n_seeds": len(runs),
                                  "seeds": " ".join(r.seed for r in runs)}
        for c in cols:
            mean, ci = cells[c][g]
            text = fmt(mean, ci)
            if g in best_rows(cells[c], c):
                text = f"**{text}**"
            beaten = sorted(wins.get((c, g[0], g[1]), []))
            md.append(text + (f" >{','.join(beaten)}" if beaten else ""))
            row.update({f"{c}": mean, f"{c}/ci95": ci, f"{c}/better_than": ";".join(beaten) or "-"})
        md_rows.append(md)
        csv_rows.append(row)
    return header, md_rows, csv_rows


def per_language_table(groups: Mapping[tuple[str, str], list[RunRecord]], model: str, eval_set: str,
                       metric: str = "map") -> tuple[list[str], list[list[str]]]:
    """The paper's Tables 3-8: rows = query languages + Mean, blocks Mono / Cross / Multi, one column per sampler."""
    samplers = [s for m, s in groups if m == model]
    runs = [r for s in samplers for r in groups[model, s]]
    langs = sorted({k.rsplit("/", 1)[-1].split("-")[0] for r in runs for k in r.metrics
                    if k.startswith(f"{eval_set}/mono/{metric}/")})
    header = ["query lang", *(f"{st} {s}" for st in SETTINGS for s in samplers)]
    rows = []
    for lang in [*langs, "Mean"]:
        row = [lang]
        for setting in SETTINGS:
            keys = {s: (f"{eval_set}/{setting}/{metric}" if lang == "Mean" else
                        f"{eval_set}/{setting}/{metric}/{lang}-{lang}" if setting == "mono" else
                        f"{eval_set}/{setting}/{metric}/{lang}") for s in samplers}
            block = {s: mean_ci([r.metrics.get(keys[s], math.nan) for r in groups[model, s]])[0] for s in samplers}
            finite = [v for v in block.values() if math.isfinite(v)]
            best = max(finite) if len(finite) > 1 else math.nan  # nothing to mark with one sampler
            row += [f"**{v:.3f}**" if v == best else fmt(v, math.nan) for v in block.values()]
        rows.append(row)
    return header, rows


def markdown(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A GitHub markdown table."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def write_csv(path: Path, rows: Sequence[Mapping[str, object]]) -> Path:
    """Rows of dicts as CSV (columns from the first row)."""
    with Path(path).open("w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]) if rows else [], lineterminator="\n")
        w.writeheader()
        w.writerows(rows)
    return Path(path)
