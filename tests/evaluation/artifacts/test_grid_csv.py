"""Grid CSVs: every cell equals the summary() key it stands for; missing pairs stay NaN."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from src.data.lareqa import LareqaDataset
from src.evaluation.artifacts.grid_csv import write_grid_csv
from src.evaluation.grid import score_grid
from tests.evaluation.artifacts.helpers import LANGS, random_embeddings


def test_grid_csv_matches_summary(ds: LareqaDataset, tmp_path: Path) -> None:
    res = score_grid(ds, random_embeddings(ds))
    paths = write_grid_csv(res, tmp_path)
    names = sorted(p.name for p in paths)
    assert names == sorted(["grid_map.csv", "grid_r1.csv", "grid_r10.csv", "grid_mrr.csv", "grid_ndcg10.csv",
                            "rank_distance.csv"])
    s = res.summary()
    for metric, key in (("map", "map"), ("r@1", "r1"), ("r@10", "r10"), ("mrr", "mrr"), ("ndcg@10", "ndcg10")):
        rows = list(csv.reader((tmp_path / f"grid_{key}.csv").open(encoding="utf-8")))
        assert rows[0] == ["query_lang", *LANGS, "multi"]
        assert [r[0] for r in rows[1:]] == [*LANGS, "mean"]
        table = {r[0]: dict(zip(rows[0][1:], map(float, r[1:]))) for r in rows[1:]}
        for x in LANGS:
            for y in LANGS:
                want = s[f"mini/mono/{key}/{x}-{x}"] if x == y else s[f"mini/cross/{key}/{x}-{y}"]
                assert table[x][y] == want
            assert table[x]["multi"] == s[f"mini/multi/{key}/{x}"]
            assert table["mean"][x] == pytest.approx(np.mean([res.pair_mean(q, x, metric)[0] for q in LANGS]))
        assert table["mean"]["multi"] == pytest.approx(s[f"mini/multi/{key}"])
    rows = list(csv.DictReader((tmp_path / "rank_distance.csv").open(encoding="utf-8")))
    assert [r["query_lang"] for r in rows] == [*LANGS, "mean"]
    for r in rows[:-1]:
        assert float(r["rank_distance"]) == s[f"mini/multi/rank_distance/{r['query_lang']}"]
    assert float(rows[-1]["rank_distance"]) == pytest.approx(s["mini/multi/rank_distance"])
    assert [int(r["n_queries"]) for r in rows] == [4, 4, 3, 11]


def test_grid_csv_keeps_missing_pairs_as_nan(ds: LareqaDataset, tmp_path: Path) -> None:
    res = score_grid(ds, random_embeddings(ds))
    res.pairs[("en", "zh")]["map"][:] = np.nan  # a pair with no answerable query
    write_grid_csv(res, tmp_path, metrics=("map",))
    rows = {r[0]: r[1:] for r in csv.reader((tmp_path / "grid_map.csv").open(encoding="utf-8"))}
    assert rows["en"][2] == "nan"
    assert float(rows["mean"][2]) == pytest.approx(np.mean([res.pair_mean(x, "zh", "map")[0] for x in ("de", "zh")]))
