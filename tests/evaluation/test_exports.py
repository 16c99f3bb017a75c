"""Exports: grid CSVs and heatmap, TREC run/qrels checked against ir_measures, embedding and per-query round trips."""

from __future__ import annotations

import csv
import itertools
import json
import math
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest

from src.data.lareqa import LareqaDataset, load_lareqa
from src.evaluation.exports import (
    export_all,
    load_embeddings,
    load_per_query,
    plot_heatmap,
    save_embeddings,
    save_per_query,
    write_grid_csv,
    write_trec,
)
from src.evaluation.grid import Embeddings, GridResult, score_grid
from tests.evaluation.test_grid import oracle_embeddings

LANGS = ["en", "de", "zh"]


def random_embeddings(ds: LareqaDataset, dim: int = 16, seed: int = 0) -> Embeddings:
    """Gaussian vectors: continuous scores, so (almost surely) no ties in any ranking."""
    rng = np.random.default_rng(seed)
    return Embeddings(
        questions={x: rng.standard_normal((len(s.questions), dim)).astype(np.float32) for x, s in ds.by_lang.items()},
        candidates={x: rng.standard_normal((len(s.candidates), dim)).astype(np.float32)
                    for x, s in ds.by_lang.items()},
    )


@pytest.fixture
def ds(lareqa_dir: Path) -> LareqaDataset:
    return load_lareqa(lareqa_dir, LANGS)


def read_run(path: Path) -> dict[str, list[tuple[str, int, float]]]:
    """qid -> [(docid, rank, score)] in file order."""
    out: dict[str, list[tuple[str, int, float]]] = defaultdict(list)
    for line in path.read_text(encoding="utf-8").splitlines():
        qid, q0, doc, rank, score, tag = line.split(" ")
        assert q0 == "Q0" and tag == "xlir"
        out[qid].append((doc, int(rank), float(score)))
    return out


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


def test_heatmap_is_png(ds: LareqaDataset, tmp_path: Path) -> None:
    res = score_grid(ds, random_embeddings(ds))
    path = plot_heatmap(res, tmp_path / "fig" / "grid_map.png", metric="map")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    import matplotlib.image

    img = matplotlib.image.imread(path)
    assert img.ndim == 3 and img.shape[0] > 100 and img.shape[1] > 100
    assert plot_heatmap(res, tmp_path / "rd.png", metric="rank_distance").is_file()  # unbounded colour scale


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


def _assert_same_grid(a: GridResult, b: GridResult) -> None:
    assert a.pairs.keys() == b.pairs.keys() and a.multi.keys() == b.multi.keys()
    for key in a.pairs:
        for m in a.pairs[key]:
            np.testing.assert_array_equal(a.pairs[key][m], b.pairs[key][m])
    for x in a.multi:
        for m in a.multi[x]:
            np.testing.assert_array_equal(a.multi[x][m], b.multi[x][m])


def test_embeddings_round_trip(ds: LareqaDataset, tmp_path: Path) -> None:
    emb = random_embeddings(ds)
    paths = save_embeddings(ds, emb, tmp_path)
    assert len(paths) == 3 * 4 + 1 and (tmp_path / "README.txt").is_file()
    back = load_embeddings(tmp_path, LANGS)
    for x in LANGS:
        assert back.questions[x].dtype == np.float32
        np.testing.assert_array_equal(back.questions[x], emb.questions[x])
        np.testing.assert_array_equal(back.candidates[x], emb.candidates[x])
    _assert_same_grid(score_grid(ds, back), score_grid(ds, emb))
    zh_q = [json.loads(line) for line in (tmp_path / "zh.questions.jsonl").read_text(encoding="utf-8").splitlines()]
    assert [q["qid"] for q in zh_q] == ["zh:q1", "zh:q2", "zh:q4"] and zh_q[0]["text"] == "猫坐在哪里？"
    assert zh_q[2]["relevant_uid"] == "zh:0-1-0"
    en_c = [json.loads(line) for line in (tmp_path / "en.candidates.jsonl").read_text(encoding="utf-8").splitlines()]
    assert len(en_c) == 5 and en_c[3] == {"uid": "en:0-1-0", "sentence": "Paris is in France.", "paragraph": "en:0-1"}


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
    _assert_same_grid(pq.grid(), res)
    assert pq.grid().summary() == pytest.approx(res.summary(), nan_ok=True)


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
