"""Translation retrieval: exact metrics of a hand-built set, the pooled setting without the query, no mono."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from src.core import keys
from src.data.bitext import AlignedTable, BitextDataset
from src.evaluation.artifacts import export_all
from src.evaluation.artifacts.per_query import load_per_query
from src.evaluation.bitext import encode_bitext, label_breakdown, score_bitext
from src.evaluation.driver import evaluate_sets
from src.evaluation.metrics import ranks_from_embeddings
from src.reporting.stats import query_contributions, question_clusters

# Two sentences in three languages; each text is its own 2-d vector (exactly representable products).
VECTORS = {
    "en0": (1.0, 0.0), "en1": (0.0, 1.0),
    "de0": (0.5, 0.25), "de1": (0.25, 0.5),  # de is right: its translation is each query's nearest
    "fr0": (0.25, 0.5), "fr1": (0.5, 0.25),  # fr is swapped: each query's translation comes second
}


def nway(labels: tuple[str, ...] | None = ("news", "sport")) -> BitextDataset:
    """The hand-built N-way set: rows s0, s1 in en, de, fr."""
    table = AlignedTable("tiny", ("s0", "s1"), {x: (f"{x}0", f"{x}1") for x in ("en", "de", "fr")}, labels)
    return BitextDataset("tiny", [table], multi=True, label_name=None if labels is None else "topic")


class Recorder:
    """An encode function over VECTORS that records every call's texts and side."""

    def __init__(self) -> None:
        self.calls: list[tuple[list[str], str]] = []

    def __call__(self, texts: Sequence[str], side: str) -> np.ndarray:
        self.calls.append((list(texts), side))
        return np.array([VECTORS[t] for t in texts], dtype=np.float32)


class FakeEncoder:
    """The BiEncoder.encode signature over VECTORS (what evaluate_sets calls)."""

    def encode(self, texts: Sequence[str], side: str, ctx: object = None, **_: object) -> np.ndarray:
        return Recorder()(texts, side)


def test_cross_pairs_exact() -> None:
    ds = nway()
    res = score_bitext(ds, encode_bitext(ds, Recorder()))
    s = res.summary()
    # Ranks of each query's translation: en->de 1,1; en->fr 2,2; de->en 1,1; de->fr 2,2; fr->en 2,2; fr->de 2,2.
    assert s["tiny/cross/r1/en-de"] == 1.0 and s["tiny/cross/r1/en-fr"] == 0.0
    assert s["tiny/cross/map/en-fr"] == 0.5 and s["tiny/cross/map/fr-de"] == 0.5
    assert s["tiny/cross/map/en"] == 0.75 and s["tiny/cross/map/de"] == 0.75 and s["tiny/cross/map/fr"] == 0.5
    assert s["tiny/cross/r1"] == pytest.approx(1 / 3) and s["tiny/cross/map"] == pytest.approx(2 / 3)
    assert s["tiny/cross/missing_queries"] == 0.0


def test_pooled_setting_leaves_the_query_out() -> None:
    ds = nway()
    res = score_bitext(ds, encode_bitext(ds, Recorder()))
    # en0 against {en1, de0, de1, fr0, fr1}: de0 .5 (1st), fr1 .5, de1 .25, fr0 .25 (4th, index tie-break), en1 0.
    np.testing.assert_array_equal(res.multi["en"]["map"], [0.75, 0.75])
    np.testing.assert_array_equal(res.multi["en"][keys.RANK_DISTANCE], [3.0, 3.0])
    np.testing.assert_array_equal(res.multi["de"]["map"], [0.7, 0.7])  # ranks 1 and 5
    np.testing.assert_allclose(res.multi["fr"]["map"], [(1 / 3 + 2 / 4) / 2] * 2, rtol=1e-15)  # ranks 3, 4
    np.testing.assert_array_equal(res.multi["fr"][keys.RANK_DISTANCE], [1.0, 1.0])
    np.testing.assert_array_equal(res.multi["en"]["n_relevant"], [2, 2])
    s = res.summary()
    assert s["tiny/multi/map"] == pytest.approx((0.75 + 0.7 + 5 / 12) / 3)
    assert s["tiny/multi/rank_distance"] == pytest.approx(8 / 3)
    assert s["tiny/multi/r1/en"] == 0.5
    # Without the exclusion en0 would find itself first: its translations would rank 2 and 5.
    pool = np.array([VECTORS[t] for t in ("en0", "en1", "de0", "de1", "fr0", "fr1")], dtype=np.float32)
    with_self = ranks_from_embeddings(pool[:1], pool, np.array([[2, 4]]))
    assert with_self.tolist() == [[2, 5]]


def test_no_mono_key_and_settings() -> None:
    ds = nway()
    res = score_bitext(ds, encode_bitext(ds, Recorder()))
    assert res.settings == (keys.CROSS, keys.MULTI)
    s = res.summary()
    assert not [k for k in s if keys.parse(k).setting == keys.MONO]
    assert all(math.isfinite(v) for v in s.values())


def test_every_text_encoded_once_on_the_sentence_side() -> None:
    table = AlignedTable("t", ("a", "b"), {"en": ("en0", "en1"), "de": ("de0", "en1")})  # a repeated text
    rec = Recorder()
    emb = encode_bitext(BitextDataset("t", [table]), rec)
    assert len(rec.calls) == 1 and rec.calls[0] == (["en0", "en1", "de0"], "sentence")
    np.testing.assert_array_equal(emb.questions["de"][1], emb.questions["en"][1])
    assert emb.questions["en"] is emb.candidates["en"]


