"""Embeddings round trip: the same arrays, the same grid, the record files in order."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from src.data.lareqa import LareqaDataset
from src.evaluation.artifacts.embeddings import load_embeddings, save_embeddings
from src.evaluation.grid import score_grid
from tests.evaluation.artifacts.helpers import LANGS, assert_same_grid, random_embeddings


def test_embeddings_round_trip(ds: LareqaDataset, tmp_path: Path) -> None:
    emb = random_embeddings(ds)
    paths = save_embeddings(ds, emb, tmp_path)
    assert len(paths) == 3 * 4 + 1 and (tmp_path / "README.txt").is_file()
    back = load_embeddings(tmp_path, LANGS)
    for x in LANGS:
        assert back.questions[x].dtype == np.float32
        np.testing.assert_array_equal(back.questions[x], emb.questions[x])
        np.testing.assert_array_equal(back.candidates[x], emb.candidates[x])
    assert_same_grid(score_grid(ds, back), score_grid(ds, emb))
    zh_q = [json.loads(line) for line in (tmp_path / "zh.questions.jsonl").read_text(encoding="utf-8").splitlines()]
    assert [q["qid"] for q in zh_q] == ["zh:q1", "zh:q2", "zh:q4"] and zh_q[0]["text"] == "猫坐在哪里？"
    assert zh_q[2]["relevant_uid"] == "zh:0-1-0"
    en_c = [json.loads(line) for line in (tmp_path / "en.candidates.jsonl").read_text(encoding="utf-8").splitlines()]
    assert len(en_c) == 5 and en_c[3] == {"uid": "en:0-1-0", "sentence": "Paris is in France.", "paragraph": "en:0-1"}
