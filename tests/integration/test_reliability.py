"""Interrupted runs resume exactly (SIGKILL, SIGTERM), same seed gives the same digits, non-finite losses are
stopped or skipped, fp16 overflows are absorbed by the loss scaler.

Tiny model on CPU fp32, trained and evaluated on the 3-language fixture corpus (an epoch is 5 batches of 3, so
12 steps cross two epoch boundaries and the kill lands mid-epoch)."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from mlflow.tracking import MlflowClient

from src.runs.record import RECORD_FILE
from tests.conftest import lareqa_json
from tests.integration.helpers import ROOT, mlflow_runs, run_module
from tests.integration.hooks import batch_log, poison, read_batch_log, step_delay

pytestmark = pytest.mark.reliability

STEPS = 12
BASE = ["model=tiny", f"trainer.max_steps={STEPS}", "data.batch_size=3", "trainer.log_every_n_steps=1",
        "trainer.precision=32-true", "trainer.deterministic=true", "eval.exports=false", "export_model=false",
        "data.train.languages=[en,de,zh]", "data.eval.xquad_r.languages=[en,de,zh]", "eval.allow_overlap=true",
        "callbacks.model_checkpoint.every_n_train_steps=3", "callbacks.retrieval_eval.every_n_steps=6",
        batch_log(), "data.train.val_fraction=0"]  # 4 question ids: too few to hold any out


def write_corpus(root: Path) -> Path:
    """The en/de/zh fixture corpus (training and evaluation set of these runs)."""
    for lang in ("en", "de", "zh"):
        (root / f"{lang}.json").write_text(json.dumps(lareqa_json(lang), ensure_ascii=False))
    return root


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One corpus shared by every run of this module."""
    return write_corpus(tmp_path_factory.mktemp("corpus"))


def _args(data: Path, db: Path, run_dir: Path, *extra: str) -> list[str]:
    return [*BASE, f"data.train.path={data}", f"data.eval.xquad_r.path={data}",
            f"logger.tracking_uri=sqlite:///{db}", f"hydra.run.dir={run_dir}", *extra]


