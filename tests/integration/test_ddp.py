"""DDP under Hydra: a 2-job multirun whose jobs each run 2 CPU ranks (gloo); GradCache end to end."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from src.training.launch import RUN_ID_ENV, child_command, config_flags, inherited_run_id
from tests.integration.helpers import mlflow_runs, run_module

FAST = ["model=tiny", "trainer.max_steps=3", "data.batch_size=8", "trainer.precision=32-true", "export_model=false",
        "eval.exports=false", "data.eval.xquad_r.languages=[en,de]", "trainer.log_every_n_steps=1"]


def train_runs(db: Path) -> list:
    """Training runs only (a sweep also records its parent run)."""
    return [r for r in mlflow_runs(db) if r.data.tags.get("task") == "train"]


def test_child_command_runs_only_this_job() -> None:
    argv = ["-m", "--config-name", "config", "sampling=xx,xy", "trainer=ddp", "hydra.sweep.dir=/s"]
    cmd = child_command(["py", "-m", "src.run"], argv, ["sampling=xy", "trainer=ddp"],
                        ["hydra.sweep.dir=/s", "hydra.job.chdir=true", "hydra/launcher=submitit_slurm"],
                        "/s/1", "run", 1)
    assert cmd == ["py", "-m", "src.run", "--config-name", "config", "sampling=xy", "trainer=ddp",
                   "hydra.job.chdir=true", 'hydra.run.dir="/s/1"', "hydra.output_subdir=null",
                   "hydra.job.name=run_rank1"]
    assert config_flags(["-cn=x", "a=1", "-cp", "conf", "-m"]) == ["-cn=x", "-cp", "conf"]


def test_children_resume_from_rank_zeros_checkpoint(tmp_path: Path) -> None:
    """A re-run sweep job resumes on rank 0 by itself: its children get the checkpoint on their command line."""
    from src.training.launch import fit_checkpoint

    ckpt = tmp_path / "last.ckpt"
    ckpt.write_bytes(b"x")
    cmd = child_command(["py", "-m", "src.run"], [], ["seed=1", "resume=true", "ckpt_path=last"], [], "/s/1", "run", 1,
                        str(ckpt))
    assert cmd[3:5] == ["seed=1", f'ckpt_path="{ckpt}"'] and "resume=true" not in cmd

    def _fit_impl(model, train_dataloaders=None, val_dataloaders=None, datamodule=None, ckpt_path=None,
                  weights_only=None):
        return None

    assert fit_checkpoint(_fit_impl, ("m", None, None, "dm", str(ckpt), None), {}) == str(ckpt)
    assert fit_checkpoint(_fit_impl, ("m",), {"ckpt_path": str(ckpt)}) == str(ckpt)
    assert fit_checkpoint(_fit_impl, ("m", None, None, "dm", None), {}) is None
    assert fit_checkpoint(_fit_impl, ("m", None, None, "dm", "last"), {}) is None  # Lightning's name, not a file


def test_inherited_run_id(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(RUN_ID_ENV, "abc")
    monkeypatch.setenv("LOCAL_RANK", "1")
    assert inherited_run_id() == "abc"
    monkeypatch.setenv("LOCAL_RANK", "0")  # the launching process never adopts a (stale) id
    assert inherited_run_id() is None


def test_ddp_two_ranks_inside_two_job_multirun(tmp_path: Path, real_data: Path) -> None:
    """Children must not re-run the sweep; each job's 2 ranks share its folder and one MLflow run."""
    db, sweep = tmp_path / "mlflow.db", tmp_path / "sweep"
    proc = run_module(
        "src.run", "-m", "sampling=xx,xy", "trainer=ddp", "trainer.accelerator=cpu", "trainer.devices=2", *FAST,
        "model.gather_negatives=true", "model.cached_negatives=true", "model.cache_chunk_size=4",
        f"paths.data_dir={real_data.parent}", f"logger.tracking_uri=sqlite:///{db}", f"hydra.sweep.dir={sweep}",
        timeout=900,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    runs = train_runs(db)
    assert sorted(r.data.params["sampling.name"] for r in runs) == ["xx", "xy"]
    assert all(r.info.status == "FINISHED" for r in runs)
    for r in runs:
        assert r.data.params["trainer.devices"] == "2" and r.data.params["model.gather_negatives"] == "True"
        assert math.isfinite(r.data.metrics["train/loss"]) and 0.0 < r.data.metrics["xquad_r/mono/map"] <= 1.0
    assert sorted(p.name for p in sweep.iterdir() if p.is_dir()) == ["0", "1"]
    for job in ("0", "1"):
        folder = sweep / job
        assert (folder / "run_rank1.log").is_file()  # rank 1 ran this job, in this folder
        assert "GLOBAL_RANK: 1, MEMBER: 2/2" in (folder / "run_rank1.log").read_text()
        assert json.loads((folder / "metrics.json").read_text())["xquad_r/mono/map"] > 0
        assert (folder / "checkpoints" / "last.ckpt").is_file()
    # Two jobs x two ranks: exactly two rank-1 starts, i.e. no child re-ran the sweep.
    assert proc.stdout.count("GLOBAL_RANK: 1, MEMBER: 2/2") + proc.stderr.count("GLOBAL_RANK: 1, MEMBER: 2/2") <= 4


def test_cached_negatives_end_to_end(tmp_path: Path, real_data: Path) -> None:
    db = tmp_path / "mlflow.db"
    proc = run_module(
        "src.run", *FAST, "model.cached_negatives=true", "model.cache_chunk_size=4", "data.batch_size=16",
        f"paths.data_dir={real_data.parent}", f"logger.tracking_uri=sqlite:///{db}", f"hydra.run.dir={tmp_path / 'run'}",
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    (run,) = train_runs(db)
    assert run.info.status == "FINISHED" and run.data.params["model.cached_negatives"] == "True"
    assert math.isfinite(run.data.metrics["train/loss"])
