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
from lightning.pytorch import LightningModule, Trainer
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.utilities.exceptions import SIGTERMException
from torch.utils.data import DataLoader, TensorDataset

from src.core.config import ConfigError, validate
from src.runs.record import RunRecord, config_fingerprint, find_last, last_checkpoint, resolve
from src.training.checkpoints import (
    VALIDATION_OWED_KEY,
    InterruptCheckpoint,
    ResumeStateCallback,
    owe_validation,
    rng_states,
    set_rng_states,
)
from src.training.launch import slurm_plugins
from tests.core.test_config import make_cfg

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


def test_last_checkpoint_takes_the_newest_of_last_and_its_versions(tmp_path: Path) -> None:
    run = _run(tmp_path, "a", "fp")
    versioned = run / "checkpoints" / "last-v1.ckpt"
    versioned.write_bytes(b"x")
    os.utime(run / "checkpoints" / "last.ckpt", (time.time() - 60, time.time() - 60))
    assert last_checkpoint(run) == versioned
    os.utime(run / "checkpoints" / "last.ckpt", (time.time() + 60, time.time() + 60))
    assert last_checkpoint(run) == run / "checkpoints" / "last.ckpt"


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
    from src.runs.record import config_changes

    old = {"trainer": {"max_steps": 300, "precision": "auto"}, "eval": {"debias": ["center"]}, "hydra": {"a": 1}}
    new = {"trainer": {"max_steps": 200, "precision": "auto"}, "eval": {"debias": ["center"], "new_key": 1},
           "hydra": {"a": 2}}
    assert config_changes(old, new) == ["eval.new_key", "trainer.max_steps"]
    assert config_changes(old, old) == []


class _Killed(Exception):
    """Stands for a SIGKILL: no callback handles it, so only checkpoints already on disk survive."""


class _ToyModule(LightningModule):
    """A linear model that validates every 4 steps and can die at a chosen point."""

    def __init__(self, kill_at: tuple[str, int] | None = None) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.layer = torch.nn.Linear(4, 1)
        self.kill_at = kill_at  # ("train" | "validation", global step)
        self.validated: dict[int, int] = {}  # global step -> validation batches run
        self.selected: dict[int, tuple[str, float]] = {}  # global step -> best checkpoint after its validation

    def training_step(self, batch: list[torch.Tensor], batch_idx: int) -> torch.Tensor:
        if self.kill_at == ("train", self.global_step):
            raise _Killed
        if self.kill_at == ("sigterm", self.global_step):
            raise SIGTERMException
        return self.layer(batch[0]).pow(2).mean()

    def validation_step(self, batch: list[torch.Tensor], batch_idx: int) -> None:
        if self.kill_at == ("validation", self.global_step) and batch_idx == 2:
            raise _Killed
        self.validated[self.global_step] = self.validated.get(self.global_step, 0) + 1
        self.log("val/loss", self.layer(batch[0]).pow(2).mean())

    def on_validation_end(self) -> None:
        best = next(c for c in self.trainer.checkpoint_callbacks if c.monitor)  # type: ignore[attr-defined]
        self.selected[self.global_step] = (Path(best.best_model_path).name, float(best.best_model_score))

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.01)


def _fit(folder: Path, module: _ToyModule, resume_state: bool = True, ckpt: str | None = None) -> None:
    """Train to step 18 (validation every 4, `last.ckpt` every 4 steps) or the kill."""
    data = TensorDataset(torch.linspace(-1, 1, 1600).reshape(400, 4))
    best = ModelCheckpoint(dirpath=folder, filename="best-{step}", monitor="val/loss", save_top_k=1,
                           save_weights_only=True)
    callbacks = [ModelCheckpoint(dirpath=folder, save_last=True, save_top_k=0, every_n_train_steps=4), best,
                 InterruptCheckpoint(folder)]
    trainer = Trainer(max_steps=18, val_check_interval=4, check_val_every_n_epoch=None, logger=False,
                      callbacks=callbacks + ([ResumeStateCallback()] if resume_state else []),
                      enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=0)
    try:
        trainer.fit(module, DataLoader(data, batch_size=4), DataLoader(data, batch_size=100), ckpt_path=ckpt)
    except (_Killed, SIGTERMException):
        return
    progress = trainer.fit_loop.epoch_loop.val_loop.batch_progress.total
    assert progress.ready == progress.started == progress.processed == progress.completed  # a clean restart state


