"""Shared fixtures: a small LAReQA-format corpus written by code, env for offline MLflow runs."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("XLIR_SHARED_DATA", ROOT.parent / "shared" / "data" / "lareqa"))
REAL_DATA = ROOT / "data" / "lareqa" if (ROOT / "data" / "lareqa").exists() else SHARED

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

# Three languages, two paragraphs each; question ids shared across languages (q3 missing in zh).
_PARAGRAPHS = {
    "en": [
        (["The cat sat on the mat.", "It was warm.", "Dogs bark loudly."],
         [("q1", "Where did the cat sit?", 0), ("q2", "How was it?", 1)]),
        (["Paris is in France.", "Berlin is in Germany."],
         [("q3", "Where is Berlin?", 1), ("q4", "Where is Paris?", 0)]),
    ],
    "de": [
        (["Die Katze sass auf der Matte.", "Es war warm.", "Hunde bellen laut."],
         [("q1", "Wo sass die Katze?", 0), ("q2", "Wie war es?", 1)]),
        (["Paris liegt in Frankreich.", "Berlin liegt in Deutschland."],
         [("q3", "Wo liegt Berlin?", 1), ("q4", "Wo liegt Paris?", 0)]),
    ],
    "zh": [
        (["猫坐在垫子上。", "天气很暖和。", "狗叫得很响。"],
         [("q1", "猫坐在哪里？", 0), ("q2", "天气怎么样？", 1)]),
        (["巴黎在法国。", "柏林在德国。"],
         [("q4", "巴黎在哪里？", 0)]),
    ],
}


def lareqa_json(lang: str) -> dict:
    """One language file in LAReQA's layout (SQuAD v1.1 + sentences + sentence_breaks)."""
    paragraphs = []
    for sentences, qas in _PARAGRAPHS[lang]:
        context, breaks = "", []
        for s in sentences:
            start = len(context) + (1 if context else 0)
            context = f"{context} {s}" if context else s
            breaks.append([start, start + len(s)])
        paragraphs.append({
            "context": context,
            "sentences": sentences,
            "sentence_breaks": breaks,
            "qas": [
                {"id": qid, "question": q, "answers": [{"answer_start": breaks[i][0], "text": sentences[i][:3]}]}
                for qid, q, i in qas
            ],
        })
    return {"version": "1.1", "data": [{"title": "t", "paragraphs": paragraphs}]}


@pytest.fixture
def lareqa_dir(tmp_path: Path) -> Path:
    """A folder with en/de/zh LAReQA files (7 sentences per language, 4/4/3 questions)."""
    root = tmp_path / "mini"
    root.mkdir()
    for lang in _PARAGRAPHS:
        (root / f"{lang}.json").write_text(json.dumps(lareqa_json(lang), ensure_ascii=False))
    return root


@pytest.fixture
def real_data() -> Path:
    """The real LAReQA files (./data/lareqa link or ../shared/data/lareqa)."""
    if not (REAL_DATA / "xquad-r" / "en.json").is_file():
        pytest.fail(f"real LAReQA data not found at {REAL_DATA}; run `make data`")
    return REAL_DATA
