"""MIRACL in its hub file layout: a two-language fixture built in code, hand-worked per-language metrics."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pytest

from src.data.beir import corpus_rows
from src.data.miracl import corpus_files, load_miracl, qrels_file, topics_file
from src.evaluation.retrieval import RunResult, summarize

# Per language: passages (docid -> text), topics and TREC qrels (grade 0 = judged non-relevant).
FIXTURE = {
    "sw": {
        "docs": {f"sw-{i}#0": f"Habari namba {i} kuhusu {'mto' if i < 6 else 'mlima'}" for i in range(12)},
        "topics": {"101": "Mto mrefu ni upi?", "102": "Mlima mrefu ni upi?", "103": "Swali bila jibu"},
        "qrels": [("101", "sw-1#0", 1), ("101", "sw-2#0", 1), ("101", "sw-3#0", 0), ("102", "sw-7#0", 1),
                  ("103", "sw-4#0", 0)],
    },
    "fi": {
        "docs": {f"fi-{i}#0": f"Kappale {i} aiheesta {'järvi' if i < 5 else 'metsä'}" for i in range(10)},
        "topics": {"201": "Mikä on Suomen suurin järvi?"},
        "qrels": [("201", "fi-0#0", 1), ("201", "fi-4#0", 0)],
    },
}


def write_miracl(root: Path) -> Path:
    """Files as in miracl/miracl and miracl/miracl-corpus; sw's corpus in two shards, one gzipped."""
    for lang, part in FIXTURE.items():
        topics, qrels = topics_file(root, lang, "dev"), qrels_file(root, lang, "dev")
        topics.parent.mkdir(parents=True)
        qrels.parent.mkdir(parents=True)
        topics.write_text("".join(f"{q}\t{t}\n" for q, t in part["topics"].items()), encoding="utf-8")
        qrels.write_text("".join(f"{q} Q0 {d} {g}\n" for q, d, g in part["qrels"]), encoding="utf-8")
        folder = root / f"miracl-corpus-v1.0-{lang}"
        folder.mkdir(parents=True)
        lines = [json.dumps({"docid": d, "title": lang.upper(), "text": t}, ensure_ascii=False) + "\n"
                 for d, t in part["docs"].items()]
        half = len(lines) // 2
        with gzip.open(folder / "docs-0.jsonl.gz", "wt", encoding="utf-8") as fh:
            fh.writelines(lines[:half])
        (folder / "docs-1.jsonl").write_text("".join(lines[half:]), encoding="utf-8")
    return root


@pytest.fixture
def miracl_dir(tmp_path: Path) -> Path:
    """A two-language MIRACL folder written by code."""
    return write_miracl(tmp_path / "miracl")


def test_loads_each_language_with_its_corpus(miracl_dir: Path, tmp_path: Path) -> None:
    sets = load_miracl(miracl_dir, ["sw", "fi"], "dev", "miracl", cache_dir=tmp_path / "cache")
    assert list(sets) == ["sw", "fi"]
    sw, fi = sets["sw"], sets["fi"]
    assert len(corpus_files(miracl_dir, "sw")) == 2 and len(sw.corpus) == 12 and len(fi.corpus) == 10
    assert sw.query_ids == ["101", "102", "103"] and fi.query_ids == ["201"]  # 103: judged, none relevant
    assert sw.language == "sw" and sw.corpus[7] == {"_id": "sw-7#0", "title": "SW", "text": "Habari namba 7 kuhusu mlima"}
    np.testing.assert_array_equal(sw.rel, [[1, 2], [7, -1], [-1, -1]])


