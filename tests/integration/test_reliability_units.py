"""In-process checks of the resume bookkeeping, RNG state round trip, SLURM plugin and reliability config keys."""

from __future__ import annotations

import io
import os
import random
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from src.config import ConfigError, validate
from src.training.checkpoints import rng_states, set_rng_states
from src.training.launch import slurm_plugins
from src.training.resume import RunRecord, config_fingerprint, find_last, resolve
from tests.test_config import make_cfg

pytestmark = pytest.mark.reliability


def test_rng_states_round_trip_through_a_weights_only_checkpoint() -> None:
    random.random(), np.random.rand(), torch.rand(1)
    buf = io.BytesIO()
    torch.save({"rng": rng_states()}, buf)
    expected = (random.random(), float(np.random.rand()), torch.rand(3).tolist())
    buf.seek(0)
    set_rng_states(torch.load(buf, weights_only=True)["rng"])  # what Lightning's default resume load does
    assert (random.random(), float(np.random.rand()), torch.rand(3).tolist()) == expected


def test_fingerprint_ignores_where_and_how_but_not_what() -> None:
    cfg = {"seed": 1, "ckpt_path": None, "resume": False, "hydra": {"job": {"num": 0}},
           "paths": {"output_dir": "/runs/a"}, "callbacks": {"ckpt": {"dirpath": "/runs/a/checkpoints"}}}
    moved = {**cfg, "ckpt_path": "last", "resume": True, "hydra": {"job": {"num": 3}},
             "paths": {"output_dir": "/runs/b"}, "callbacks": {"ckpt": {"dirpath": "/runs/b/checkpoints"}}}
    assert config_fingerprint(cfg, "/runs/a") == config_fingerprint(moved, "/runs/b")
    assert config_fingerprint(cfg, "/runs/a") != config_fingerprint({**cfg, "seed": 2}, "/runs/a")
    # Every callback counts, an added one (e.g. a test hook) too: a resumed attempt passes the same ones.
    hooked = {**cfg, "callbacks": {**cfg["callbacks"], "step_delay": {"seconds": 0.4}}}
    assert config_fingerprint(cfg, "/runs/a") != config_fingerprint(hooked, "/runs/a")


def _run(root: Path, name: str, fingerprint: str, with_ckpt: bool = True) -> Path:
    folder = root / name
    RunRecord(str(folder), fingerprint, f"id-{name}", "sqlite:///x.db", "xlir").write()
    if with_ckpt:
        (folder / "checkpoints").mkdir()
        (folder / "checkpoints" / "last.ckpt").write_bytes(b"x")
    return folder


def test_find_last_picks_the_newest_checkpoint_of_the_same_config(tmp_path: Path) -> None:
    _run(tmp_path, "old", "fp")
    newest = _run(tmp_path, "new", "fp")
    os.utime(newest / "checkpoints" / "last.ckpt", (time.time() + 10, time.time() + 10))
    _run(tmp_path, "other", "different")
    _run(tmp_path, "nockpt", "fp", with_ckpt=False)
    record, ckpt = find_last("fp", [tmp_path / "fresh", tmp_path])
    assert record.mlflow_run_id == "id-new" and ckpt == newest / "checkpoints" / "last.ckpt"
    assert find_last("unknown", [tmp_path]) is None


def test_resolve(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    run = _run(tmp_path, "a", "fp")
    fresh = tmp_path / "fresh"
    assert resolve(None, False, "fp", fresh, tmp_path) == (None, None)
    ckpt, record = resolve("last", False, "fp", fresh, tmp_path)
    assert ckpt == str(run / "checkpoints" / "last.ckpt") and record.run_dir == str(run)
    assert resolve(None, True, "fp", fresh, tmp_path)[1] == record  # resume=true is ckpt_path=last
    # An explicit file continues its MLflow run only for the same config; else it is a warm start.
    assert resolve(ckpt, False, "fp", fresh, tmp_path)[1] == record
    assert resolve(ckpt, False, "other", fresh, tmp_path) == (ckpt, None)
    with pytest.raises(ConfigError, match="ckpt_path=last: no checkpoints/last.ckpt .*fingerprint other"):
        resolve("last", False, "other", fresh, tmp_path)
    with pytest.raises(ConfigError, match="expected an existing checkpoint file or 'last'"):
        resolve(str(tmp_path / "nope.ckpt"), False, "fp", fresh, tmp_path)
    # A SLURM requeue reruns the job in its own folder and resumes from there by itself.
    assert resolve(None, False, "fp", run, tmp_path) == (None, None)
    monkeypatch.setenv("SLURM_RESTART_COUNT", "1")
    assert resolve(None, False, "fp", run, tmp_path) == (ckpt, record)


def test_slurm_auto_requeue_plugin(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in [v for v in os.environ if v.startswith("SLURM_")]:
        monkeypatch.delenv(var)
    assert slurm_plugins(True) == {}
    monkeypatch.setenv("SLURM_NTASKS", "1")
    monkeypatch.setenv("SLURM_JOB_NAME", "xlir")  # what a submitit_slurm job looks like to Lightning
    (plugin,) = slurm_plugins(True)["plugins"]
    assert plugin.auto_requeue
    assert slurm_plugins(False) == {}


@pytest.mark.parametrize(
    ("override", "key"),
    [("on_nonfinite=ignore", "on_nonfinite"), ("slurm_auto_requeue=maybe", "slurm_auto_requeue"),
     ("ckpt_path=[last]", "ckpt_path"), ("resume=maybe", "resume")],
)
def test_reliability_keys_are_validated(override: str, key: str) -> None:
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        validate(make_cfg(override))


def test_config_changes_names_differing_keys() -> None:
    from src.training.resume import config_changes

    old = {"trainer": {"max_steps": 300, "precision": "auto"}, "eval": {"debias": ["center"]}, "hydra": {"a": 1}}
    new = {"trainer": {"max_steps": 200, "precision": "auto"}, "eval": {"debias": ["center"], "new_key": 1},
           "hydra": {"a": 2}}
    assert config_changes(old, new) == ["eval.new_key", "trainer.max_steps"]
    assert config_changes(old, old) == []
