"""The grid heatmap is a real PNG, for bounded and unbounded metrics."""

from __future__ import annotations

from pathlib import Path

from src.data.lareqa import LareqaDataset
from src.evaluation.artifacts.heatmap import plot_heatmap
from src.evaluation.grid import score_grid
from tests.evaluation.artifacts.helpers import random_embeddings


def test_heatmap_is_png(ds: LareqaDataset, tmp_path: Path) -> None:
    res = score_grid(ds, random_embeddings(ds))
    path = plot_heatmap(res, tmp_path / "fig" / "grid_map.png", metric="map")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    import matplotlib.image

    img = matplotlib.image.imread(path)
    assert img.ndim == 3 and img.shape[0] > 100 and img.shape[1] > 100
    assert plot_heatmap(res, tmp_path / "rd.png", metric="rank_distance").is_file()  # unbounded colour scale
