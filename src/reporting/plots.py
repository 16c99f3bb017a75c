"""Report figures (PNG, Agg canvas, no pyplot state): grouped bars with CI whiskers, the α curve, heatmaps."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from src.core import keys
from src.reporting.stats import mean_ci
from src.reporting.tables import ReportedRun


def _figure(width: float, height: float, layout: str | None = None):
    """A Figure on an Agg canvas: safe in threads and headless, never opens a window."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=120, layout=layout)
    FigureCanvasAgg(fig)
    return fig


def _save(fig, path: Path) -> Path:
    """Tight layout, write PNG, return the path."""
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png")
    return path


def bars(groups: Mapping[tuple[str, str], list[ReportedRun]], eval_set: str, path: Path) -> Path:
    """mono / cross / multi mAP, one bar per (model, sampling) in each setting, whiskers = 95% CI over seeds."""
    fig = _figure(max(6.0, 1.2 + 0.5 * len(groups) * len(keys.SETTINGS) / 2), 4.0)
    ax = fig.add_subplot()
    width = 0.8 / max(1, len(groups))
    x = np.arange(len(keys.SETTINGS))
    for i, (g, runs) in enumerate(groups.items()):
        stats = [mean_ci([r.metrics.get(keys.key(eval_set, s, "map"), math.nan) for r in runs])
                 for s in keys.SETTINGS]
        means = [m for m, _ in stats]
        errs = [0.0 if not math.isfinite(c) else c for _, c in stats]
        ax.bar(x - 0.4 + width * (i + 0.5), means, width, yerr=errs, capsize=3, label=" / ".join(g))
    ax.set_xticks(x, keys.SETTINGS)
    ax.set_ylabel("mAP")
    ax.set_title(f"{eval_set}: mAP per setting (mean ± 95% CI over seeds)")
    ax.legend(fontsize=8, ncols=2)
    return _save(fig, path)


def alpha_curve(runs: Sequence[ReportedRun], eval_set: str, path: Path,
                references: Mapping[str, Sequence[ReportedRun]] | None = None) -> Path:
    """mAP against hybrid α per setting (mean ± CI band over seeds); xx / xy runs as dashed reference lines."""
    fig = _figure(6.5, 4.0)
    ax = fig.add_subplot()
    alphas = sorted({r.alpha for r in runs if r.alpha is not None})
    for k, setting in enumerate(keys.SETTINGS):
        key = keys.key(eval_set, setting, "map")
        stats = [mean_ci([r.metrics.get(key, math.nan) for r in runs if r.alpha == a]) for a in alphas]
        mean = np.array([m for m, _ in stats])
        ci = np.array([0.0 if not math.isfinite(c) else c for _, c in stats])
        line = ax.plot(alphas, mean, marker="o", label=setting, color=f"C{k}")[0]
        ax.fill_between(alphas, mean - ci, mean + ci, alpha=0.2, color=line.get_color())
        for style, (name, ref) in zip(("--", ":"), sorted((references or {}).items())):
            m, _ = mean_ci([r.metrics.get(key, math.nan) for r in ref])
            if math.isfinite(m):
                ax.axhline(m, linestyle=style, color=line.get_color(), linewidth=1,
                           label=f"{setting} {name}")
    ax.set_xlabel("α = P(X-X-mono batch)")
    ax.set_ylabel("mAP")
    ax.set_title(f"{eval_set}: hybrid α sweep")
    ax.legend(fontsize=7, ncols=3)
    return _save(fig, path)


def learning_curves(groups: Mapping[tuple[str, str], list[ReportedRun]], path: Path) -> Path:
    """Validation loss, mono / cross / multi mAP and rank distance against the step: mean over seeds per
    (configuration, sampler), the band spanning the seeds' min..max."""
    names = keys.CURVE_KEYS
    fig = _figure(3.4 * len(names), 3.4)
    axes = fig.subplots(1, len(names), squeeze=False)[0]
    for ax, name in zip(axes, names):
        for i, (g, runs) in enumerate(groups.items()):
            series = [dict(r.curves.get(name, [])) for r in runs]
            steps = sorted(set.intersection(*(set(s) for s in series))) if series else []
            if not steps:
                continue
            values = np.array([[s[t] for t in steps] for s in series])
            ax.plot(steps, values.mean(axis=0), marker="o", markersize=3, color=f"C{i}", label=" / ".join(g))
            ax.fill_between(steps, values.min(axis=0), values.max(axis=0), color=f"C{i}", alpha=0.15)
        ax.set_title(name, fontsize=9)
        ax.set_xlabel("step")
    axes[0].legend(fontsize=7)
    fig.suptitle("Validation split (held-out training questions): mean over seeds, band = min..max", fontsize=10)
    return _save(fig, path)


