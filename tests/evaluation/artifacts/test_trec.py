"""TREC run/qrels checked against ir_measures and the grid; the one run writer's format."""

from __future__ import annotations

import itertools
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest

from src.data.lareqa import LareqaDataset
from src.evaluation.artifacts.trec import run_line, write_run, write_trec
from src.evaluation.grid import score_grid
from tests.evaluation.artifacts.helpers import LANGS, random_embeddings, read_run
from tests.evaluation.test_grid import oracle_embeddings


def _ir_measures_means(run: Path, qrels: Path) -> dict[tuple[str, str], dict[str, float]]:
    """ir_measures (pytrec_eval) per-query values averaged per (query language, pool) group."""
    import ir_measures
    from ir_measures import AP, RR, R, nDCG

    names = {AP: "map", nDCG @ 10: "ndcg@10", R @ 10: "r@10", R @ 1: "r@1", RR: "mrr"}
    by_name = {str(m): n for m, n in names.items()}
    values: dict[tuple[str, str], dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for m in ir_measures.iter_calc(list(names), ir_measures.read_trec_qrels(str(qrels)),
                                   ir_measures.read_trec_run(str(run))):
        qlang, pool = m.query_id.split(":", 1)[0], m.query_id.rsplit("->", 1)[1]
        values[(qlang, pool)][by_name[str(m.measure)]].append(m.value)
    return {g: {k: float(np.mean(v)) for k, v in d.items()} for g, d in values.items()}


def test_full_depth_trec_matches_grid_via_ir_measures(ds: LareqaDataset, tmp_path: Path) -> None:
    emb = random_embeddings(ds)
    res = score_grid(ds, emb)
    paths = write_trec(ds, emb, tmp_path, depth=0)
    assert [p.name for p in paths] == ["run.mono.trec", "qrels.mono.txt", "run.cross.trec", "qrels.cross.txt",
                                       "run.multi.trec", "qrels.multi.txt"]
    checked = 0
    for setting in ("mono", "cross", "multi"):
        means = _ir_measures_means(tmp_path / f"run.{setting}.trec", tmp_path / f"qrels.{setting}.txt")
        expected_groups = {(x, "multi") for x in LANGS} if setting == "multi" else \
            {(x, y) for x in LANGS for y in LANGS if (x == y) == (setting == "mono")}
        assert set(means) == expected_groups
        for (x, pool), got in means.items():
            for metric, value in got.items():
                want = res.multi_mean(x, metric)[0] if pool == "multi" else res.pair_mean(x, pool, metric)[0]
                assert value == pytest.approx(want, abs=1e-6), (setting, x, pool, metric)
                checked += 1
    assert checked == 5 * (3 + 6 + 3)


def test_trec_ids_lines_and_omitted_queries(ds: LareqaDataset, tmp_path: Path) -> None:
    write_trec(ds, random_embeddings(ds), tmp_path, depth=0)
    cross = read_run(tmp_path / "run.cross.trec")
    # q3 has no zh version: it is no query against zh (nor is there a zh q3 asking anything).
    assert "en:q3->zh" not in cross and "de:q3->zh" not in cross and "en:q3->de" in cross
    assert len(cross) == 4 * 2 + 4 * 2 + 3 * 2 - 2
    assert [d for d, _, _ in cross["de:q1->zh"]] != [] and all(d.startswith("zh:") for d, _, _ in cross["de:q1->zh"])
    assert all(len(v) == 5 for v in cross.values())  # full ranking of 5 zh / en / de sentences
    multi = read_run(tmp_path / "run.multi.trec")
    assert len(multi) == 11 and all(len(v) == 15 for v in multi.values())
    for lines in multi.values():
        assert [r for _, r, _ in lines] == list(range(1, 16))
        assert all(a[2] > b[2] for a, b in itertools.pairwise(lines))  # written scores keep the order, no ties
    qrels = [line.split(" ") for line in (tmp_path / "qrels.multi.txt").read_text().splitlines()]
    en_q3 = sorted(d for q, _, d, _ in qrels if q == "en:q3->multi")
    assert en_q3 == ["de:0-1-1", "en:0-1-1"]
    assert all(z == "0" and r == "1" for _, z, _, r in qrels)


def test_trec_depth_cuts_the_ranking(ds: LareqaDataset, tmp_path: Path) -> None:
    emb = random_embeddings(ds)
    write_trec(ds, emb, tmp_path / "full", depth=0)
    write_trec(ds, emb, tmp_path / "top2", depth=2)
    write_trec(ds, emb, tmp_path / "deep", depth=100)  # deeper than every pool: the whole pool
    for setting in ("mono", "cross", "multi"):
        full = read_run(tmp_path / "full" / f"run.{setting}.trec")
        top2 = read_run(tmp_path / "top2" / f"run.{setting}.trec")
        deep = read_run(tmp_path / "deep" / f"run.{setting}.trec")
        assert set(top2) == set(full) == set(deep)
        for qid, lines in top2.items():
            assert [r for _, r, _ in lines] == [1, 2]
            # FAISS top-k agrees with the full numpy ranking (scores up to float32 summation order).
            assert [d for d, _, _ in lines] == [d for d, _, _ in full[qid][:2]]
            assert [s for _, _, s in lines] == pytest.approx([s for _, _, s in full[qid][:2]], abs=1e-5)
            assert [d for d, _, _ in deep[qid]] == [d for d, _, _ in full[qid]]
        assert (tmp_path / "top2" / f"qrels.{setting}.txt").read_text() == \
            (tmp_path / "full" / f"qrels.{setting}.txt").read_text()


def test_trec_ties_follow_candidate_index(ds: LareqaDataset, tmp_path: Path) -> None:
    # Oracle vectors: every sentence but a question's own answer scores 0 for it, i.e. they all tie.
    write_trec(ds, oracle_embeddings(ds), tmp_path, depth=0)
    write_trec(ds, oracle_embeddings(ds), tmp_path / "k", depth=3)
    full = read_run(tmp_path / "run.mono.trec")
    # en q2's answer is en:0-0-1; the other four tie at score 0 and keep record order (the grid's tie-break).
    assert [d for d, _, _ in full["en:q2->en"]] == ["en:0-0-1", "en:0-0-0", "en:0-0-2", "en:0-1-0", "en:0-1-1"]
    order = {c.uid: i for s in ds.by_lang.values() for i, c in enumerate(s.candidates)}
    for lines in read_run(tmp_path / "k" / "run.mono.trec").values():
        assert len(lines) == 3
        # Within the top 3, FAISS's unspecified tie order is re-sorted to (-score, candidate index).
        keys = [(-s, order[d]) for d, _, s in lines]
        assert keys == sorted(keys)


def test_trec_rejects_bad_input(ds: LareqaDataset, tmp_path: Path) -> None:
    emb = random_embeddings(ds)
    with pytest.raises(ValueError, match="depth"):
        write_trec(ds, emb, tmp_path, depth=-1)
    with pytest.raises(ValueError, match="whitespace"):
        write_trec(ds, emb, tmp_path, tag="my run")
    emb.candidates["de"][0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        write_trec(ds, emb, tmp_path)


def test_run_writer_masks_ranks_and_keeps_float32_scores_exact(tmp_path: Path) -> None:
    """The one run writer (grid runs and corpus runs): `%.9g` gives every float32 back bit for bit."""
    scores = np.array([[0.1234567891, 1 / 3, -2.5e-8], [np.float32(0.5) + 1e-7, 0.25, 0.0]], dtype=np.float32)
    docs = np.array([["a", "b", "c"], ["d", "e", ""]], dtype=object)
    keep = np.array([[True, True, True], [True, True, False]])  # e.g. FAISS's -1 padding of a short result
    path = write_run(tmp_path / "sub" / "run.trec", ["q1", "q2"], docs, scores, keep=keep)
    lines = [line.split(" ") for line in path.read_text(encoding="utf-8").splitlines()]
    assert [(q, d, r) for q, _, d, r, _, _ in lines] == [("q1", "a", "1"), ("q1", "b", "2"), ("q1", "c", "3"),
                                                         ("q2", "d", "1"), ("q2", "e", "2")]
    assert all(z == "Q0" and tag == "xlir" for _, z, _, _, _, tag in lines)
    written = np.array([float(s) for *_, s, _ in lines], dtype=np.float32)
    np.testing.assert_array_equal(written, scores[keep])
    assert lines[0][4] == f"{float(scores[0, 0]):.9g}"
    assert run_line("x{y}").format("q", "d", 1, 0.5) == "q Q0 d 1 0.5 x{y}\n"  # braces in a tag stay literal
    with pytest.raises(ValueError, match="whitespace"):
        run_line("my run")
