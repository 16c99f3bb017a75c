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
