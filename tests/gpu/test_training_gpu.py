"""End to end on CUDA: bf16-mixed and 16-mixed runs with evaluation and MLflow, DDP over NCCL on one GPU."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from tests.gpu import GPU
from tests.integration.helpers import mlflow_runs, run_module

pytestmark = GPU

# Tiny model, 20 steps, evaluation at step 10 and at the end on 5 XQuAD-R languages (scripts of every kind).
RUN = ["model=tiny", "trainer.max_steps=20", "data.batch_size=32", "trainer.log_every_n_steps=5",
       "callbacks.retrieval_eval.every_n_steps=10", "eval.trec_depth=5", "data.eval.xquad_r.languages=[ar,de,en,th,zh]"]
# Each test's overrides besides paths and the store (tests/test_gpu_check.py composes them on the CPU).
OVERRIDES = {
    "bf16-mixed": [*RUN, "trainer=gpu", "trainer.precision=bf16-mixed"],
    "16-mixed": [*RUN, "trainer=gpu", "trainer.precision=16-mixed"],
    "ddp": [*RUN, "trainer=ddp", "trainer.accelerator=gpu", "trainer.devices=1", "trainer.precision=bf16-mixed",
            "model.gather_negatives=true", "model.cached_negatives=true", "model.cache_chunk_size=8"],
}


def train_run(db: Path) -> object:
    """The one training run of a store (a sweep's parent would be another)."""
    (run,) = [r for r in mlflow_runs(db) if r.data.tags.get("task") == "train"]
    return run


def check_run(run: object, out: Path) -> None:
    """FINISHED, finite loss, grid metrics from both evaluations, checkpoint and exported model."""
    assert run.info.status == "FINISHED"
    m = run.data.metrics
    assert math.isfinite(m["train/loss"]) and 0.0 < m["xquad_r/mono/map"] <= 1.0
    assert {"xquad_r/cross/map", "xquad_r/multi/map", "xquad_r/multi/rank_distance"} <= m.keys()
    assert (out / "checkpoints" / "last.ckpt").is_file() and (out / "model" / "config.json").is_file()


@pytest.mark.parametrize("precision", ["bf16-mixed", "16-mixed"])
def test_mixed_precision_run(tmp_path: Path, real_data: Path, precision: str) -> None:
    """`trainer=gpu` at each mixed precision (16-mixed goes through Lightning's GradScaler)."""
    db, out = tmp_path / "mlflow.db", tmp_path / "run"
    proc = run_module("src.run", *OVERRIDES[precision], f"paths.data_dir={real_data.parent}",
                      f"logger.tracking_uri=sqlite:///{db}", f"hydra.run.dir={out}", timeout=400)
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-4000:]
    assert "GPU available: True (cuda), used: True" in log and "Automatic Mixed Precision" in log
    run = train_run(db)
    assert run.data.params["trainer.precision"] == precision
    check_run(run, out)


def test_ddp_nccl_on_one_gpu(tmp_path: Path, real_data: Path) -> None:
    """`trainer=ddp` with one CUDA device: an NCCL process group, gathered negatives and GradCache."""
    db, out = tmp_path / "mlflow.db", tmp_path / "run"
    proc = run_module("src.run", *OVERRIDES["ddp"], f"paths.data_dir={real_data.parent}",
                      f"logger.tracking_uri=sqlite:///{db}", f"hydra.run.dir={out}", timeout=400)
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-4000:]
    assert "distributed_backend=nccl" in log and "MEMBER: 1/1" in log
    run = train_run(db)
    assert run.data.params["model.cached_negatives"] == "True"
    check_run(run, out)