def _ok(data: Path, db: Path, run_dir: Path, *extra: str) -> subprocess.CompletedProcess:
    proc = run_module("src.run", *_args(data, db, run_dir, *extra), timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def _start(data: Path, db: Path, run_dir: Path, *extra: str, env: dict[str, str] | None = None) -> subprocess.Popen:
    """The same command as run_module, but in the background so the test can signal it."""
    env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true", "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false",
           **(env or {})}
    return subprocess.Popen([sys.executable, "-m", "src.run", *_args(data, db, run_dir, *extra)], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _wait_for_steps(proc: subprocess.Popen, run_dir: Path, n_steps: int, timeout: float = 300) -> None:
    """Block until the batch log shows n_steps started and a last.ckpt exists (or fail with the output)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"run ended (rc={proc.returncode}) before step {n_steps}:\n{proc.stdout.read()[-3000:]}")
        if (run_dir / "checkpoints" / "last.ckpt").is_file() and len(read_batch_log(run_dir / "batches.jsonl")) >= n_steps:
            return
        time.sleep(0.05)
    proc.kill()
    pytest.fail(f"no step {n_steps} within {timeout}s")


def _numbers(metrics_file: Path) -> dict[str, float]:
    """metrics.json without timings and paths."""
    data = json.loads(metrics_file.read_text())
    return {k: v for k, v in data.items() if isinstance(v, float) and "/time/" not in k}


def _history(db: Path, run_id: str, key: str) -> dict[int, float]:
    """Metric history as step -> value; where a step was logged twice (replayed after a kill), the latest."""
    hist = MlflowClient(tracking_uri=f"sqlite:///{db}").get_metric_history(run_id, key)
    return {h.step: h.value for h in sorted(hist, key=lambda h: h.timestamp)}


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory, corpus: Path) -> tuple[Path, Path]:
    """One uninterrupted run: (store, run folder)."""
    tmp = tmp_path_factory.mktemp("reference")
    _ok(corpus, tmp / "mlflow.db", tmp / "run")
    return tmp / "mlflow.db", tmp / "run"


def test_same_seed_same_metrics_to_the_last_digit(reference: tuple[Path, Path], corpus: Path,
                                                   tmp_path: Path) -> None:
    db, run = reference
    _ok(corpus, tmp_path / "mlflow.db", tmp_path / "run")
    first, second = _numbers(run / "metrics.json"), _numbers(tmp_path / "run" / "metrics.json")
    assert first and first == second  # exact equality, not approx
    assert read_batch_log(run / "batches.jsonl") == read_batch_log(tmp_path / "run" / "batches.jsonl")
    (ref_run,) = mlflow_runs(db)
    (new_run,) = mlflow_runs(tmp_path / "mlflow.db")
    assert _history(db, ref_run.info.run_id, "train/loss") == _history(
        tmp_path / "mlflow.db", new_run.info.run_id, "train/loss")


def test_sigkill_mid_epoch_then_resume_matches_uninterrupted(reference: tuple[Path, Path], corpus: Path,
                                                             tmp_path: Path) -> None:
    ref_db, ref_run = reference
    db, first = tmp_path / "mlflow.db", tmp_path / "attempt1"
    proc = _start(corpus, db, first, step_delay(0.4))
    _wait_for_steps(proc, first, 5)  # checkpoint at step 3 exists, step 4 is under way
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    killed_at = len(read_batch_log(first / "batches.jsonl"))
    assert 5 <= killed_at < STEPS
    saved = torch.load(first / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    assert 0 < saved["PairDataModule"]["sampler"]["batches_yielded"] < 5  # resumes mid-epoch
    (killed,) = mlflow_runs(db)
    assert killed.info.status == "RUNNING"  # a SIGKILL leaves no chance to close it

    # A relaunch gets a new Hydra folder; ckpt_path=last finds the interrupted run by its config (its callbacks,
    # the test hooks included, are part of it).
    proc2 = _ok(corpus, db, tmp_path / "attempt2", step_delay(0.4), "ckpt_path=last")
    assert str(first / "checkpoints" / "last.ckpt") in proc2.stdout + proc2.stderr

    runs = mlflow_runs(db)
    assert len(runs) == 1, "resume must continue the MLflow run, not open a second one"
    run = runs[0]
    assert run.info.run_id == killed.info.run_id == json.loads((first / RECORD_FILE).read_text())["mlflow_run_id"]
    assert run.info.status == "FINISHED" and run.data.tags["resumed_from"].endswith("last.ckpt")

    # Exactly the batches the uninterrupted run saw, and the same numbers to the last digit.
    ref_batches = read_batch_log(ref_run / "batches.jsonl")
    assert len(ref_batches) == STEPS and read_batch_log(first / "batches.jsonl") == ref_batches
    assert _numbers(first / "metrics.json") == _numbers(ref_run / "metrics.json")
    (ref,) = mlflow_runs(ref_db)
    for key in ("train/loss", "train/lr", "xquad_r/cross/map"):
        assert _history(db, run.info.run_id, key) == _history(ref_db, ref.info.run_id, key), key
    assert sorted(_history(db, run.info.run_id, "train/loss")) == list(range(STEPS))

    # No validation split, so no best checkpoint: the zero-shot set never chooses one (test_run covers selection).
    assert not list((first / "checkpoints").glob("best-step*.ckpt"))


def test_sigterm_saves_checkpoint_and_marks_run_killed(corpus: Path, tmp_path: Path) -> None:
    db, run_dir = tmp_path / "mlflow.db", tmp_path / "run"
    proc = _start(corpus, db, run_dir, step_delay(0.4), "callbacks.model_checkpoint.every_n_train_steps=2")
    _wait_for_steps(proc, run_dir, 4)
    proc.send_signal(signal.SIGTERM)
    out = proc.communicate(timeout=120)[0]
    assert proc.returncode == 128 + signal.SIGTERM, out[-2000:]
    (run,) = mlflow_runs(db)
    assert run.info.status == "KILLED"
    ckpt = torch.load(run_dir / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    done = len(read_batch_log(run_dir / "batches.jsonl"))
    # The checkpoint was written at the signal (after the batch under way), not at the last every-2 save.
    assert ckpt["global_step"] == done and 4 <= done < STEPS
    assert ckpt["PairDataModule"]["sampler"]["batches_yielded"] == done


def _poisoned(data: Path, tmp_path: Path, *extra: str, kind: str = "loss") -> tuple[subprocess.CompletedProcess, Path, Path]:
    db, run_dir = tmp_path / "mlflow.db", tmp_path / "run"
    proc = run_module("src.run", *_args(data, db, run_dir, "trainer.max_steps=5", "callbacks.retrieval_eval.every_n_steps=null",
                                        poison(2, kind), *extra), timeout=600)
    return proc, db, run_dir


def test_nonfinite_loss_stops_with_checkpoint_of_last_good_state(corpus: Path, tmp_path: Path) -> None:
    proc, db, run_dir = _poisoned(corpus, tmp_path)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "non-finite loss nan at step 2" in out and "languages [" in out and "xling_ids [" in out
    (run,) = mlflow_runs(db)
    assert run.info.status == "FAILED"
    ckpt = torch.load(run_dir / "checkpoints" / "nonfinite-step2.ckpt", map_location="cpu", weights_only=False)
    assert ckpt["global_step"] == 2
    assert all(torch.isfinite(t).all() for t in ckpt["state_dict"].values() if t.is_floating_point())


def test_nonfinite_loss_skip_counts_and_continues(corpus: Path, tmp_path: Path) -> None:
    proc, db, _ = _poisoned(corpus, tmp_path, "on_nonfinite=skip")
    assert proc.returncode == 0, proc.stderr[-3000:]
    (run,) = mlflow_runs(db)
    assert run.info.status == "FINISHED"
    assert _history(db, run.info.run_id, "train/skipped_batches") == {0: 0.0, 1: 0.0, 2: 1.0, 3: 1.0, 4: 1.0}
    losses = _history(db, run.info.run_id, "train/loss")
    assert math.isnan(losses[2]) and all(math.isfinite(v) for s, v in losses.items() if s != 2)
    assert run.data.metrics["xquad_r/mono/map"] > 0


def test_fp16_loss_scaler_absorbs_an_inf_gradient(corpus: Path, tmp_path: Path) -> None:
    # Lightning maps 16-mixed to bf16-mixed on CPU; the explicit plugin keeps fp16 autocast + GradScaler("cpu").
    fp16 = "[{_target_: lightning.pytorch.plugins.precision.MixedPrecision, precision: 16-mixed, device: cpu}]"
    proc, db, _ = _poisoned(corpus, tmp_path, "trainer.precision=null", f"+trainer.plugins={fp16}", kind="grad")
    assert proc.returncode == 0, proc.stderr[-3000:]
    (run,) = mlflow_runs(db)
    scale = _history(db, run.info.run_id, "train/amp_scale")
    # GradScaler skipped the overflowing step and halved its scale; training went on with finite weights.
    assert scale[2] == scale[1] / 2 and scale[4] == scale[2]
    assert run.info.status == "FINISHED" and 0 < run.data.metrics["xquad_r/mono/map"] <= 1
