"""Training-set fingerprints: hashes of content texts, saved with checkpoints and exported models."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from src.data.lareqa import load_lareqa
from src.evaluation.guard import ZeroShotOverlapError, text_hash
from src.evaluation.provenance import (
    HASHES_FILE,
    KEY,
    META_FILE,
    TrainingFingerprint,
    from_checkpoint,
    from_folder,
    recorded_training_sets,
)

TRAIN = ["WHERE did the cat   sit?", "Berlin liegt in Deutschland.", "unrelated text here", "It was warm.",
         "where did the cat sit?"]


def test_hashes_content_texts_sorted_and_unique() -> None:
    fp = TrainingFingerprint.from_texts("mini_train", ["en", "de"], TRAIN, min_chars=10)
    # "It was warm." (9 letters) is not content; the two spellings of the cat question are one text
    assert fp.hashes.shape == (3, 16) and fp.hashes.dtype == np.uint8
    rows = [r.tobytes() for r in fp.hashes]
    assert rows == sorted(rows) and text_hash("Where did the cat sit?") in rows
    assert fp.digest == TrainingFingerprint.from_texts("other", ["en"], reversed(TRAIN), 10).digest
    assert fp.metadata()["texts"] == 3 and fp.metadata()["languages"] == ["en", "de"]


def test_folder_round_trip_and_damage(tmp_path: Path) -> None:
    fp = TrainingFingerprint.from_texts("mini_train", ["en", "de"], TRAIN, 10)
    fp.save(tmp_path)
    meta = json.loads((tmp_path / META_FILE).read_text())
    assert meta["name"] == "mini_train" and meta["digest"] == fp.digest and meta["hashes_file"] == HASHES_FILE
    loaded = from_folder(tmp_path)
    assert loaded is not None and loaded.digest == fp.digest and loaded.languages == ("en", "de")
    assert from_folder(tmp_path / "nothing") is None
    np.save(tmp_path / HASHES_FILE, fp.hashes[:2])
    with pytest.raises(ValueError, match="do not match their digest"):
        from_folder(tmp_path)
    (tmp_path / HASHES_FILE).unlink()
    with pytest.raises(FileNotFoundError, match="incomplete"):
        from_folder(tmp_path)


def test_checkpoint_entry_round_trip(tmp_path: Path) -> None:
    fp = TrainingFingerprint.from_texts("mini_train", ["en"], TRAIN, 10)
    checkpoint = {"state_dict": {}, KEY: fp.to_checkpoint()}
    torch.save(checkpoint, tmp_path / "last.ckpt")
    loaded = from_checkpoint(tmp_path / "last.ckpt")
    assert loaded is not None and loaded.digest == fp.digest and loaded.name == "mini_train"
    torch.save({"state_dict": {}}, tmp_path / "old.ckpt")
    assert from_checkpoint(tmp_path / "old.ckpt") is None
    assert checkpoint[KEY]["texts"] == 3 and len(checkpoint[KEY]["hashes"]) == 3 * 16
    with pytest.raises(FileNotFoundError, match="ckpt_path=.*no such checkpoint file"):
        from_checkpoint(tmp_path / "missing.ckpt")
    # checkpoint and exported folder of the same run are one training set
    fp.save(tmp_path / "model")
    assert len(recorded_training_sets(str(tmp_path / "last.ckpt"), str(tmp_path / "model"))) == 1
    assert recorded_training_sets(None, "intfloat/multilingual-e5-small") == []


def test_check_names_training_set_eval_set_and_examples(lareqa_dir: Path) -> None:
    ds = {"mini": load_lareqa(lareqa_dir, ["en", "de", "zh"], "mini")}
    fp = TrainingFingerprint.from_texts("mini_train", ["en", "de"], TRAIN, 10)
    with pytest.raises(ZeroShotOverlapError, match=r"2 evaluation texts also occur in training set 'mini_train' "
                       r"\(evaluation set 'mini': 2 texts, e.g. .*Where did the cat sit\?.*eval.allow_overlap"):
        fp.check(ds, allow_overlap=False, min_chars=10)
    assert fp.check(ds, allow_overlap=True, min_chars=10).total == 2
    assert fp.check(ds, allow_overlap=False, min_chars=25).total == 0  # stricter: both texts are shorter
    with pytest.warns(UserWarning, match="below the 10"):
        fp.check(ds, allow_overlap=True, min_chars=0)
