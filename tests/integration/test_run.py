"""End to end: `python -m src.run` with the tiny model on the real data, read back through MLflow;
then `python -m src.evaluate` on what it exported."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from tests.integration.helpers import mlflow_runs, run_module

TINY = ["model=tiny", "trainer.max_steps=12", "data.batch_size=16", "trainer.log_every_n_steps=2",
        "trainer.precision=32-true", "eval.trec_depth=5"]


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory: pytest.TempPathFactory, real_data: Path) -> tuple[Path, Path, str]:
    """One tiny training run shared by the tests of this module: (store, run folder, stdout); its stderr is kept
    in the folder as `stderr.txt` for the console test."""
    tmp = tmp_path_factory.mktemp("tiny")
    db, out = tmp / "mlflow.db", tmp / "run"
    proc = run_module(
        "src.run", *TINY, f"paths.data_dir={real_data.parent}", f"logger.tracking_uri=sqlite:///{db}",
        f"hydra.run.dir={out}", "callbacks.retrieval_eval.every_n_steps=6", "trainer.val_check_interval=4",
        "model.length_buckets=4",  # the bundled model's default path (tiny runs one forward per side)
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    (out / "stderr.txt").write_text(proc.stderr)
    return db, out, proc.stdout


@pytest.fixture(scope="module")
def real_data() -> Path:
    from tests.conftest import REAL_DATA

    return REAL_DATA


def test_tiny_run_logs_params_metrics_artifacts(tiny_run: tuple[Path, Path, str]) -> None:
    db, out, stdout = tiny_run
    assert "MLflow run:" in stdout and "zero-shot retrieval" in stdout
    runs = mlflow_runs(db)
    assert len(runs) == 1
    run = runs[0]
    assert run.info.status == "FINISHED"
    assert run.info.run_name == "tiny-hybrid-a0.5-seed42"
    assert run.data.params["sampling.name"] == "hybrid" and run.data.params["data.batch_size"] == "16"
    assert run.data.tags["model"] == "tiny" and run.data.tags["train_data"] == "mlqa_r"
    assert run.data.tags["eval_data"] == "xquad_r" and run.data.tags["alpha"] == "0.5"
    assert run.data.tags["zero_shot_check"] == "passed: 0 overlapping texts"
    m = run.data.metrics
    for key in ("train/loss", "train/lr", "xquad_r/mono/map", "xquad_r/cross/map", "xquad_r/multi/map",
                "xquad_r/multi/rank_distance", "xquad_r/cross/map/de-zh", "xquad_r/cross/map/de",
                "xquad_r/mono/r1", "xquad_r/multi/r10", "xquad_r/mono/ndcg10", "xquad_r/cross/mrr"):
        assert key in m, key
    assert 0.0 < m["xquad_r/mono/map"] <= 1.0
    client = MlflowClient(tracking_uri=f"sqlite:///{db}")
    history = client.get_metric_history(run.info.run_id, "xquad_r/mono/map")
    assert sorted(h.step for h in history) == [6, 12]  # every 6 steps; the end of training is step 12
    # Validation every 4 steps on held-out MLQA-R question ids; the best validation loss chooses the weights.
    # Lightning logs them at the index of the step's batch (train/loss alike): 3, 7, 11 = after steps 4, 8, 12.
    val_loss = {h.step + 1: h.value for h in client.get_metric_history(run.info.run_id, "val/loss")}
    assert sorted(val_loss) == [4, 8, 12]
    assert {"val/mono/map", "val/cross/map", "val/multi/map", "val/multi/rank_distance"} <= m.keys()
    best_step = min(val_loss, key=lambda s: (val_loss[s], s))
    assert [p.name for p in (out / "checkpoints").glob("best-step*.ckpt")] == [f"best-step{best_step}.ckpt"]
    assert run.data.tags["selected_step"] == str(best_step) and run.data.tags["selected_monitor"] == "val/loss"
    assert "train/masked_candidates" in m
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"config.yaml", "metrics.json", "eval"} <= artifacts
    logged = {a.path for a in client.list_artifacts(run.info.run_id, "eval/xquad_r")}
    assert {"eval/xquad_r/grid_map.csv", "eval/xquad_r/heatmap_map.png", "eval/xquad_r/per_query.npz"} <= logged
    assert "eval/xquad_r/trec" not in logged  # large: kept in the run folder only
    assert (out / "eval" / "xquad_r" / "trec" / "run.cross.trec").is_file()
    assert (out / "checkpoints" / "last.ckpt").is_file()
    exported = out / "model"
    assert (exported / "config.json").is_file() and (exported / "xlir_encoder.json").is_file()
    assert (exported / "modules.json").is_file() and (exported / "README.md").is_file()  # sentence-transformers
    assert client.search_logged_models([run.info.experiment_id],
                                       filter_string=f"source_run_id = '{run.info.run_id}'")
    saved = json.loads((out / "metrics.json").read_text())
    assert saved["xquad_r/mono/map"] == pytest.approx(m["xquad_r/mono/map"])
    from transformers import AutoModel, AutoTokenizer

    AutoModel.from_pretrained(exported), AutoTokenizer.from_pretrained(exported)


# What a user must see, and what used to bury it (issue: a quiet, readable console).
NEEDED = (r"^runtime: cpu · precision 32-true", r"train\s+━+ 12/12 .*train/loss: \d", r"encoding xquad_r: [\d,]+/",
          r"zero-shot retrieval", r"xquad_r / multi", r"^MLflow run: sqlite:", r"^Run folder: .*model: ")
NOISE = ("faiss.loader", "Loading faiss", "litlogger", "Tip:", "_pytree", "LeafSpec", "Writing model shards",
         "Loading weights", "Epoch 0/", "v_num", "GPU available", "Seed set to", "INFO:", "Batches:",
         "Creating initial MLflow database", "Saving model to", "weights_only")


def test_console_shows_what_a_user_needs_and_none_of_the_noise(tiny_run: tuple[Path, Path, str]) -> None:
    import re

    _, out, stdout = tiny_run
    stderr = (out / "stderr.txt").read_text()
    for pattern in NEEDED:
        assert re.search(pattern, stdout + stderr, flags=re.MULTILINE), pattern
    for pattern in NEEDED[-2:]:  # where the run is: on stdout, for scripts that capture it
        assert re.search(pattern, stdout, flags=re.MULTILINE), pattern
    for noise in NOISE:
        assert noise not in stdout and noise not in stderr, noise
    assert stdout.count("runtime: ") == 1
    # The full log keeps what the console left out.
    log = (out / "run.log").read_text()
    assert "Seed set to" in log and "GPU available" in log


def test_standalone_evaluate_matches_training_eval(tiny_run: tuple[Path, Path, str], real_data: Path) -> None:
    db, out, _ = tiny_run
    trained = json.loads((out / "metrics.json").read_text())
    # The export and the training run's zero-shot numbers are the validation-chosen checkpoint's weights.
    (best,) = (out / "checkpoints").glob("best-step*.ckpt")
    for extra in ([], [f"ckpt_path={best}"]):
        proc = run_module(
            "src.evaluate", "model=tiny", f"model.pretrained={out / 'model'}", *extra, "eval.exports=false",
            "trainer.precision=32-true", f"paths.data_dir={real_data.parent}",
            f"logger.tracking_uri=sqlite:///{db}", f"hydra.run.dir={out.parent / 'eval'}",
        )
        assert proc.returncode == 0, proc.stderr[-3000:]
        runs = [r for r in mlflow_runs(db) if r.data.tags.get("task") == "evaluate"]
        assert runs and runs[0].info.status == "FINISHED"
        m = runs[0].data.metrics
        for key in ("xquad_r/mono/map", "xquad_r/cross/map", "xquad_r/multi/map", "xquad_r/multi/rank_distance"):
            assert m[key] == pytest.approx(trained[key], abs=1e-6), key


def test_multirun_over_samplers(tmp_path: Path, real_data: Path) -> None:
    db = tmp_path / "mlflow.db"
    proc = run_module(
        "src.run", "-m", "sampling=xx,xy,hybrid", *TINY, "trainer.max_steps=4", "export_model=false",
        "eval.exports=false", f"paths.data_dir={real_data.parent}", f"logger.tracking_uri=sqlite:///{db}",
        f"hydra.sweep.dir={tmp_path / 'sweep'}", "data.eval.xquad_r.languages=[en,de,zh]",
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    runs = [r for r in mlflow_runs(db) if r.data.tags.get("task") == "train"]  # not the sweep's parent run
    assert sorted(r.data.params["sampling.name"] for r in runs) == ["hybrid", "xx", "xy"]
    assert all(r.info.status == "FINISHED" for r in runs)
    assert sorted(p.name for p in (tmp_path / "sweep").iterdir() if p.is_dir()) == ["0", "1", "2"]


def test_early_stopping_on_validation_loss(tmp_path: Path, real_data: Path) -> None:
    # min_delta 100: no validation can improve on the first, so patience 1 stops at the second (step 4 of 12).
    db = tmp_path / "mlflow.db"
    proc = run_module(
        "src.run", *TINY, "callbacks=early_stopping", "callbacks.early_stopping.min_delta=100",
        "callbacks.early_stopping.patience=1", "trainer.val_check_interval=2", "export_model=false",
        "eval.exports=false", "data.eval.xquad_r.languages=[en,de]", f"paths.data_dir={real_data.parent}",
        f"logger.tracking_uri=sqlite:///{db}", f"hydra.run.dir={tmp_path / 'run'}",
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    (run,) = mlflow_runs(db)
    client = MlflowClient(tracking_uri=f"sqlite:///{db}")
    assert max(h.step for h in client.get_metric_history(run.info.run_id, "train/loss")) == 3  # 4 steps
    val_loss = {h.step + 1: h.value for h in client.get_metric_history(run.info.run_id, "val/loss")}
    assert sorted(val_loss) == [2, 4]
    # the best checkpoint is the lower validation loss (min_delta only decides when to stop)
    assert run.data.tags["selected_step"] == str(min(val_loss, key=lambda s: (val_loss[s], s)))