def test_hand_worked_per_language_and_macro(miracl_dir: Path, tmp_path: Path) -> None:
    """nDCG@10 / R@100 per language by hand, then the {dataset}/mono/{metric}/{lang} keys and macro mean."""
    from src.evaluation.metrics import topk_metrics

    sets = load_miracl(miracl_dir, ["sw", "fi"], "dev", "miracl", cache_dir=tmp_path / "cache")
    measures = ["nDCG@10", "R@100"]
    ranking = {"101": ["sw-2#0", "sw-0#0", "sw-1#0"], "102": ["sw-0#0", "sw-5#0"], "103": ["sw-4#0"],
               "201": ["fi-4#0", "fi-0#0"]}
    runs = {}
    for lang, data in sets.items():
        rows = corpus_rows(data.corpus, [d for q in data.query_ids for d in ranking[q]])
        width = max(len(ranking[q]) for q in data.query_ids)
        ids = np.array([[rows[d] for d in ranking[q]] + [-1] * (width - len(ranking[q])) for q in data.query_ids])
        runs[lang] = RunResult(data, ids, np.zeros(ids.shape), topk_metrics(ids, data.rel, data.grades, measures),
                               None, 0.0, 0.0)
    m = summarize("miracl", runs, measures)
    # sw 101: relevant at ranks 1 and 3 -> (1 + 1/log2(4)) / (1 + 1/log2(3)) = 0.919720; 102: not retrieved -> 0;
    # 103: judged, nothing relevant -> 0 (trec_eval)
    assert m["miracl/mono/nDCG10/sw"] == pytest.approx((1.5 / (1 + 1 / np.log2(3)) + 0.0 + 0.0) / 3)
    # fi 201: its one relevant passage at rank 2 -> 1/log2(3)
    assert m["miracl/mono/nDCG10/fi"] == pytest.approx(1 / np.log2(3))
    assert m["miracl/mono/nDCG10"] == pytest.approx((m["miracl/mono/nDCG10/sw"] + m["miracl/mono/nDCG10/fi"]) / 2)
    assert m["miracl/mono/R100/sw"] == pytest.approx(1 / 3) and m["miracl/mono/R100/fi"] == 1.0
    assert m["miracl/mono/queries"] == 4.0
    # The run file goes through the one TREC writer (src/evaluation/artifacts/trec.py): `%.9g` scores, no -1 padding.
    lines = runs["sw"].write_trec(tmp_path / "trec" / "sw.trec").read_text(encoding="utf-8").splitlines()
    assert lines[:3] == ["101 Q0 sw-2#0 1 0 xlir", "101 Q0 sw-0#0 2 0 xlir", "101 Q0 sw-1#0 3 0 xlir"]
    assert lines[3:] == ["102 Q0 sw-0#0 1 0 xlir", "102 Q0 sw-5#0 2 0 xlir", "103 Q0 sw-4#0 1 0 xlir"]


def test_offline_hub_download_is_refused(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(RuntimeError, match="HF_HUB_OFFLINE is set"):
        load_miracl(None, ["sw"], cache_dir=tmp_path)


def test_layout_errors_name_file_and_language(miracl_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="not MIRACL languages"):
        load_miracl(miracl_dir, ["de"], cache_dir=tmp_path)
    with pytest.raises(FileNotFoundError, match=r"data.eval.miracl \(te\).*topics.miracl-v1.0-te-dev.tsv"):
        load_miracl(miracl_dir, ["te"], cache_dir=tmp_path)
    qrels_file(miracl_dir, "fi", "dev").write_text("201 Q0 fi-0#0\n")
    with pytest.raises(ValueError, match="expected `qid Q0 docid rel`"):
        load_miracl(miracl_dir, ["fi"], cache_dir=tmp_path)


def test_config_preset_defaults_to_the_16_dev_languages() -> None:
    from hydra import compose, initialize_config_dir

    from tests.conftest import ROOT

    with initialize_config_dir(str(ROOT / "conf"), version_base="1.3"):
        cfg = compose("evaluate", overrides=["data=miracl"])
    assert cfg.data.eval.miracl.kind == "miracl" and cfg.data.eval.miracl.split == "dev"
    assert len(cfg.data.eval.miracl.languages) == 16 and cfg.data.eval.miracl.hub_corpus == "miracl/miracl-corpus"
