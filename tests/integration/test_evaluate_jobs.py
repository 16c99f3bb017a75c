"""`src.evaluate jobs=...`: a finished tiny sweep gets more sets into its jobs' own runs, resumably, guarded."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from mlflow.tracking import MlflowClient
from omegaconf import DictConfig

from src.runs.jobs import FINGERPRINT_TAG, JobsError, find_jobs
from tests.conftest import ROOT
from tests.integration.helpers import mlflow_runs, run_module

SHARED = ROOT.parent / "shared" / "data"
DATA = ROOT / "data" if (ROOT / "data" / "sib200").exists() else SHARED
THREE = "[en,de,zh]"
TRAIN = ["model=tiny", "trainer.max_steps=4", "data.batch_size=16", "trainer.precision=32-true",
         "eval.trec_depth=5", f"data.eval.xquad_r.languages={THREE}"]
# The sets added afterwards: XQuAD-R as trained (skipped), SIB-200 and Tatoeba cut to three languages.
ADD = ["data=domain_shift", "~data.eval.ntrex", "~data.eval.ntrex_doc", "~data.eval.ntrex_bitext",
       "~data.eval.tico19", "~data.eval.tico19_medical", f"data.eval.xquad_r.languages={THREE}",
       f"data.eval.sib200.languages={THREE}", "data.eval.tatoeba.languages=[de,zh,en]"]


@pytest.fixture(autouse=True)
def reset_store() -> Iterator[None]:
    """MLflow keeps the last tracking URI in a global: later tests must not inherit this module's store."""
    import mlflow

    yield
    mlflow.set_tracking_uri(None)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def sweeps(tmp_path_factory: pytest.TempPathFactory) -> tuple[tuple[Path, Path], tuple[Path, Path]]:
    """Two finished jobs (xx, xy) of the tiny model with exported models, run once: (store, sweep folder) and an
    untouched copy of both (found through its folder only: the copy's tags still name the original folder)."""
    from tests.conftest import REAL_DATA

    tmp = tmp_path_factory.mktemp("jobs")
    db, sweep_dir = tmp / "mlflow.db", tmp / "multirun"
    proc = run_module("src.run", "-m", "sampling=xx,xy", "seed=1", *TRAIN, f"paths.data_dir={REAL_DATA.parent}",
                      f"logger.tracking_uri=sqlite:///{db}", f"hydra.sweep.dir={sweep_dir}",
                      f"paths.cache_dir={tmp / 'cache'}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    copy = tmp_path_factory.mktemp("jobs_copy")
    shutil.copy(db, copy / "mlflow.db")
    shutil.copytree(sweep_dir, copy / "multirun")
    return (db, sweep_dir), (copy / "mlflow.db", copy / "multirun")


def compose_jobs(db: Path, target: str | Path, tmp_path: Path, *overrides: str) -> DictConfig:
    """`python -m src.evaluate jobs=<target> data=domain_shift ...` against the sweep's store."""
    from hydra import compose, initialize_config_dir

    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        return compose("evaluate", overrides=[
            f"jobs={target}", *ADD, "trainer.precision=32-true", f"paths.data_dir={DATA}",
            f"logger.tracking_uri=sqlite:///{db}", f"paths.output_dir={tmp_path / 'unused'}",
            "eval.debias=center", "eval.trec_depth=3", *overrides])


def _children(db: Path) -> dict[str, object]:
    return {r.info.run_name: r for r in mlflow_runs(db) if r.data.tags.get("task") == "train"}


def test_sets_added_to_each_jobs_run_then_skipped(sweeps: tuple, tmp_path: Path) -> None:
    from src.evaluate import evaluate

    db, sweep_dir = sweeps[0]
    before = _children(db)
    assert sorted(before) == ["xx", "xy"]
    added = evaluate(compose_jobs(db, sweep_dir, tmp_path))
    assert added == {"xx": ["sib200", "tatoeba"], "xy": ["sib200", "tatoeba"]}
    after = _children(db)
    client = MlflowClient(tracking_uri=f"sqlite:///{db}")
    for name, run in after.items():
        old = before[name]
        # The run is the job's, as training closed it: status, end time and every old value unchanged.
        assert (run.info.status, run.info.end_time) == (old.info.status, old.info.end_time) == (
            "FINISHED", old.info.end_time)
        assert {k: run.data.metrics[k] for k in old.data.metrics} == old.data.metrics
        assert {k: run.data.params[k] for k in old.data.params} == old.data.params
        new = set(run.data.metrics) - set(old.data.metrics)
        assert {"sib200/cross/r1/de-zh", "sib200/multi/map", "sib200.center/multi/rank_distance",
                "tatoeba/cross/r1/de-en"} <= new
        assert not [k for k in new if k.startswith(("xquad_r", "sib200/mono", "tatoeba/multi"))]
        assert all(np.isfinite(run.data.metrics[k]) for k in new)
        tags = run.data.tags
        assert tags["eval_data"] == "xquad_r,sib200,tatoeba"
        assert len(tags[FINGERPRINT_TAG + "sib200"]) == 16 and FINGERPRINT_TAG + "xquad_r" not in tags
        assert tags["zero_shot_check.sib200"].startswith("passed: 0 overlapping")
        assert run.data.params["data.eval.sib200.domain"] == "web"
        job_dir = Path(tags["sweep.dir"]) / tags["sweep.job_num"]
        assert (job_dir / "eval" / "sib200" / "per_query.npz").is_file()
        assert "eval/sib200/per_query.npz" in {a.path for a in client.list_artifacts(run.info.run_id, "eval/sib200")}
    # Resumable: a second pass finds every set done and writes nothing.
    assert evaluate(compose_jobs(db, sweep_dir, tmp_path)) == {}
    again = _children(db)
    run_id = after["xx"].info.run_id
    assert again["xx"].data.metrics == after["xx"].data.metrics
    assert len(client.get_metric_history(run_id, "sib200/multi/map")) == 1
    # The same jobs found from the parent run and from the experiment.
    parent = next(r for r in mlflow_runs(db) if r.data.tags.get("task") == "sweep")
    uri = f"sqlite:///{db}"
    for target in (str(sweep_dir), parent.info.run_id, "xlir"):
        assert [j.name for j in find_jobs(target, uri)] == ["xx", "xy"], target
    # The report reads the added sets like any other.
    from src.report import main as report_main

    assert report_main([str(sweep_dir), "--out", str(tmp_path / "report"), "--resamples", "99"]) == 0
    header = (tmp_path / "report" / "table.csv").read_text().splitlines()[0]
    assert "sib200" in header and "tatoeba" in header
    # The domain-shift analysis: the untrained model evaluated on the same sets in the same experiment first.
    base = next((sweep_dir.parent / "cache" / "models" / "tiny").glob("*/config.json")).parent  # what was trained
    untrained = compose_jobs(db, sweep_dir, tmp_path, "jobs=null", "model=tiny", f"model.pretrained={base}",
                             "eval.debias=[center,lir]")
    evaluate(untrained)
    out = tmp_path / "domain_shift"
    assert report_main([str(sweep_dir), "--analysis", "domain_shift", "--samplers", "xx,xy", "--out", str(out),
                        "--resamples", "99"]) == 0
    report = json.loads((out / "report.json").read_text())
    assert report["primary_sets"] == ["xquad_r", "sib200", "tatoeba"]
    assert {c["family"] for c in report["comparisons"] if c["family"].startswith("primary")} == {
        "primary: xquad_r", "primary: sib200", "primary: tatoeba"}
    # two samplers + untrained: 3 comparisons per column (xquad_r 4, sib200 3, tatoeba 1 columns)
    assert sum(c["family"].startswith("primary") for c in report["comparisons"]) == 3 * (4 + 3 + 1)
    for name in ("table.md", "tests.md", "gains.csv", "gains.png", "retention.png", "by_topic.csv", "runs.csv"):
        assert (out / name).is_file(), name


def test_refusals_before_any_work(sweeps: tuple, tmp_path: Path) -> None:
    from src.evaluate import evaluate
    from src.evaluation.guard import ZeroShotOverlapError

    db, sweep_dir = sweeps[1]
    before = {n: r.data.metrics for n, r in _children(db).items()}
    # XQuAD-R under its own name with other languages than in training: its keys would be overwritten.
    with pytest.raises(JobsError, match=r"xquad_r.*other settings.*languages"):
        evaluate(compose_jobs(db, sweep_dir, tmp_path, "data.eval.xquad_r.languages=[en,de]"))
    # MLQA-R's questions are what the jobs trained on: the zero-shot guard refuses it.
    with pytest.raises(ZeroShotOverlapError):
        evaluate(compose_jobs(db, sweep_dir, tmp_path, "+data/eval@data.eval.mlqa_r=mlqa_r",
                              f"data.eval.mlqa_r.languages={THREE}"))
    for bad, match in (("no/such/sweep", "neither a sweep folder"), (str(tmp_path), "no job folder")):
        with pytest.raises(JobsError, match=match):
            evaluate(compose_jobs(db, bad, tmp_path))
    assert {n: r.data.metrics for n, r in _children(db).items()} == before  # nothing written by any of them
    # A set added once cannot come back under the same name with other contents.
    evaluate(compose_jobs(db, sweep_dir, tmp_path, "~data.eval.tatoeba"))
    with pytest.raises(JobsError, match=r"sib200.*fingerprint"):
        evaluate(compose_jobs(db, sweep_dir, tmp_path, "~data.eval.tatoeba", "data.eval.sib200.languages=[en,de]"))
