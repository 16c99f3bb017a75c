"""Loader: typed records, real-file counts, and clear errors on malformed files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from src.data.lareqa import DataFormatError, load_lareqa
from tests.conftest import lareqa_json

XQUAD = ["ar", "de", "el", "en", "es", "hi", "ru", "th", "tr", "vi", "zh"]
MLQA = ["ar", "de", "en", "es", "hi", "vi", "zh"]


def test_fixture_records(lareqa_dir: Path) -> None:
    ds = load_lareqa(lareqa_dir, ["en", "de", "zh"])
    assert ds.languages == ("en", "de", "zh")
    en = ds.by_lang["en"]
    assert [q.qid for q in en.questions] == ["en:q1", "en:q2", "en:q3", "en:q4"]
    assert en.questions[2].relevant_uid == "en:0-1-1"
    assert en.candidates[3].sentence == "Paris is in France."
    assert en.candidates[3].paragraph == "en:0-1"
    assert ds.num_questions == 11 and ds.num_candidates == 15


def test_real_counts(real_data: Path) -> None:
    x = load_lareqa(real_data / "xquad-r", XQUAD)
    assert x.num_questions == 13_090 and x.num_candidates == 13_014
    assert all(len(s.questions) == 1190 for s in x.by_lang.values())
    m = load_lareqa(real_data / "mlqa-r", MLQA)
    assert m.num_questions == 4_199 and m.num_candidates == 20_534


def _write(tmp_path: Path, payload: str | dict) -> Path:
    root = tmp_path / "bad"
    root.mkdir(exist_ok=True)
    text = payload if isinstance(payload, str) else json.dumps(payload)
    (root / "en.json").write_text(text)
    return root


def _mutate(fn) -> dict:
    d = lareqa_json("en")
    fn(d)
    return d


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (json.dumps(lareqa_json("en"))[:200], "not valid JSON"),
        ("this is not json", "not valid JSON"),
        ({"version": "1.1"}, "no 'data' field"),
        (_mutate(lambda d: d["data"][0].pop("paragraphs")), "no 'paragraphs' field"),
        (_mutate(lambda d: d["data"][0]["paragraphs"][0].pop("qas")), "no 'qas' field"),
        (_mutate(lambda d: d["data"][0]["paragraphs"][0]["sentence_breaks"].__setitem__(0, [0, 9999])),
         "sentence_breaks[0]"),
        (_mutate(lambda d: d["data"][0]["paragraphs"][0]["qas"][0]["answers"][0].__setitem__("answer_start", 5000)),
         "outside every sentence"),
        (_mutate(lambda d: d["data"][0]["paragraphs"][1]["qas"][0].__setitem__("id", "q1")), "appears twice"),
        (_mutate(lambda d: d["data"][0]["paragraphs"][0]["qas"][0].__setitem__("question", "  ")), "empty question"),
    ],
)
def test_malformed_files_name_file_and_field(tmp_path: Path, payload, message: str) -> None:
    root = _write(tmp_path, payload)
    with pytest.raises(DataFormatError) as err:
        load_lareqa(root, ["en"])
    assert str(root / "en.json") in str(err.value)
    assert message in str(err.value)


def test_missing_language_file_and_folder(lareqa_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"language 'fr' has no file .*fr\.json.*de, en, zh"):
        load_lareqa(lareqa_dir, ["en", "fr"])
    with pytest.raises(FileNotFoundError, match="make data"):
        load_lareqa(tmp_path / "nowhere", ["en"])
