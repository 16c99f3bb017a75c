"""Indexes and top-k metrics: exact streaming search, IVF/HNSW recall on 20k vectors, ir_measures parity."""

from __future__ import annotations

from pathlib import Path

import ir_measures
import numpy as np
import pytest
from ir_measures import AP, RR, R, nDCG
from omegaconf import OmegaConf

from bench.ann import sample_embeddings
from src.core.keys import logged_name
from src.evaluation import index as index_module
from src.evaluation.index import (
    GPU_MAX_K,
    IndexSpec,
    build_index,
    exact_topk,
    on_gpu,
    order_ties_by_id,
    recall_vs_exact,
    sample_rows,
    search,
)
from src.evaluation.metrics import (
    average_precision_at_k,
    ndcg_at_k_topk,
    parse_measure,
    recall_at_k_topk,
    reciprocal_rank_at_k,
    topk_gains,
    topk_metrics,
)

EVAL_CFG = OmegaConf.load(Path(__file__).resolve().parents[2] / "conf" / "config.yaml").eval


def spec_for(kind: str, **overrides: object) -> IndexSpec:
    """The project's default index settings (conf/config.yaml) for one kind, on the CPU."""
    return IndexSpec.from_config(EVAL_CFG, kind=kind, use_gpu=False, **overrides)


def test_topk_metrics_hand_worked() -> None:
    # One query, judged rows 4 (grade 3), 9 (grade 1) and 7 (grade 2, never retrieved); run [9, 5, 4, -1].
    retrieved = np.array([[9, 5, 4, -1]])
    rel, grades = np.array([[4, 9, 7]]), np.array([[3.0, 1.0, 2.0]])
    gains = topk_gains(retrieved, rel, grades)
    np.testing.assert_array_equal(gains, [[1.0, 0.0, 3.0, 0.0]])
    # DCG@3 = 1/log2(2) + 3/log2(4) = 2.5; ideal 3 + 2/log2(3) + 1/log2(4) = 4.761860
    assert ndcg_at_k_topk(gains, grades, 3)[0] == pytest.approx(2.5 / (3 + 2 / np.log2(3) + 0.5))
    assert ndcg_at_k_topk(gains, grades, 1)[0] == pytest.approx(1 / 3)  # ideal@1 is the grade-3 passage
    assert recall_at_k_topk(gains, grades, 2)[0] == pytest.approx(1 / 3)
    assert recall_at_k_topk(gains, grades, 100)[0] == pytest.approx(2 / 3)
    assert reciprocal_rank_at_k(gains, grades, 10)[0] == 1.0
    assert average_precision_at_k(gains, grades, 1000)[0] == pytest.approx((1 / 1 + 2 / 3) / 3)
    assert average_precision_at_k(gains, grades, 2)[0] == pytest.approx(1 / 3)
    # Judged but nothing relevant -> 0 (trec_eval averages such queries in); nothing relevant retrieved -> 0.
    none = topk_metrics(np.array([[1, 2]]), np.array([[-1]]), np.array([[0.0]]), ["nDCG@10", "RR@10", "R@5", "AP@5"])
    assert none == {"nDCG@10": [0.0], "RR@10": [0.0], "R@5": [0.0], "AP@5": [0.0]}
    miss = topk_metrics(np.array([[1, 2]]), np.array([[3]]), np.array([[1.0]]), ["nDCG@10", "RR@10", "AP@5"])
    assert miss == {"nDCG@10": [0.0], "RR@10": [0.0], "AP@5": [0.0]}


def test_measure_names_and_keys() -> None:
    assert parse_measure("nDCG@10") == ("nDCG", 10) and parse_measure("AP@1000") == ("AP", 1000)
    for bad in ("ndcg@10", "R@0", "P@5", "nDCG"):
        with pytest.raises(ValueError, match="expected <name>@<cut-off>"):
            parse_measure(bad)
    assert [logged_name(m) for m in ("nDCG@10", "R@100", "RR@10", "AP@1000")] == ["nDCG10", "R100", "RR10", "AP1000"]
    assert logged_name("recall@100") + "_vs_exact" == "recall100_vs_exact"
    with pytest.raises(ValueError, match="MLflow rejects"):
        logged_name("nDCG@10(x)")


def test_matches_ir_measures_on_the_same_run() -> None:
    """Random embeddings, graded judgements: every measure equals ir_measures on the exported run."""
    rng = np.random.default_rng(3)
    docs, queries = rng.standard_normal((300, 16)).astype(np.float32), rng.standard_normal((40, 16)).astype(np.float32)
    rel = np.full((40, 6), -1)
    grades = np.zeros((40, 6))
    qrels = []
    for q in range(40):
        n = rng.integers(1, 7)
        rel[q, :n] = rng.choice(300, n, replace=False)
        grades[q, :n] = rng.integers(0, 4, n)  # some judged non-relevant (0)
        qrels += [ir_measures.Qrel(f"q{q}", f"d{d}", int(g)) for d, g in zip(rel[q, :n], grades[q, :n])]
    scores, ids = exact_topk(queries, [docs[:128], docs[128:]], 200)
    run = [ir_measures.ScoredDoc(f"q{q}", f"d{d}", float(s)) for q in range(40) for d, s in zip(ids[q], scores[q])]
    names = ["nDCG@10", "R@100", "RR@10", "AP@1000", "nDCG@3"]
    ours = topk_metrics(ids, rel, grades, names)
    theirs = ir_measures.calc_aggregate([nDCG @ 10, R @ 100, RR @ 10, AP @ 1000, nDCG @ 3], qrels, run)
    assert 0 < np.count_nonzero((grades > 0).any(axis=1)) < 40  # some queries judged non-relevant only
    for name, measure in zip(names, [nDCG @ 10, R @ 100, RR @ 10, AP @ 1000, nDCG @ 3]):
        assert np.mean(ours[name]) == pytest.approx(theirs[measure], abs=1e-9), name


