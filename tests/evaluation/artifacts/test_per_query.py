"""per_query.npz: the documented array names, a lossless round trip and the grid rebuilt from it."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from src.data.lareqa import LareqaDataset
from src.evaluation.artifacts.per_query import FILE_NAME, PER_QUERY_METRICS, load_per_query, save_per_query
from src.evaluation.grid import score_grid
from tests.evaluation.artifacts.helpers import LANGS, assert_same_grid, random_embeddings


def test_per_query_round_trip(ds: LareqaDataset, tmp_path: Path) -> None:
    res = score_grid(ds, random_embeddings(ds))
    path = save_per_query(res, tmp_path, ds)
    assert path.name == "per_query.npz"
    pq = load_per_query(path)
    assert pq.dataset == "mini" and pq.languages == tuple(LANGS)
    assert pq.qids["en"].tolist() == ["en:q1", "en:q2", "en:q3", "en:q4"]
    assert pq.qids["zh"].tolist() == ["zh:q1", "zh:q2", "zh:q4"]
    np.testing.assert_array_equal(pq.arrays["cross/de-zh/map"], res.pairs[("de", "zh")]["map"])
    np.testing.assert_array_equal(pq.arrays["mono/en-en/r@10"], res.pairs[("en", "en")]["r@10"])
    np.testing.assert_array_equal(pq.arrays["multi/zh/rank_distance"], res.multi["zh"]["rank_distance"])
    assert math.isnan(pq.arrays["cross/en-zh/map"][2])  # en q3 has no zh answer
    assert_same_grid(pq.grid(), res)
    assert pq.grid().summary() == pytest.approx(res.summary(), nan_ok=True)


def test_file_holds_exactly_the_documented_arrays(ds: LareqaDataset, tmp_path: Path) -> None:
    """The names of the module docstring's table, nothing else: what src/report.py may rely on."""
    path = save_per_query(score_grid(ds, random_embeddings(ds)), tmp_path, ds)
    assert path.name == FILE_NAME
    assert PER_QUERY_METRICS == ("map", "mrr", "r@1", "r@10", "ndcg@10", "rank_distance", "n_relevant")
    with np.load(path, allow_pickle=False) as npz:
        names, dtypes = set(npz.files), {k: npz[k].dtype.kind for k in npz.files}
    want = {"meta/dataset", "meta/languages", *(f"qids/{x}" for x in LANGS)}
    for x in LANGS:
        for m in PER_QUERY_METRICS:
            want |= {f"multi/{x}/{m}", *(f"{'mono' if x == y else 'cross'}/{x}-{y}/{m}" for y in LANGS)}
    assert names == want
    assert dtypes["mono/en-en/map"] == "f" and dtypes["multi/de/n_relevant"] == "i" and dtypes["qids/zh"] == "U"


def test_save_refuses_mismatched_inputs(ds: LareqaDataset, tmp_path: Path) -> None:
    res = score_grid(ds, random_embeddings(ds))
    res.pairs[("de", "zh")]["map"] = res.pairs[("de", "zh")]["map"][:-1]
    with pytest.raises(ValueError, match=r"cross/de-zh/map has shape \(3,\), expected \(4,\)"):
        save_per_query(res, tmp_path, ds)
    res.languages = ("en", "de")
    with pytest.raises(ValueError, match="dataset languages"):
        save_per_query(res, tmp_path, ds)