@pytest.mark.parametrize("kill_at", [("validation", 8), ("train", 10)], ids=["during", "after"])
def test_a_resume_runs_the_validation_its_checkpoint_was_saved_before(tmp_path: Path,
                                                                       kill_at: tuple[str, int]) -> None:
    # last.ckpt of step 8 is written before step 8's validation; killed during that validation or two steps after it
    reference = _ToyModule()
    _fit(tmp_path / "ref", reference)
    assert reference.validated == {4: 4, 8: 4, 12: 4, 16: 4}

    first = _ToyModule(kill_at)
    _fit(tmp_path / "run", first)
    assert torch.load(tmp_path / "run" / "last.ckpt", weights_only=False)[VALIDATION_OWED_KEY] == 8
    resumed = _ToyModule()
    _fit(tmp_path / "run", resumed, ckpt=str(tmp_path / "run" / "last.ckpt"))
    # step 8's validation runs whole, once, before training goes on, and the selection sees it as the
    # uninterrupted run did (later steps differ: this toy's DataLoader restarts its epoch on resume)
    assert resumed.validated == {8: 4, 12: 4, 16: 4}
    # (re-saving an existing name, Lightning writes best-step=8-v1.ckpt: same weights)
    assert resumed.selected[8][0].removesuffix("-v1.ckpt").removesuffix(".ckpt") == "best-step=8"
    assert reference.selected[8][0] == "best-step=8.ckpt"
    assert resumed.selected[8][1] == pytest.approx(reference.selected[8][1], abs=1e-7)


def test_without_the_rewind_lightning_skips_the_owed_validation(tmp_path: Path) -> None:
    # The behaviour ResumeStateCallback corrects (Lightning 2.6): if this starts failing, Lightning re-runs the
    # validation itself and the rewind may be redundant.
    _fit(tmp_path, _ToyModule(("train", 10)), resume_state=False)
    resumed = _ToyModule()
    _fit(tmp_path, resumed, resume_state=False, ckpt=str(tmp_path / "last.ckpt"))
    assert resumed.validated == {12: 4, 16: 4}


def test_a_sigterm_before_the_first_step_save_leaves_one_last_checkpoint(tmp_path: Path) -> None:
    # InterruptCheckpoint writes last.ckpt at step 2; the step-cadence callback must take it as its own file
    # after the resume (else it writes last-v1.ckpt and a second resume would start from step 2 again)
    _fit(tmp_path, _ToyModule(("sigterm", 2)))
    assert torch.load(tmp_path / "last.ckpt", weights_only=False)["global_step"] == 2
    _fit(tmp_path, _ToyModule(), ckpt=str(tmp_path / "last.ckpt"))
    assert sorted(p.name for p in tmp_path.glob("last*.ckpt")) == ["last.ckpt"]
    assert torch.load(tmp_path / "last.ckpt", weights_only=False)["global_step"] == 16


def test_owe_validation_is_lightnings_mid_evaluation_state() -> None:
    progress = {"total": {"ready": 8, "started": 8, "processed": 8, "completed": 8},
                "current": {"ready": 4, "started": 4, "processed": 4, "completed": 4}, "is_last_batch": True}
    fit_loop = {"epoch_loop.val_loop.batch_progress": progress, "epoch_loop.state_dict": {"_batches_that_stepped": 8}}
    owe_validation(fit_loop)
    assert progress == {"total": {"ready": 9, "started": 9, "processed": 8, "completed": 8},
                        "current": {"ready": 1, "started": 1, "processed": 0, "completed": 0}, "is_last_batch": False}
    assert fit_loop["epoch_loop.state_dict"] == {"_batches_that_stepped": 7}  # the loggers' step, counted once
