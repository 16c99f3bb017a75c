"""`make ui`: the MLflow UI server serves a sweep's parent run and its nested children (checked over HTTP)."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from src.tracking.sweep import PARENT_TAG, parent_run_name
from tests.integration.test_tracking_server import _free_port, mlflow_server

SAMPLERS = ("xx", "xy", "hybrid-a0.5")


def post(url: str, body: dict) -> dict:
    """POST a JSON body to the REST API, return the JSON answer."""
    req = urllib.request.Request(url, json.dumps(body).encode(), {"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.load(r)


def write_sweep(db: Path, artifacts: Path) -> str:
    """A sampler sweep as src.run -m writes it: a parent and one child per sampler; returns the parent id."""
    client = MlflowClient(f"sqlite:///{db}")
    exp = client.create_experiment("xlir", artifact_location=artifacts.as_uri())
    parent = client.create_run(exp, run_name=parent_run_name("multirun/2026-11-29/12-00-00", ["sampling"]),
                               tags={"task": "sweep", "sweep.swept": "sampling"})
    for i, name in enumerate(SAMPLERS):
        child = client.create_run(exp, run_name=f"{name}-seed1", tags={PARENT_TAG: parent.info.run_id})
        client.log_param(child.info.run_id, "sampling.name", name.split("-")[0])
        client.log_metric(child.info.run_id, "xquad_r/multi/map", 0.3 + 0.1 * i)
        client.set_terminated(child.info.run_id)
    client.set_terminated(parent.info.run_id)
    return parent.info.run_id


@pytest.mark.slow  # the server's start-up: ~10 s idle, up to a minute on a loaded 2-core machine
def test_ui_server_serves_the_parent_and_its_children(tmp_path: Path) -> None:
    root = tmp_path / "ui"
    root.mkdir()
    parent_id = write_sweep(root / "server.db", root / "artifacts")  # the store `make ui` would open
    with mlflow_server(root, _free_port(), startup_s=120) as uri:
        with urllib.request.urlopen(f"{uri}/", timeout=10) as r:  # the UI's single-page app itself
            assert r.status == 200 and "<html" in r.read().decode().lower()
        exp = post(f"{uri}/ajax-api/2.0/mlflow/experiments/search", {"max_results": 10})["experiments"]
        exp_id = next(e["experiment_id"] for e in exp if e["name"] == "xlir")
        # What the experiment page asks for: the runs, then the children of an expanded parent.
        runs = post(f"{uri}/ajax-api/2.0/mlflow/runs/search", {"experiment_ids": [exp_id]})["runs"]
        assert len(runs) == 4
        kids = post(f"{uri}/api/2.0/mlflow/runs/search", {
            "experiment_ids": [exp_id], "filter": f"tags.`{PARENT_TAG}` = '{parent_id}'"})["runs"]
        assert sorted(k["info"]["run_name"] for k in kids) == sorted(f"{s}-seed1" for s in SAMPLERS)
        assert all(k["info"]["status"] == "FINISHED" for k in kids)
        assert {m["key"] for k in kids for m in k["data"]["metrics"]} == {"xquad_r/multi/map"}
        with urllib.request.urlopen(f"{uri}/api/2.0/mlflow/runs/get?run_id={parent_id}", timeout=10) as r:
            parent = json.load(r)["run"]
        assert parent["info"]["run_name"].startswith("sweep(sampling)")