def test_exact_topk_streams_shards_with_index_tie_break() -> None:
    docs = np.array([[1, 0], [0, 1], [1, 0], [2, 0], [0, 1]], dtype=np.float32)
    scores, ids = exact_topk(np.array([[1, 0]], dtype=np.float32), [docs[:2], docs[2:4], docs[4:]], 4)
    np.testing.assert_array_equal(ids, [[3, 0, 2, 1]])  # ties 0 and 2: the lower corpus row first
    np.testing.assert_array_equal(scores, [[2, 1, 1, 0]])
    _, short = exact_topk(np.array([[1, 0]], dtype=np.float32), [docs[:2]], 3)
    np.testing.assert_array_equal(short, [[0, 1, -1]])
    rng = np.random.default_rng(0)
    x, q = rng.standard_normal((500, 8)).astype(np.float32), rng.standard_normal((7, 8)).astype(np.float32)
    _, flat_ids = search(build_index(spec_for("flat"), 8, x), q, 20)
    np.testing.assert_array_equal(exact_topk(q, np.array_split(x, 3), 20)[1], flat_ids)


def test_recall_vs_exact_and_sampling() -> None:
    assert recall_vs_exact(np.array([[1, 2, 3], [4, 5, -1]]), np.array([[3, 2, 9], [4, 6, 7]]), 3) == pytest.approx(
        (2 / 3 + 1 / 3) / 2)
    shards = [np.arange(10, dtype=np.float32).reshape(5, 2), np.arange(10, 20, dtype=np.float32).reshape(5, 2)]
    sample = sample_rows(shards, 10, 4, seed=1)
    assert sample.shape == (4, 2) and len({tuple(r) for r in sample}) == 4
    assert sample_rows(shards, 10, 50).shape == (10, 2)


def test_bad_index_settings() -> None:
    with pytest.raises(ValueError, match="eval.index='pq'"):
        spec_for("pq")
    with pytest.raises(ValueError, match="eval.nprobe=0"):
        spec_for("ivf", nprobe=0)
    with pytest.raises(ValueError, match="eval.index_train_size=0"):
        spec_for("ivf", train_size=0)
    with pytest.raises(ValueError, match="eval.nlist=True"):
        spec_for("ivf", nlist=True)
    assert spec_for("ivf", nlist=None).factory_string(10_000) == "IVF400,Flat"
    assert spec_for("ivf", nlist=50).lists_for(20) == 20
    with pytest.raises(ValueError, match="eval.index_train_size=-5"):
        spec_for("ivf", train_size=-5)
    auto = spec_for("ivf", nlist=50, train_size=None)
    assert auto.train_rows_for(10_000) == 2_000 and auto.train_rows_for(100) == 100  # 40 per list, at most n
    assert spec_for("ivf", train_size=300).train_rows_for(10_000) == 300


@pytest.mark.parametrize("spec", [spec_for("ivf", nlist=128, nprobe=24),
                                  spec_for("hnsw", hnsw_m=16, ef_construction=64, ef_search=256)],
                         ids=["ivf", "hnsw"])
def test_approximate_indexes_reach_095_recall_on_20k(spec: IndexSpec) -> None:
    """CI-sized version of bench/ann.py: 20k anisotropic unit vectors, 200 queries, recall@100 vs exact."""
    rng = np.random.default_rng(0)
    data, queries = sample_embeddings(20_000, 384, rng), sample_embeddings(200, 384, rng)
    _, exact = exact_topk(queries, np.array_split(data, 4), 100)
    shards = np.array_split(data, 4)
    index = build_index(spec, 384, lambda: iter(shards), len(data))
    assert index.ntotal == 20_000
    _, approx = search(index, queries, 100)
    assert recall_vs_exact(approx, exact, 100) >= 0.95


def test_gpu_rule_is_one_helper(monkeypatch: pytest.MonkeyPatch) -> None:
    """on_gpu: asked for, a GPU kind, a GPU seen, and no search deeper than the GPU's selection limit."""
    monkeypatch.setattr(index_module, "gpu_available", lambda: True)
    exact = IndexSpec.exact()
    assert exact.kind == "flat" and exact.use_gpu and exact.factory_string(10) == "Flat"
    assert on_gpu(exact) and on_gpu(exact, GPU_MAX_K) and not on_gpu(exact, GPU_MAX_K + 1)
    assert not on_gpu(IndexSpec.exact(use_gpu=False), 10)
    ivf, hnsw = (IndexSpec.from_config(EVAL_CFG, kind=kind, use_gpu=True) for kind in ("ivf", "hnsw"))
    assert on_gpu(ivf, 100) and not on_gpu(hnsw, 100)  # FAISS has no GPU HNSW
    monkeypatch.setattr(index_module, "gpu_available", lambda: False)
    assert not on_gpu(exact, 10)


def test_ties_ordered_by_lower_id() -> None:
    scores = np.array([[0.5, 0.9, 0.5, 0.5], [0.1, 0.1, 0.2, -np.inf]], dtype=np.float32)
    ids = np.array([[7, 3, 2, 9], [5, 4, 8, -1]])
    s, i = order_ties_by_id(scores, ids)
    np.testing.assert_array_equal(i, [[3, 2, 7, 9], [8, 4, 5, -1]])
    np.testing.assert_array_equal(s, np.array([[0.9, 0.5, 0.5, 0.5], [0.2, 0.1, 0.1, -np.inf]], dtype=np.float32))
