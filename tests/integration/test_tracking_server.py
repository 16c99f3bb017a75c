"""Tracking that loses nothing, against a REAL `mlflow server` over HTTP: every param, metric and artifact
arrives; an unreachable server fails fast; an outage mid-run loses nothing after `python -m src.sync`; two
jobs logging concurrently to one sqlite store both land complete."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient
from omegaconf import OmegaConf

from src.tracking.mlflow import flatten
from src.tracking.resilient import JOURNAL_FILE, Journal, metric_journal
from tests.integration.helpers import mlflow_runs, run_module
from tests.integration.hooks import step_delay
from tests.integration.test_reliability import _args, _start, _wait_for_steps, write_corpus

pytestmark = pytest.mark.reliability


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One corpus shared by every run of this module."""
    return write_corpus(tmp_path_factory.mktemp("corpus"))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def mlflow_server(root: Path, port: int, startup_s: float = 180) -> Iterator[str]:
    """`mlflow server` on 127.0.0.1:port (sqlite, one worker), waited for, always terminated."""
    root.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", f"sqlite:///{root / 'server.db'}",
         "--artifacts-destination", str(root / "artifacts"), "--host", "127.0.0.1", "--port", str(port),
         "--workers", "1"],
        env=env, stdout=(root / "server.log").open("ab"), stderr=subprocess.STDOUT, start_new_session=True,
    )
    uri = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + startup_s
        while True:
            try:
                with urllib.request.urlopen(f"{uri}/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"mlflow server did not start: {(root / 'server.log').read_text()[-2000:]}")
            time.sleep(0.3)
        yield uri
    finally:
        os.killpg(proc.pid, signal.SIGTERM)  # the server runs uvicorn workers in its process group
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def _server_metrics(client: MlflowClient, run_id: str, keys: set[str]) -> dict[tuple[str, int], float]:
    out: dict[tuple[str, int], float] = {}
    for key in keys:
        for m in sorted(client.get_metric_history(run_id, key), key=lambda m: m.timestamp):
            out[(key, m.step)] = m.value
    return out


def test_job_over_http_logs_every_param_metric_artifact(corpus: Path, tmp_path: Path) -> None:
    port, run_dir = _free_port(), tmp_path / "run"
    with mlflow_server(tmp_path / "server", port) as uri:
        proc = run_module("src.run", *_args(corpus, tmp_path / "unused.db", run_dir, "trainer.max_steps=4"),
                          env={"MLFLOW_TRACKING_URI": uri}, timeout=600)
        assert proc.returncode == 0, proc.stderr[-3000:]
        client = MlflowClient(tracking_uri=uri)
        (run,) = client.search_runs([client.get_experiment_by_name("xlir").experiment_id])
        assert run.info.status == "FINISHED"
        expected = {k: str(v) for k, v in flatten(OmegaConf.load(run_dir / "config.yaml")).items()}
        runtime = {k: v for k, v in run.data.params.items() if k.startswith("runtime.")}
        assert {k: v for k, v in run.data.params.items() if k not in runtime} == expected  # every param, verbatim
        assert runtime["runtime.device"] == "cpu" and int(runtime["runtime.threads"]) >= 1  # resolved at start-up
        journal = Journal(run_dir / JOURNAL_FILE)
        logged = metric_journal(journal)
        assert logged and not journal.pending()
        assert _server_metrics(client, run.info.run_id, {k for k, _ in logged}) == logged  # every metric, every step
        saved = json.loads((run_dir / "metrics.json").read_text())
        assert run.data.metrics["xquad_r/cross/map"] == saved["xquad_r/cross/map"]
        artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
        assert {"config.yaml", "metrics.json"} <= artifacts
        local = Path(client.download_artifacts(run.info.run_id, "metrics.json", str(tmp_path / "dl")))
        assert json.loads(local.read_text()) == saved
    assert not (tmp_path / "unused.db").exists()  # MLFLOW_TRACKING_URI won over the config


def test_unreachable_server_fails_fast_naming_the_uri(corpus: Path, tmp_path: Path) -> None:
    uri = f"http://127.0.0.1:{_free_port()}"  # nothing listens there
    proc = run_module("src.run", *_args(corpus, tmp_path / "x.db", tmp_path / "run"),
                      env={"MLFLOW_TRACKING_URI": uri}, timeout=300)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert f"MLflow tracking store {uri} is unreachable" in out and "Epoch 0" not in out


def test_server_outage_mid_run_then_sync_loses_nothing(corpus: Path, tmp_path: Path) -> None:
    port, run_dir, server_dir = _free_port(), tmp_path / "run", tmp_path / "server"
    with mlflow_server(server_dir, port) as uri:
        job = _start(corpus, tmp_path / "unused.db", run_dir, step_delay(0.5),
                     env={"MLFLOW_TRACKING_URI": uri})
        _wait_for_steps(job, run_dir, 3)
    # Server gone (same store, restarted below): training must go on, the journal keeps what failed.
    _wait_for_steps(job, run_dir, 7)
    with mlflow_server(server_dir, port) as uri:
        out = job.communicate(timeout=600)[0]
        assert job.returncode == 0, out[-3000:]
        journal = Journal(run_dir / JOURNAL_FILE)
        missed = journal.pending()
        assert missed and any(e["call"] == "log_batch" for e in missed)
        client = MlflowClient(tracking_uri=uri)
        (run,) = client.search_runs([client.get_experiment_by_name("xlir").experiment_id])
        logged = metric_journal(journal)
        assert _server_metrics(client, run.info.run_id, {k for k, _ in logged}) != logged  # data is missing

        sync = run_module("src.sync", str(run_dir), env={"MLFLOW_TRACKING_URI": uri}, timeout=300)
        assert sync.returncode == 0, sync.stderr[-2000:]
        assert f"uploaded {len(missed)} pending tracking calls, 0 still pending" in sync.stdout
        assert not Journal(run_dir / JOURNAL_FILE).pending()
        assert _server_metrics(client, run.info.run_id, {k for k, _ in logged}) == logged
        run = client.get_run(run.info.run_id)
        assert run.info.status == "FINISHED"
        saved = json.loads((run_dir / "metrics.json").read_text())
        assert all(run.data.metrics[k] == v for k, v in saved.items() if isinstance(v, float))


def test_two_jobs_log_concurrently_to_one_sqlite_store(corpus: Path, tmp_path: Path) -> None:
    db = tmp_path / "mlflow.db"
    args = [a for a in _args(corpus, db, tmp_path / "unused") if not a.startswith("hydra.run.dir")]
    proc = run_module("src.run", "-m", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2", "seed=1,2",
                      *args, "trainer.max_steps=6", f"hydra.sweep.dir={tmp_path / 'sweep'}", timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    runs = [r for r in mlflow_runs(db) if "seed" in r.data.params]  # (a sweep parent run has no config)
    assert sorted(r.data.params["seed"] for r in runs) == ["1", "2"]
    client = MlflowClient(tracking_uri=f"sqlite:///{db}")
    for run in runs:
        assert run.info.status == "FINISHED"
        folder = tmp_path / "sweep" / str(int(run.data.params["seed"]) - 1)
        journal = Journal(folder / JOURNAL_FILE)
        logged = metric_journal(journal)
        assert logged and not journal.pending()
        assert _server_metrics(client, run.info.run_id, {k for k, _ in logged}) == logged
        params = {k: str(v) for k, v in flatten(OmegaConf.load(folder / "config.yaml")).items()}
        assert {k: v for k, v in run.data.params.items() if not k.startswith("runtime.")} == params
        assert run.data.params["runtime.precision"] == "32-true"  # explicit in the job's overrides
