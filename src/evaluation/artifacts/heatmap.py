"""The PNG heatmap of one evaluation set's grid: L x L language pairs plus the pooled (multi) column."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from src.core import keys
from src.evaluation.artifacts.grid_csv import grid_matrix
from src.evaluation.grid import GridResult

# Metrics bounded in [0, 1]: their heatmaps share a fixed colour scale so figures compare across runs.
_UNIT_METRICS = re.compile(r"^(map|mrr|r@\d+|ndcg@\d+)$")


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
    s = result.summary([metric])
    macro = {st: s[keys.key(result.dataset, st, keys.logged_name(metric))] for st in result.settings}

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
    for i in range(min(n_rows, n_cols - 1) if keys.MONO in result.settings else 0):
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
    ax.set_title(f"{result.dataset} · {metric}\n" + " · ".join(f"{st} {v:.3f}" for st, v in macro.items()),
                 fontsize=fontsize + 2, pad=8)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png", dpi=120)
    return path


def heatmap_cmap():
    """viridis with grey for missing pairs (NaN cells are masked)."""
    import matplotlib

    return matplotlib.colormaps["viridis"].with_extremes(bad="0.85")
