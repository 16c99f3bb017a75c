"""End to end: `python -m src.run` with the tiny model on the real data, read back through MLflow."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.integration.helpers import mlflow_runs, run_module

TINY = ["model=tiny", "trainer.max_steps=12", "data.batch_size=16", "trainer.log_every_n_steps=2",
        "trainer.precision=32-true"]


def test_tiny_run_logs_params_metrics_artifacts(tmp_path: Path, real_data: Path) -> None:
    db = tmp_path / "mlflow.db"
    out = tmp_path / "run"
    proc = run_module(
        "src.run", *TINY, f"paths.data_dir={real_data.parent}", f"logger.tracking_uri=sqlite:///{db}",
        f"hydra.run.dir={out}", "callbacks.retrieval_eval.every_n_steps=6",
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "MLflow run:" in proc.stdout
    runs = mlflow_runs(db)
    assert len(runs) == 1
    run = runs[0]
    assert run.info.status == "FINISHED"
    assert run.info.run_name == "tiny-hybrid-a0.5-seed42"
    assert run.data.params["sampling.name"] == "hybrid" and run.data.params["data.batch_size"] == "16"
    assert run.data.tags["model"] == "tiny" and run.data.tags["train_data"] == "mlqa_r"
    assert run.data.tags["eval_data"] == "xquad_r" and run.data.tags["alpha"] == "0.5"
    m = run.data.metrics
    for key in ("train/loss", "xquad_r/mono/map", "xquad_r/cross/map", "xquad_r/multi/map",
                "xquad_r/multi/rank_distance", "xquad_r/cross/map/de-zh"):
        assert key in m, key
    assert 0.0 < m["xquad_r/mono/map"] <= 1.0
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{db}")
    history = client.get_metric_history(run.info.run_id, "xquad_r/mono/map")
    assert sorted(h.step for h in history) == [6, 12]  # every 6 steps; the end of training is step 12
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"config.yaml", "metrics.json"} <= artifacts
    assert (out / "checkpoints" / "last.ckpt").is_file()
    exported = out / "model"
    assert (exported / "config.json").is_file() and (exported / "xlir_encoder.json").is_file()
    assert json.loads((out / "metrics.json").read_text())["xquad_r/mono/map"] == pytest.approx(m["xquad_r/mono/map"])
    from transformers import AutoModel, AutoTokenizer

    AutoModel.from_pretrained(exported), AutoTokenizer.from_pretrained(exported)


def test_multirun_over_samplers(tmp_path: Path, real_data: Path) -> None:
    db = tmp_path / "mlflow.db"
    proc = run_module(
        "src.run", "-m", "sampling=xx,xy,hybrid", *TINY, "trainer.max_steps=4", "export_model=false",
        f"paths.data_dir={real_data.parent}", f"logger.tracking_uri=sqlite:///{db}",
        f"hydra.sweep.dir={tmp_path / 'sweep'}", "data.eval.xquad_r.languages=[en,de,zh]",
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    runs = mlflow_runs(db)
    assert sorted(r.data.params["sampling.name"] for r in runs) == ["hybrid", "xx", "xy"]
    assert all(r.info.status == "FINISHED" for r in runs)
    assert sorted(p.name for p in (tmp_path / "sweep").iterdir() if p.is_dir()) == ["0", "1", "2"]
