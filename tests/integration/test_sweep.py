"""Sweeps end to end: a multirun becomes an MLflow parent with nested children, and the report reads it back."""

from __future__ import annotations

import csv
import json
import math
import os
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from src.report import main as report_main
from tests.integration.helpers import mlflow_runs, run_module

FAST = ["model=tiny", "trainer.max_steps=4", "data.batch_size=16", "trainer.precision=32-true",
        "eval.trec_depth=5", "export_model=false", "data.eval.xquad_r.languages=[en,de,zh]"]


@pytest.fixture(scope="module")
def real_data() -> Path:
    from tests.conftest import REAL_DATA

    return REAL_DATA


@pytest.fixture(scope="module")
def sampler_sweep(tmp_path_factory: pytest.TempPathFactory, real_data: Path) -> tuple[Path, Path]:
    """The three samplers x 2 seeds of the tiny model, run once for this module: (store, sweep folder)."""
    tmp = tmp_path_factory.mktemp("sweep")
    db, sweep_dir = tmp / "mlflow.db", tmp / "multirun"
    proc = run_module("src.run", "-m", "sampling=xx,xy,hybrid", "seed=1,2", *FAST,
                      f"paths.data_dir={real_data.parent}", f"logger.tracking_uri=sqlite:///{db}",
                      f"hydra.sweep.dir={sweep_dir}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    return db, sweep_dir


def _parent_and_children(db: Path) -> tuple[object, list]:
    runs = mlflow_runs(db)
    parents = [r for r in runs if r.data.tags.get("task") == "sweep"]
    assert len(parents) == 1, [r.info.run_name for r in runs]
    kids = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parents[0].info.run_id]
    return parents[0], kids


def test_sweep_is_one_parent_with_nested_children(sampler_sweep: tuple[Path, Path]) -> None:
    db, sweep_dir = sampler_sweep
    parent, kids = _parent_and_children(db)
    assert len(mlflow_runs(db)) == 7  # nothing outside the parent/child structure
    assert parent.info.status == "FINISHED"
    assert parent.data.tags["sweep.dir"] == str(sweep_dir)
    assert "sampling=xx,xy,hybrid" in parent.data.tags["sweep.overrides"]
    assert parent.data.tags["sweep.swept"] == "sampling,seed" and parent.data.tags["sweep.n_failed"] == "0"
    assert sorted(r.info.run_name for r in kids) == sorted(
        f"{s}-seed{k}" for s in ("xx", "xy", "hybrid-a0.5") for k in (1, 2))
    assert all(r.info.status == "FINISHED" for r in kids)
    assert {r.info.experiment_id for r in kids} == {parent.info.experiment_id}
    assert sorted(r.data.tags["sweep.job_num"] for r in kids) == [str(i) for i in range(6)]
    linked = json.loads((sweep_dir / "mlflow_parent_run.json").read_text())
    assert linked["run_id"] == parent.info.run_id and linked["swept"] == ["sampling", "seed"]
    summary = json.loads((sweep_dir / "sweep_summary.json").read_text())
    assert summary["status"] == "FINISHED" and summary["n_jobs"] == 6 and summary["n_failed"] == 0
    client = MlflowClient(tracking_uri=f"sqlite:///{db}")
    assert "sweep_summary.json" in {a.path for a in client.list_artifacts(parent.info.run_id)}


