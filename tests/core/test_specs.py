"""The config vocabulary's spec types: debias method names, measure names, index specs."""

from __future__ import annotations

import pytest

from src.core.specs import DEBIAS_METHODS, TOPK_NAMES, IndexSpec, debias_methods


def test_methods_accept_a_name_a_list_or_none() -> None:
    assert debias_methods("none") == () and debias_methods(None) == () and debias_methods([]) == ()
    assert debias_methods("center") == ("center",)
    assert debias_methods(["lir", "center", "lir", "none"]) == ("lir", "center")
    with pytest.raises(ValueError, match="eval.debias"):
        debias_methods(["center", "pca"])


def test_the_names_are_the_ones_the_layers_implement() -> None:
    from src.evaluation import debias, metrics

    assert tuple(metrics.TOPK_MEASURES) == TOPK_NAMES
    assert set(DEBIAS_METHODS) == {"none", *debias.Method.__args__}  # type: ignore[attr-defined]


def test_index_spec_lists_without_numpy() -> None:
    spec = IndexSpec(kind="ivf", nlist=None, nprobe=8, hnsw_m=16, ef_construction=32, ef_search=64, train_size=None,
                     use_gpu=False)
    assert spec.lists_for(10_000) == 400 and spec.train_rows_for(10_000) == 10_000
    assert spec.factory_string(10_000) == "IVF400,Flat"
    with pytest.raises(ValueError, match="eval.index='pq'"):
        IndexSpec(kind="pq", nlist=None, nprobe=8, hnsw_m=16, ef_construction=32, ef_search=64, train_size=None,
                  use_gpu=False)
