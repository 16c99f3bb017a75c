"""Files of one grid evaluation set (any grid kind), written from a GridResult / Embeddings only (no re-encoding).

One module per file kind: grid_csv (`grid_{metric}.csv`, `rank_distance.csv`), heatmap (`heatmap_map.png`),
per_query (`per_query.npz`, the format src/report.py reads), trec (`trec/run.{setting}.trec` and
`trec/qrels.{setting}.txt`; also the corpus kinds' `run.trec`) and embeddings (`embeddings/`, opt-in).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from src.core import keys
from src.evaluation.artifacts.grid_csv import write_breakdown_csv, write_grid_csv
from src.evaluation.artifacts.heatmap import plot_heatmap
from src.evaluation.artifacts.per_query import save_per_query
from src.evaluation.grid import Embeddings, GridResult


def export_all(
    dataset: Any,
    emb: Embeddings,
    result: GridResult,
    out_dir: Path,
    trec_depth: int = 100,
    save_embeddings: bool = False,
    heatmap_metrics: Sequence[str] = ("map",),
    trec: bool = True,
) -> Path:
    """Every file of one evaluation set into `out_dir` (embeddings under `embeddings/` if asked); returns it."""
    from src.evaluation.kinds import kind_of

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    write_grid_csv(result, out_dir)
    for metric in heatmap_metrics:
        plot_heatmap(result, out_dir / f"heatmap_{keys.logged_name(metric)}.png", metric)
    label_name = getattr(dataset, "label_name", None)
    save_per_query(result, out_dir, dataset, label_name)
    if label_name is not None:  # SIB-200 by topic, TICO-19 by origin
        write_breakdown_csv(dataset, result, out_dir / f"by_{label_name}.csv")
    if trec:
        kind_of(dataset).write_trec(dataset, emb, out_dir / "trec", trec_depth)
    if save_embeddings:
        # Opt-in: ~40 MB of float32 per 13k texts at 384-d, large for an MLflow artifact.
        kind_of(dataset).write_embeddings(dataset, emb, out_dir / "embeddings")
    return out_dir


def export_sets(
    datasets: Mapping[str, Any],
    results: Mapping[str, GridResult],
    embeddings: Mapping[str, Embeddings],
    out_root: Path,
    trec_depth: int = 100,
    save_embeddings: bool = False,
) -> dict[str, Path]:
    """export_all for every scored set into `out_root/{set}`; debiased variants (`xquad_r.center`) get the grid
    files and per-query metrics of their base set's questions, but no TREC runs or embeddings (~1 GB each)."""
    folders = {}
    for name, result in results.items():
        variant = keys.base_set(name) != name
        folders[name] = export_all(datasets[keys.base_set(name)], embeddings[name], result, Path(out_root) / name,
                                   trec_depth=trec_depth, save_embeddings=save_embeddings and not variant,
                                   trec=not variant)
    return folders