def test_report_tables_significance_and_plots(sampler_sweep: tuple[Path, Path], tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    db, sweep_dir = sampler_sweep
    out = tmp_path / "report"
    env_before = os.environ.get("MLFLOW_TRACKING_URI")
    assert report_main([str(sweep_dir), "--out", str(out), "--resamples", "999"]) == 0
    assert os.environ.get("MLFLOW_TRACKING_URI") == env_before  # later subprocesses keep their own store
    assert "Report:" in capsys.readouterr().out
    with (out / "table.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert sorted(r["sampling"] for r in rows) == ["hybrid-a0.5", "xx", "xy"]
    for row in rows:
        assert row["n_seeds"] == "2"
        for key, value in row.items():
            assert value not in ("", "nan"), (row["sampling"], key)
            if key.endswith("/ci95"):
                assert math.isfinite(float(value)) and float(value) >= 0
    with (out / "significance.csv").open() as f:
        tests = list(csv.DictReader(f))
    # 3 sampler pairs x (mono, cross, multi mAP, rank distance) on xquad_r; 2 seeds: untested (needs 3).
    assert len(tests) == 12
    for t in tests:
        assert t["note"] == "n/a (2 seeds)" and t["n_seeds"] == "2" and t["p"] == "nan"
        assert t["significant"] == "False"
    table_md = (out / "table.md").read_text()
    assert "## Paired tests" in table_md and "## xquad_r · tiny · per query language" in table_md
    per_lang = (out / "per_language_xquad_r_tiny.md").read_text()
    assert all(f"| {x} |" in per_lang for x in ("de", "en", "zh", "Mean"))
    for png in ("bars_xquad_r.png", "heatmaps_xquad_r_tiny.png"):
        assert (out / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    parent, _ = _parent_and_children(db)
    from src.reporting.runs import fetch_runs, resolve_target

    uri = f"sqlite:///{db}"
    by_id = resolve_target(parent.info.run_id, uri)  # the other two ways to name the same runs
    assert by_id.parent_id == parent.info.run_id and len(fetch_runs(by_id)) == 6
    by_experiment = resolve_target("xlir", uri)
    assert by_experiment.parent_id is None and len(fetch_runs(by_experiment)) == 6  # the parent is no row
    logged = {a.path for a in MlflowClient(tracking_uri=f"sqlite:///{db}").list_artifacts(parent.info.run_id, "report")}
    assert {"report/table.md", "report/table.csv", "report/significance.csv"} <= logged


def test_report_on_chosen_samplers_tests_only_them(sampler_sweep: tuple[Path, Path], tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    """`--samplers` keeps the family of tests (and its Holm correction) to the named samplers."""
    _, sweep_dir = sampler_sweep
    out = tmp_path / "two"
    assert report_main([str(sweep_dir), "--out", str(out), "--resamples", "99", "--samplers", "xx,xy"]) == 0
    with (out / "table.csv").open() as f:
        assert sorted(r["sampling"] for r in csv.DictReader(f)) == ["xx", "xy"]
    with (out / "significance.csv").open() as f:
        assert {(t["a"], t["b"]) for t in csv.DictReader(f)} == {("xx", "xy")}  # 4 columns, one pair
    with (out / "runs.csv").open() as f:
        assert len(list(csv.DictReader(f))) == 4
    assert "Only the runs of the samplers xx, xy" in (out / "table.md").read_text()
    assert json.loads((out / "report.json").read_text())["samplers"] == ["xx", "xy"]
    capsys.readouterr()
    assert report_main([str(sweep_dir), "--out", str(tmp_path / "bad"), "--samplers", "xx,hybrid"]) == 2
    err = capsys.readouterr().err
    assert "no runs with sampler 'hybrid'" in err and "hybrid-a0.5, xx, xy" in err
    assert not (tmp_path / "bad").exists()  # nothing half-written
    assert report_main([str(sweep_dir), "--samplers", ""]) == 2
    assert "--samplers is empty" in capsys.readouterr().err


def test_report_without_runs_says_so(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    MlflowClient(tracking_uri=uri).create_experiment("empty")
    assert report_main(["empty", "--tracking-uri", uri, "--out", str(tmp_path / "r")]) == 2
    assert "no FINISHED training runs under experiment empty" in capsys.readouterr().err
    assert report_main([str(tmp_path), "--tracking-uri", uri]) == 2  # a folder that is not a sweep
    assert "has no mlflow_parent_run.json" in capsys.readouterr().err
    assert report_main(["no-such-experiment", "--tracking-uri", uri]) == 2
    assert "neither a sweep folder" in capsys.readouterr().err


def test_submitit_local_sweep_records_a_failed_job(tmp_path: Path, real_data: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    """Two jobs as separate processes; temperature 1e-40 overflows the logits, so that job fails mid-training."""
    db, sweep_dir = tmp_path / "mlflow.db", tmp_path / "multirun"
    proc = run_module("src.run", "-m", "hydra/launcher=submitit_local", "loss.temperature=0.05,1e-40", *FAST,
                      "sampling=xy", f"paths.data_dir={real_data.parent}", f"logger.tracking_uri=sqlite:///{db}",
                      f"hydra.sweep.dir={sweep_dir}")
    assert proc.returncode != 0  # the sweep reports the failure ...
    assert (sweep_dir / "sweep_summary.json").is_file(), proc.stderr[-3000:]
    parent, kids = _parent_and_children(db)
    assert parent.info.status == "FAILED"
    by_status = {r.info.status: r for r in kids}
    assert sorted(by_status) == ["FAILED", "FINISHED"]  # ... but the other job still ran to the end
    failed = by_status["FAILED"]
    assert failed.info.run_name == "temperature1e-40"
    assert "NonFiniteLossError" in failed.data.tags["error"]
    summary = json.loads((sweep_dir / "sweep_summary.json").read_text())
    assert summary["n_failed"] == 1 and "non-finite loss" in summary["jobs"][1]["error"]
    assert (sweep_dir / ".submitit").is_dir()  # really went through submitit

    assert report_main([str(sweep_dir), "--out", str(tmp_path / "report"), "--resamples", "99"]) == 0
    capsys.readouterr()
    table_md = (tmp_path / "report" / "table.md").read_text()
    assert "## Unfinished runs" in table_md and "temperature1e-40 | FAILED | NonFiniteLossError" in table_md


# ------------------------------------------------------------------------------ sweep helpers (fast)
def test_swept_keys_and_child_names() -> None:
    from omegaconf import OmegaConf

    from src.tracking.sweep import child_run_name, swept_keys

    assert swept_keys(["sampling=xx,xy", "seed=1,2", "model=tiny"]) == ("sampling", "seed")
    assert swept_keys(["model=tiny"], {"sampling.alpha": "0.0,0.5", "seed": "3"}) == ("sampling.alpha",)
    cfg = OmegaConf.create({"model": {"name": "tiny"}, "sampling": {"name": "hybrid", "alpha": 0.5}, "seed": 2})
    assert child_run_name(cfg, ("sampling", "seed"), ["sampling=hybrid", "seed=2"]) == "hybrid-a0.5-seed2"
    assert child_run_name(cfg, ("model", "sampling"), ["model=tiny", "sampling=hybrid"]) == "tiny-hybrid-a0.5"
    assert child_run_name(cfg, ("sampling.alpha",), ["sampling.alpha=0.5"]) == "hybrid-a0.5"  # sweep=alpha
    assert child_run_name(cfg, ("optim.lr",), ["optim.lr=1e-5"]) == "lr1e-5"
    assert child_run_name(cfg, (), []) == "tiny-hybrid-a0.5-seed2"  # nothing swept: the usual name


def test_sweep_status() -> None:
    from src.tracking.sweep import sweep_status

    assert sweep_status(["FINISHED", "FINISHED"], aborted=False) == "FINISHED"
    assert sweep_status(["FINISHED", "FAILED"], aborted=True) == "FAILED"
    assert sweep_status(["FINISHED"], aborted=True) == "KILLED"


def test_job_failing_before_its_run_opens_gets_a_failed_child(tmp_path: Path) -> None:
    """A job that dies in config validation never opens a run; the callback opens a FAILED one for it."""
    from omegaconf import OmegaConf

    from src.tracking.sweep import SweepParent, children, close_parent, record_failed_job, write_parent

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=uri)
    exp = client.create_experiment("xlir")
    parent_run = client.create_run(exp, run_name="sweep", tags={"task": "sweep"})
    parent = SweepParent(parent_run.info.run_id, exp, uri, str(tmp_path), ("sampling.alpha",))
    write_parent(tmp_path, parent)
    cfg = OmegaConf.create({
        "model": {"name": "tiny"}, "sampling": {"name": "hybrid", "alpha": 1.5}, "seed": 1, "task_name": "train",
        "hydra": {"sweep": {"dir": str(tmp_path)}, "job": {"num": 3}, "overrides": {"task": ["sampling.alpha=1.5"]}},
    })
    record_failed_job(cfg, ValueError("sampling.alpha=1.5: expected a probability in [0, 1]"))
    (kid,) = children(client, parent)
    assert kid.info.status == "FAILED" and kid.info.run_name == "hybrid-a1.5"
    assert kid.data.tags["error"] == "ValueError: sampling.alpha=1.5: expected a probability in [0, 1]"
    assert kid.data.tags["sweep.job_num"] == "3"
    summary = close_parent(parent)
    assert summary["status"] == "FAILED" and summary["jobs"][0]["error"].startswith("ValueError")
    assert client.get_run(parent.run_id).info.status == "FAILED"


@pytest.mark.parametrize("preset, params", [
    ("samplers", {"sampling": "xx,xy,hybrid", "seed": "1,2,3"}),
    ("alpha", {"sampling.alpha": "0.0,0.1,0.2,0.3,0.4,0.5,0.6,0.7,0.8,0.9,1.0"}),
    ("models", {"model": "me5_small_bundled,me5_small,labse,xlmr,mbert", "sampling": "xx,xy,hybrid"}),
    ("study", {"seed": "1,2,3", "sampling": "xx,xy,hybrid"}),
    ("study_alpha", {"seed": "1,2,3", "sampling": "hybrid", "sampling.alpha": "0.25,0.75"}),
])
def test_sweep_presets_compose_and_every_job_validates(preset: str, params: dict[str, str]) -> None:
    from hydra import compose, initialize_config_dir

    from src.core.config import validate
    from tests.core.test_config import CONF, make_cfg

    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose("config", overrides=[f"sweep={preset}"], return_hydra_config=True)
        assert dict(cfg.hydra.sweeper.params) == params
    for key, values in params.items():
        for value in values.split(","):
            job = make_cfg(f"sweep={preset}", f"{key}={value}")
            validate(job)
            if preset == "alpha" or key == "sampling.alpha":
                assert job.sampling.name == "hybrid" and job.sampling.alpha == float(value)


# ------------------------------------------------------------------------------------ resumed sweeps
def test_sweep_killed_mid_second_job_resumes_skips_and_reruns(tmp_path: Path, real_data: Path) -> None:
    """Job 0 fails once, job 1 is SIGKILLed after a checkpoint, job 2 never starts; the same command again
    re-runs job 0, resumes job 1 into its own child run, runs job 2; a third time skips all three."""
    import signal
    import subprocess
    import sys
    import time

    from src.runs.record import RECORD_FILE
    from src.tracking.sweep import SUPERSEDED_TAG
    from tests.integration.helpers import ROOT
    from tests.integration.hooks import batch_log, fail_once, read_batch_log, step_delay

    db, sweep_dir = tmp_path / "mlflow.db", tmp_path / "multirun"
    args = ["src.run", "-m", "seed=1,2,3", *FAST, "trainer.max_steps=8", "sampling=xy",
            "callbacks.model_checkpoint.every_n_train_steps=2", batch_log(), step_delay(0.4),
            fail_once(tmp_path / "failed-once", step=1), f"paths.data_dir={real_data.parent}",
            f"logger.tracking_uri=sqlite:///{db}", f"hydra.sweep.dir={sweep_dir}"]
    env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true", "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    proc = subprocess.Popen([sys.executable, "-m", *args], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    job1 = sweep_dir / "1"
    deadline = time.monotonic() + 600
    while not ((job1 / "checkpoints" / "last.ckpt").is_file() and len(read_batch_log(job1 / "batches.jsonl")) >= 4):
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"job 1 never reached a checkpoint (rc={proc.returncode}):\n{proc.stdout.read()[-3000:]}")
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    parent, kids = _parent_and_children(db)
    assert parent.info.status == "RUNNING" and sorted(r.info.status for r in kids) == ["FAILED", "RUNNING"]
    failed = next(r for r in kids if r.info.status == "FAILED")
    killed = next(r for r in kids if r.info.status == "RUNNING")
    assert "FailOnce" in failed.data.tags["error"] and not (sweep_dir / "2").exists()

    again = run_module(*args)
    assert again.returncode == 0, again.stderr[-3000:]
    parent2, all_kids = _parent_and_children(db)
    kids2 = [r for r in all_kids if SUPERSEDED_TAG not in r.data.tags]
    assert len(all_kids) == 4 and parent2.info.run_id == parent.info.run_id and parent2.info.status == "FINISHED"
    assert parent2.data.tags["sweep.resumes"] == "1"
    by_job = {r.data.tags["sweep.job_num"]: r for r in kids2}
    assert sorted(by_job) == ["0", "1", "2"] and all(r.info.status == "FINISHED" for r in kids2)
    # job 0 ran again from the start in a new child; the failed attempt is kept, tagged, its files set aside
    assert by_job["0"].info.run_id != failed.info.run_id
    old = MlflowClient(tracking_uri=f"sqlite:///{db}").get_run(failed.info.run_id)
    assert old.info.status == "FAILED" and SUPERSEDED_TAG in old.data.tags
    assert (sweep_dir / "0" / "attempts" / failed.info.run_id / RECORD_FILE).is_file()
    # job 1 continued from its last.ckpt in its own run, and trained to the end exactly once per step
    assert by_job["1"].info.run_id == killed.info.run_id
    assert by_job["1"].data.tags["resumed_from"].endswith("last.ckpt")
    assert [b["step"] for b in read_batch_log(job1 / "batches.jsonl")] == list(range(8))
    summary = json.loads((sweep_dir / "sweep_summary.json").read_text())
    assert summary["status"] == "FINISHED" and summary["n_jobs"] == 3 and summary["n_failed"] == 0
    assert len(mlflow_runs(db)) == 5  # parent + 3 jobs + the superseded attempt

    metrics_before = {j: (sweep_dir / j / "metrics.json").read_text() for j in "012"}
    third = run_module(*args)
    assert third.returncode == 0, third.stderr[-3000:]
    assert third.stdout.count("FINISHED earlier with this config") == 3
    assert len(mlflow_runs(db)) == 5
    assert {j: (sweep_dir / j / "metrics.json").read_text() for j in "012"} == metrics_before
    parent3, _ = _parent_and_children(db)
    assert parent3.info.status == "FINISHED" and parent3.data.tags["sweep.resumes"] == "2"


def test_job_action() -> None:
    from src.runs.plan import job_action

    assert job_action("FINISHED", has_metrics=True, has_checkpoint=True) == "skip"
    assert job_action("FINISHED", has_metrics=False, has_checkpoint=True) == "resume"
    assert job_action("RUNNING", has_metrics=False, has_checkpoint=True) == "resume"  # SIGKILL
    assert job_action("KILLED", has_metrics=False, has_checkpoint=True) == "resume"  # SIGTERM / Ctrl-C
    assert job_action(None, has_metrics=False, has_checkpoint=True) == "resume"  # run gone from the store
    assert job_action("RUNNING", has_metrics=False, has_checkpoint=False) == "rerun"  # killed before a checkpoint
    assert job_action("FAILED", has_metrics=False, has_checkpoint=True) == "rerun"
    assert job_action("FINISHED", has_metrics=False, has_checkpoint=False) == "rerun"
