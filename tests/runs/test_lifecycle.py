"""The run lifecycle of src.run and src.evaluate: the block's outcome sets the status; only the owner writes."""

from __future__ import annotations

import json
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from lightning.pytorch.utilities.exceptions import SIGTERMException
from mlflow.tracking import MlflowClient
from omegaconf import OmegaConf

from src.runs.lifecycle import METRICS_FILE, tracked_run


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[SimpleNamespace, MlflowClient]]:
    """One sqlite store (artifacts under the temp folder) and the `logger` section that points at it."""
    tmp = tmp_path_factory.mktemp("store")
    uri = f"sqlite:///{tmp / 'mlflow.db'}"
    client = MlflowClient(uri)
    client.create_experiment("xlir", artifact_location=(tmp / "artifacts").as_uri())
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("MLFLOW_TRACKING_URI", raising=False)  # the environment would win over the section
        yield SimpleNamespace(experiment_name="xlir", tracking_uri=uri), client


def _only_run(client: MlflowClient, name: str) -> Any:
    """The one run of that name."""
    (run,) = client.search_runs([client.get_experiment_by_name("xlir").experiment_id],
                                filter_string=f"attributes.run_name = '{name}'")
    return run


def test_a_finished_run_has_its_config_and_ends_with_metrics(store: tuple, tmp_path: Path) -> None:
    settings, client = store
    with tracked_run(settings, "ok", {"task": "test"}, tmp_path) as run:
        run.log_config(OmegaConf.create({"optim": {"lr": 0.1}}), {"runtime.threads": "2"})
        assert client.get_run(run.run_id).info.status == "RUNNING"
        run.write_metrics({"xquad_r/mono/map": 0.5})
    done = _only_run(client, "ok")
    assert done.info.status == "FINISHED" and done.data.tags["task"] == "test"
    assert done.data.params == {"optim.lr": "0.1", "runtime.threads": "2"}
    assert {a.path for a in client.list_artifacts(done.info.run_id)} == {"config.yaml", METRICS_FILE}
    assert json.loads((tmp_path / METRICS_FILE).read_text()) == {"xquad_r/mono/map": 0.5}


def test_a_failure_marks_the_run_failed_and_says_why(store: tuple, tmp_path: Path) -> None:
    settings, client = store
    with pytest.raises(ValueError, match="boom"), tracked_run(settings, "fails", {}, tmp_path):
        raise ValueError("boom")
    failed = _only_run(client, "fails")
    assert failed.info.status == "FAILED" and failed.data.tags["error"] == "ValueError: boom"
    assert "error.txt" in {a.path for a in client.list_artifacts(failed.info.run_id)}
    assert not (tmp_path / METRICS_FILE).exists()  # no half-written run: metrics.json only at the end


def test_interrupts_mark_the_run_killed(store: tuple, tmp_path: Path) -> None:
    settings, client = store
    with pytest.raises(KeyboardInterrupt), tracked_run(settings, "ctrl-c", {}, tmp_path):
        raise KeyboardInterrupt
    # Lightning's SIGTERMException is a SystemExit with code 0: the process exits the way a SIGTERM'd one does.
    with pytest.raises(SystemExit) as exit_info, tracked_run(settings, "sigterm", {}, tmp_path):
        raise SIGTERMException
    assert exit_info.value.code == 128 + signal.SIGTERM
    for name in ("ctrl-c", "sigterm"):
        run = _only_run(client, name)
        assert run.info.status == "KILLED" and "error" not in run.data.tags


def test_a_rank_that_does_not_own_the_run_never_writes_to_it(store: tuple, tmp_path: Path) -> None:
    settings, client = store
    with tracked_run(settings, "shared", {}, tmp_path / "rank0") as owner:
        rank0_id = owner.run_id
        # A DDP child rank adopts rank 0's run: its failure, tags and metrics stay off the run.
        with pytest.raises(ValueError), tracked_run(settings, "shared", {}, tmp_path / "rank1", run_id=rank0_id,
                                                    owner=False) as child:
            child.set_tag("from", "rank1")
            child.write_metrics({"m": 1.0})
            raise ValueError("rank 1 only")
        assert client.get_run(rank0_id).info.status == "RUNNING"
    run = client.get_run(rank0_id)
    assert run.info.status == "FINISHED" and "from" not in run.data.tags and "error" not in run.data.tags
    assert not (tmp_path / "rank1" / METRICS_FILE).exists()


def test_git_commit_is_read_once_per_process(tmp_path: Path) -> None:
    # a sweep's later jobs run the code imported at its start: the commit must not follow HEAD afterwards
    from src.tracking.mlflow import git_commit

    def commit(message: str) -> None:
        subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "--allow-empty", "-m",
                        message], cwd=tmp_path, check=True)

    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    commit("first")
    first = git_commit(tmp_path)
    commit("second")
    assert len(first) == 40 and git_commit(tmp_path) == first
    assert git_commit(tmp_path / "nowhere") == "unknown"