def heatmaps(grids: Mapping[str, tuple[np.ndarray, Sequence[str], Sequence[str]]], title: str, path: Path) -> Path:
    """Side-by-side mAP grids (query rows × candidate columns + multi), one panel per sampler, one colour scale."""
    from src.evaluation.artifacts.heatmap import heatmap_cmap

    n = len(grids)
    first = next(iter(grids.values()))
    n_rows, n_cols = first[0].shape
    # Constrained layout keeps the top tick labels, panel titles and the shared colorbar inside the figure.
    fig = _figure(max(4.0, 0.55 * n_cols + 1.0) * n + 0.8, max(3.0, 0.45 * n_rows + 1.6), layout="constrained")
    axes = fig.subplots(1, n, squeeze=False)[0]
    cmap = heatmap_cmap()
    im = None
    for ax, (name, (mat, rows, cols)) in zip(axes, grids.items()):
        im = ax.imshow(np.ma.masked_invalid(mat), cmap=cmap, vmin=0.0, vmax=1.0, aspect="auto")
        for i in range(mat.shape[0]):
            for j in range(mat.shape[1]):
                if np.isfinite(mat[i, j]):
                    ax.text(j, i, f"{mat[i, j]:.2f}", ha="center", va="center", fontsize=7,
                            color="black" if mat[i, j] > 0.6 else "white")
        ax.set_xticks(range(len(cols)), cols, fontsize=8)
        ax.set_yticks(range(len(rows)), rows, fontsize=8)
        ax.xaxis.tick_top()
        ax.set_title(name, fontsize=10)
    fig.suptitle(title, fontsize=11)
    if im is not None:
        fig.colorbar(im, ax=list(axes), fraction=0.03, pad=0.02)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png")
    return path


def gain_heatmap(values: np.ndarray, rows: Sequence[str], cols: Sequence[str], path: Path) -> Path:
    """Gains over the untrained model (rows: samplers and baselines; columns: set × column), red < 0 < blue."""
    fig = _figure(max(6.0, 0.62 * len(cols) + 2.2), max(2.6, 0.42 * len(rows) + 2.4), layout="constrained")
    ax = fig.subplots()
    # Each column on its own scale (mAP gains are hundredths, rank-distance gains hundreds): colours are the
    # gain relative to the column's largest absolute gain, the printed numbers are the gains themselves.
    scale = np.nanmax(np.abs(values), axis=0, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        rel = np.where(scale > 0, values / scale, 0.0)
    im = ax.imshow(np.ma.masked_invalid(rel), cmap="RdBu", vmin=-1.0, vmax=1.0, aspect="auto")
    for i in range(values.shape[0]):
        for j in range(values.shape[1]):
            if np.isfinite(values[i, j]):
                text = f"{values[i, j]:+.0f}" if abs(values[i, j]) >= 10 else f"{values[i, j]:+.3f}"
                ax.text(j, i, text, ha="center", va="center", fontsize=6.5,
                        color="white" if abs(rel[i, j]) > 0.6 else "black")
    ax.set_xticks(range(len(cols)), cols, fontsize=7, rotation=60, ha="left")
    ax.set_yticks(range(len(rows)), rows, fontsize=8)
    ax.xaxis.tick_top()
    fig.colorbar(im, ax=ax, fraction=0.03, pad=0.02, label="gain / column's largest |gain|")
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png")
    return path


def retention_bars(bars_by_column: Mapping[str, Mapping[str, Sequence[tuple[str, float, float]]]],
                   path: Path) -> Path:
    """Retention (mean ± 95 % CI over seeds) per set, one panel per column, one bar per sampler; 1 = kept."""
    n = max(1, len(bars_by_column))
    fig = _figure(4.2 * n, 3.4)
    axes = fig.subplots(1, n, squeeze=False)[0]
    for ax, (column, by_sampler) in zip(axes, bars_by_column.items()):
        samplers = list(by_sampler)
        sets = sorted({s for rows in by_sampler.values() for s, _, _ in rows})
        if not sets:
            ax.text(0.5, 0.5, "not reported:\nno XQuAD-R gain to retain", ha="center", va="center",
                    transform=ax.transAxes, fontsize=8)
        width = 0.8 / max(1, len(samplers))
        for k, sampler in enumerate(samplers):
            found = {s: (m, ci) for s, m, ci in by_sampler[sampler]}
            xs = np.arange(len(sets)) + (k - (len(samplers) - 1) / 2) * width
            means = [found.get(s, (math.nan, math.nan))[0] for s in sets]
            errs = [found.get(s, (math.nan, math.nan))[1] for s in sets]
            ax.bar(xs, means, width, yerr=[e if math.isfinite(e) else 0 for e in errs], capsize=2, label=sampler)
        ax.axhline(1.0, color="grey", lw=0.8, ls="--")
        ax.axhline(0.0, color="black", lw=0.6)
        ax.set_xticks(range(len(sets)), sets, fontsize=7, rotation=30, ha="right")
        ax.set_title(column, fontsize=9)
    axes[0].set_ylabel("gain out of domain / gain on XQuAD-R")
    axes[0].legend(fontsize=7)
    return _save(fig, path)
