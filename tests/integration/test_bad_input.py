"""Bad input fails fast, names the key or file, and leaves no MLflow run marked FINISHED."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.conftest import lareqa_json
from tests.integration.helpers import mlflow_runs, run_module


def _fails(tmp_path: Path, *overrides: str) -> str:
    db = tmp_path / "mlflow.db"
    proc = run_module("src.run", "model=tiny", f"logger.tracking_uri=sqlite:///{db}",
                      f"hydra.run.dir={tmp_path / 'run'}", *overrides, timeout=300)
    assert proc.returncode != 0
    assert not [r for r in mlflow_runs(db) if r.info.status == "FINISHED"]
    return proc.stdout + proc.stderr


def test_unknown_sampler(tmp_path: Path) -> None:
    out = _fails(tmp_path, "sampling=nope")
    assert "sampling/nope" in out and "hybrid" in out


def test_alpha_out_of_range(tmp_path: Path, real_data: Path) -> None:
    out = _fails(tmp_path, "sampling.alpha=1.5", f"paths.data_dir={real_data.parent}")
    assert "sampling.alpha=1.5" in out and "[0, 1]" in out


def test_missing_data_folder(tmp_path: Path) -> None:
    out = _fails(tmp_path, f"paths.data_dir={tmp_path / 'missing'}")
    assert str(tmp_path / "missing") in out and "make data" in out


def test_truncated_json(tmp_path: Path, lareqa_dir: Path, real_data: Path) -> None:
    bad = tmp_path / "bad"
    shutil.copytree(lareqa_dir, bad)
    (bad / "de.json").write_text(json.dumps(lareqa_json("de"))[:150])
    out = _fails(tmp_path, f"data.train.path={bad}", "data.train.languages=[en,de,zh]",
                 f"paths.data_dir={real_data.parent}")
    assert f"{bad / 'de.json'}" in out and "not valid JSON" in out


@pytest.mark.parametrize("batch", ["data.batch_size=5000"])
def test_batch_larger_than_distinct_ids(tmp_path: Path, real_data: Path, batch: str) -> None:
    out = _fails(tmp_path, batch, f"paths.data_dir={real_data.parent}")
    assert "batch_size" in out


def test_zero_shot_overlap_is_refused(tmp_path: Path, real_data: Path) -> None:
    # evaluating on the training set itself must trip the guard, with the count and examples
    out = _fails(tmp_path, f"paths.data_dir={real_data.parent}",
                 f"data.eval.xquad_r.path={real_data / 'mlqa-r'}", "data.eval.xquad_r.languages=[de,en]")
    assert "zero-shot check failed" in out and "eval.allow_overlap" in out


def test_missing_model_folder(tmp_path: Path, real_data: Path) -> None:
    out = _fails(tmp_path, "model=labse", f"model.pretrained={tmp_path / 'no-model'}",
                 f"paths.data_dir={real_data.parent}")
    assert f"model.pretrained={tmp_path / 'no-model'}" in out and "does not exist" in out


# --- Reliability battery (docs/reliability.md): every case exits non-zero before training, names the file or
# key and what was expected, and leaves no FINISHED run. Loader details are unit-tested in tests/data.

def _mutated(fn) -> dict:
    d = lareqa_json("de")
    fn(d)
    return d


@pytest.mark.reliability
@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ("this is not json", "not valid JSON"),
        (_mutated(lambda d: d["data"][0]["paragraphs"][1]["qas"][0].__setitem__("id", "q1")), "appears twice"),
    ],
    ids=["not_json", "duplicate_question_id"],
)
def test_malformed_training_file_end_to_end(tmp_path: Path, lareqa_dir: Path, payload, message: str) -> None:
    bad = tmp_path / "bad"
    shutil.copytree(lareqa_dir, bad)
    (bad / "de.json").write_text(payload if isinstance(payload, str) else json.dumps(payload))
    out = _fails(tmp_path, f"data.train.path={bad}", "data.train.languages=[en,de,zh]")
    assert f"{bad / 'de.json'}" in out and message in out
    assert "Trainer.fit" not in out and "Epoch 0" not in out  # failed before training


@pytest.mark.reliability
def test_language_without_file(tmp_path: Path, lareqa_dir: Path) -> None:
    out = _fails(tmp_path, f"data.train.path={lareqa_dir}", "data.train.languages=[en,de,fr]")
    assert f"{lareqa_dir / 'fr.json'}" in out and "language 'fr' has no file" in out


@pytest.mark.reliability
def test_xy_without_two_languages(tmp_path: Path, lareqa_dir: Path) -> None:
    # One language: no (X, Y) pair with X != Y exists, so X-Y batches are impossible.
    out = _fails(tmp_path, "sampling=xy", f"data.train.path={lareqa_dir}", "data.train.languages=[en]",
                 "data.train.val_fraction=0", "data.batch_size=2")
    assert "sampler 'xy' needs cross-language (X, Y) pairs with X != Y, but there are none" in out
    assert "languages: en" in out


@pytest.mark.reliability
@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ("+optim.lrr=0.1", "optim.lrr"),
        ("trainer_precision=32", "trainer_precision"),
        ("data.batch_size=many", "data.batch_size"),
        ("loss.temperature=0", "loss.temperature=0"),
        ("ckpt_path=last", "ckpt_path=last: no checkpoints/last.ckpt"),
        ("trainer.precision=fast", "trainer.precision='fast': expected one of auto, 32-true"),
        ("threads=0", "threads=0: expected an integer >= 1"),
    ],
    ids=["typo_plus", "typo", "wrong_type", "temperature_zero", "resume_nothing", "precision_fast", "threads_zero"],
)
def test_bad_config_values(tmp_path: Path, override: str, expected: str) -> None:
    out = _fails(tmp_path, override)
    assert expected in out


@pytest.mark.reliability
def test_model_folder_without_tokenizer(tmp_path: Path, real_data: Path) -> None:
    folder = tmp_path / "no-tokenizer"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    out = _fails(tmp_path, "model=labse", f"model.pretrained={folder}", f"paths.data_dir={real_data.parent}")
    assert f"model.pretrained={folder}" in out and "holds no tokenizer" in out
