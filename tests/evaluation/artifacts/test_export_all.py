"""export_all: every file of one evaluation set, embeddings only when asked."""

from __future__ import annotations

from pathlib import Path

from src.data.lareqa import LareqaDataset
from src.evaluation.artifacts import export_all
from src.evaluation.grid import score_grid
from tests.evaluation.artifacts.helpers import random_embeddings, read_run


def test_export_all_writes_every_file(ds: LareqaDataset, tmp_path: Path) -> None:
    emb = random_embeddings(ds)
    res = score_grid(ds, emb)
    folder = export_all(ds, emb, res, tmp_path / "mini", trec_depth=3)
    names = {str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()}
    assert {"grid_map.csv", "rank_distance.csv", "heatmap_map.png", "per_query.npz", "trec/run.cross.trec",
            "trec/qrels.multi.txt"} <= names
    assert not any(n.startswith("embeddings/") for n in names)
    assert all(len(v) == 3 for v in read_run(folder / "trec" / "run.multi.trec").values())
    export_all(ds, emb, res, folder, trec_depth=3, save_embeddings=True)
    assert (folder / "embeddings" / "zh.candidates.npy").is_file()