def tatoeba_like() -> BitextDataset:
    """Two pair tables whose English sides differ (as Tatoeba's do): no pooled setting."""
    t1 = AlignedTable("deu-eng", ("deu.0", "deu.1"), {"de": ("de0", "de1"), "en": ("en0", "en1")})
    t2 = AlignedTable("fra-eng", ("fra.0", "fra.1"), {"fr": ("fr0", "fr1"), "en": ("en1", "en0")})
    return BitextDataset("tat", [t1, t2], multi=False)


def test_pair_tables_score_inside_their_table_only() -> None:
    ds = tatoeba_like()
    res = score_bitext(ds, encode_bitext(ds, Recorder()))
    assert set(res.pairs) == {("de", "en"), ("en", "de"), ("fr", "en"), ("en", "fr")} and not res.multi
    # English queries: rows 0-1 are deu-eng's, rows 2-3 fra-eng's; the other table's rows are NaN in a pair.
    en_de = res.pairs[("en", "de")]["map"]
    np.testing.assert_array_equal(en_de[:2], [1.0, 1.0])
    assert np.isnan(en_de[2:]).all()
    # fra-eng: fr0 pairs with en1 here; fr0=(.25,.5) finds en1 (.5) first -> correct; fr1 finds en0 -> correct.
    np.testing.assert_array_equal(res.pairs[("fr", "en")]["r@1"], [1.0, 1.0])
    s = res.summary()
    assert s["tat/cross/map/en"] == 1.0 and s["tat/cross/map"] == 1.0
    assert "tat/cross/map/de-fr" not in s and "tat/multi/map" not in s
    assert not any(k.endswith(keys.MISSING_QUERIES) for k in s)  # structural NaNs are not missing queries
    assert ds.query_ids("en") == ["en:deu.0", "en:deu.1", "en:fra.0", "en:fra.1"]


def test_per_query_file_and_paired_test_shares(tmp_path: Path) -> None:
    ds = tatoeba_like()
    res = score_bitext(ds, encode_bitext(ds, Recorder()))
    export_all(ds, encode_bitext(ds, Recorder()), res, tmp_path, trec_depth=0)
    pq = load_per_query(tmp_path / "per_query.npz")
    assert "cross/en-de/map" in pq.arrays and not any(k.startswith("mono/") for k in pq.arrays)
    shares = query_contributions(pq.arrays, pq.languages, keys.CROSS)
    assert shares.sum() == pytest.approx(res.summary()["tat/cross/map"])
    names, index = question_clusters(pq.qids, pq.languages)
    assert names.tolist() == ["deu.0", "deu.1", "fra.0", "fra.1"]  # a sentence and its translation: one unit
    assert index.size == shares.size


def test_labels_breakdown_and_exports(tmp_path: Path) -> None:
    ds = nway()
    emb = encode_bitext(ds, Recorder())
    res = score_bitext(ds, emb)
    by_topic = label_breakdown(ds, res)
    assert by_topic["news"][keys.CROSS] == pytest.approx(2 / 3) and by_topic["news"]["rows"] == 1
    assert by_topic["sport"][keys.MULTI] == pytest.approx((0.75 + 0.7 + 5 / 12) / 3)
    export_all(ds, emb, res, tmp_path, trec_depth=0, save_embeddings=True)
    pq = load_per_query(tmp_path / "per_query.npz")
    assert pq.label_name == "topic" and pq.labels["de"].tolist() == ["news", "sport"]
    assert (tmp_path / "by_topic.csv").read_text().splitlines()[0].startswith("topic,rows,cross_map")
    assert (tmp_path / "embeddings" / "fr.sentences.npy").is_file()
    # The pooled run leaves the query out: en:s0 lists 5 candidates, en:s0 itself not among them.
    lines = [ln.split() for ln in (tmp_path / "trec" / "run.multi.trec").read_text().splitlines()]
    en0 = [ln for ln in lines if ln[0] == "en:s0->multi"]
    assert [ln[2] for ln in en0] == ["de:s0", "fr:s1", "de:s1", "fr:s0", "en:s1"]
    qrels = (tmp_path / "trec" / "qrels.multi.txt").read_text().splitlines()
    assert "en:s0->multi 0 de:s0 1" in qrels and "en:s0->multi 0 en:s0 1" not in qrels
    assert not (tmp_path / "trec" / "run.mono.trec").exists()


def test_evaluate_sets_with_debias_and_no_mono() -> None:
    metrics, results, _ = evaluate_sets(FakeEncoder(), {"tiny": nway()}, 8, debias=("center",))
    assert "tiny.center/multi/map" in metrics and "tiny.center/mono/map" not in metrics
    assert metrics["tiny/multi/map"] == pytest.approx((0.75 + 0.7 + 5 / 12) / 3)
    assert set(results) == {"tiny", "tiny.center"}


def test_registry_declares_each_kinds_settings() -> None:
    from src.core.config import CORPUS_KINDS, DATASET_KINDS, GRID_KINDS
    from src.evaluation.kinds import KINDS, corpus_kind_names, get_kind, grid_kind_names, kind_of

    assert set(KINDS) == set(DATASET_KINDS)
    assert grid_kind_names() == GRID_KINDS and set(corpus_kind_names()) == set(CORPUS_KINDS)
    assert get_kind("bitext").settings == (keys.CROSS, keys.MULTI) and get_kind("beir").settings == (keys.MONO,)
    assert get_kind("lareqa").settings == keys.SETTINGS
    assert kind_of(nway()).name == "bitext"
    with pytest.raises(ValueError, match=r"evaluation kind 'nope' is not registered \(one of lareqa, bitext"):
        get_kind("nope")
    with pytest.raises(TypeError, match="no evaluation kind scores a dict"):
        kind_of({})
