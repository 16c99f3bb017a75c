"""BEIR folders: loading, validation, and hand-worked metrics on a fixture built in code."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from src.data.beir import build_set, corpus_rows, load_beir, load_corpus, read_qrels, write_beir
from src.evaluation.metrics import topk_metrics

MEASURES = ["nDCG@10", "R@100", "RR@10", "AP@1000"]
TOPICS = ["cats", "rivers", "volcanoes"]

# 30 passages d00..d29 (10 per topic), 6 queries; judgements with grades, a non-relevant-only query (q5),
# an unjudged query (q6) and a judged passage missing from the corpus (d99).
QUERIES = {"q1": "Why do cats purr?", "q2": "How long is the Nile river?", "q3": "Which volcano erupted in 1980?",
           "q4": "Do cats see in the dark?", "q5": "What do rivers carry?", "q6": "Unjudged question"}
QRELS = {"q1": {"d01": 2, "d02": 1, "d03": 0}, "q2": {"d10": 1}, "q3": {"d20": 1, "d21": 1, "d22": 1},
         "q4": {"d05": 1, "d99": 1}, "q5": {"d07": 0}}


def fixture_corpus() -> list[dict[str, str]]:
    """Thirty short passages with titles, ten per topic."""
    return [{"_id": f"d{i:02d}", "title": f"{TOPICS[i // 10]} {i}",
             "text": f"Passage {i} about {TOPICS[i // 10]}: fact number {i * 7 % 13} on {TOPICS[i // 10]}."}
            for i in range(30)]


def write_fixture(root: Path) -> Path:
    """The BEIR-format fixture folder (split `test`)."""
    return write_beir(root, fixture_corpus(), QUERIES, QRELS, "test")


@pytest.fixture
def beir_dir(tmp_path: Path) -> Path:
    """A BEIR folder written by code."""
    return write_fixture(tmp_path / "beir")


def test_load_keeps_judged_queries_and_maps_rows(beir_dir: Path, tmp_path: Path) -> None:
    data = load_beir(beir_dir, "test", "fx", "en", cache_dir=tmp_path / "cache")
    # q5 is judged (non-relevant only) and scores 0 as in trec_eval; q6 has no judgement and is not evaluated.
    assert data.query_ids == ["q1", "q2", "q3", "q4", "q5"]
    assert data.queries[1] == QUERIES["q2"]
    assert len(data.corpus) == 30 and data.corpus.column_names == ["_id", "title", "text"]
    assert data.rel.shape == (5, 3)
    np.testing.assert_array_equal(data.rel[4], [-1, -1, -1])
    np.testing.assert_array_equal(data.rel[0], [1, 2, -1])  # d03 (grade 0) is dropped
    np.testing.assert_array_equal(data.grades[0], [2, 1, 0])
    np.testing.assert_array_equal(data.rel[3], [5, -1, -1])  # d99 is not in the corpus ...
    np.testing.assert_array_equal(data.grades[3], [1, 1, 0])  # ... but still counts as relevant
    assert list(data.doc_ids(np.array([[29, -1, 0]]))[0]) == ["d29", "", "d00"]


def test_hand_worked_run(beir_dir: Path, tmp_path: Path) -> None:
    """A fixed ranking scored by hand (linear gains, log2 discounts) against topk_metrics."""
    data = load_beir(beir_dir, "test", "fx", cache_dir=tmp_path / "cache")
    rows = corpus_rows(data.corpus, [f"d{i:02d}" for i in range(30)])
    fill = ["d25", "d26", "d27", "d28", "d29", "d15", "d16"]
    runs = {"q1": ["d03", "d01", "d02"] + fill, "q2": ["d11", "d12", "d13", "d10"] + fill[:6],
            "q3": ["d20", "d00", "d22"] + fill, "q4": ["d06", "d05"] + fill + ["d17"], "q5": ["d07"] + fill + ["d17", "d18"]}
    retrieved = np.array([[rows[d] for d in runs[q]] for q in data.query_ids])
    got = {m: v for m, v in topk_metrics(retrieved, data.rel, data.grades, MEASURES).items()}
    # q1: gains 0,2,1 -> DCG 2/log2(3) + 1/log2(4); ideal 2 + 1/log2(3)
    # q2: one relevant at rank 4 -> 1/log2(5); q3: ranks 1 and 3 of three relevant -> 1.5 / (1 + 1/log2(3) + 0.5)
    # q4: rank 2 of two relevant (d99 never retrievable) -> (1/log2(3)) / (1 + 1/log2(3)); q5: nothing relevant -> 0
    np.testing.assert_allclose(got["nDCG@10"], [0.669671816, 0.430676558, 0.703918089, 0.386852807, 0], atol=1e-8)
    np.testing.assert_allclose(got["R@100"], [1.0, 1.0, 2 / 3, 0.5, 0])
    np.testing.assert_allclose(got["RR@10"], [0.5, 0.25, 1.0, 0.5, 0])
    np.testing.assert_allclose(got["AP@1000"], [(1 / 2 + 2 / 3) / 2, 1 / 4, (1 + 2 / 3) / 3, (1 / 2) / 2, 0])
    assert np.mean(got["nDCG@10"]) == pytest.approx(2.191119271 / 5, abs=1e-8)


def test_numeric_ids_become_strings(tmp_path: Path) -> None:
    (tmp_path / "c.jsonl").write_text('{"_id": 7, "text": "seven"}\n{"_id": 8, "text": "eight"}\n')
    corpus = load_corpus([tmp_path / "c.jsonl"], cache_dir=tmp_path / "cache")
    assert corpus["_id"] == ["7", "8"] and corpus.column_names == ["_id", "text"]  # no title column: none added
    assert corpus_rows(corpus, ["8"]) == {"8": 1}


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda root: (root / "queries.jsonl").unlink(), "no queries.jsonl"),
        (lambda root: (root / "qrels" / "test.tsv").rename(root / "qrels" / "dev.tsv"), "splits present: ['dev']"),
        (lambda root: (root / "qrels" / "test.tsv").write_text("q1\td01\t1\n"), "is not the header"),
        (lambda root: (root / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq1\td01\tyes\n"),
         "test.tsv:2"),
        (lambda root: (root / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nqx\td01\t1\n"),
         "absent from the queries"),
        (lambda root: (root / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq1\td01\t0\n"),
         "no query has a relevant"),
        (lambda root: (root / "queries.jsonl").write_text('{"_id": "q1"}\n'), "queries.jsonl:1: missing field"),
    ],
)
def test_bad_folders_fail_clearly(beir_dir: Path, tmp_path: Path, mutate, message: str) -> None:
    mutate(beir_dir)
    with pytest.raises((ValueError, FileNotFoundError), match=message.replace("[", r"\[").replace("]", r"\]")):
        load_beir(beir_dir, "test", "fx", cache_dir=tmp_path / "cache")


def test_missing_folder_names_the_key(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"data.eval.scifact.path=.*does not exist"):
        load_beir(tmp_path / "nope", "test", "scifact")


def test_duplicate_corpus_ids_rejected(tmp_path: Path) -> None:
    (tmp_path / "c.jsonl").write_text('{"_id": "a", "text": "x"}\n{"_id": "a", "text": "y"}\n')
    corpus = load_corpus([tmp_path / "c.jsonl"], cache_dir=tmp_path / "cache")
    with pytest.raises(ValueError, match="occurs twice"):
        build_set("fx", None, corpus, {"q": "?"}, {"q": {"a": 1}}, "qrels")


def test_qrels_reader_keeps_grades(beir_dir: Path) -> None:
    assert read_qrels(beir_dir / "qrels" / "test.tsv")["q1"] == {"d01": 2, "d02": 1, "d03": 0}


def test_max_queries_cuts(beir_dir: Path, tmp_path: Path) -> None:
    assert load_beir(beir_dir, "test", "fx", max_queries=2, cache_dir=tmp_path / "c").query_ids == ["q1", "q2"]


@pytest.mark.parametrize(
    ("override", "key"),
    [
        ("eval.index=pq", "eval.index"),
        ("eval.measures=[P@5]", "eval.measures"),
        ("eval.nprobe=0", "eval.nprobe"),
        ("eval.embedding_dtype=int8", "eval.embedding_dtype"),
        ("data.eval.beir_fixture.languages=[en,de]", "data.eval.beir_fixture.languages"),
        ("data.eval.beir_fixture.split=null", "data.eval.beir_fixture.split"),
        ("data.eval.beir_fixture.max_queries=0", "data.eval.beir_fixture.max_queries"),
        ("+data.eval.beir_fixture.hub_corpus=x/y", "data.eval.beir_fixture.hub_corpus"),
    ],
)
def test_corpus_config_errors_name_the_key(tmp_path: Path, override: str, key: str) -> None:
    from hydra import compose, initialize_config_dir

    from src.core.config import ConfigError, validate
    from tests.conftest import ROOT

    with initialize_config_dir(str(ROOT / "conf"), version_base="1.3"):
        cfg = compose("evaluate", overrides=[f"paths.output_dir={tmp_path}", "data=beir_fixture", override])
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        validate(cfg)
