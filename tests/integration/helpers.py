"""Run the real entry points in a subprocess and read the MLflow store back."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def run_module(module: str, *overrides: str, timeout: int = 900, env: dict | None = None) -> subprocess.CompletedProcess:
    """`python -m module overrides...` from the repo root, offline, capturing output."""
    full_env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true", "HF_HUB_OFFLINE": "1",
                "TOKENIZERS_PARALLELISM": "false", **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", module, *overrides], cwd=ROOT, env=full_env, capture_output=True, text=True,
        timeout=timeout, check=False,
    )


def mlflow_runs(db: Path, experiment: str = "xlir") -> list:
    """All runs of an experiment in a sqlite store ([] when the store or experiment does not exist)."""
    if not db.exists():
        return []
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{db}")
    exp = client.get_experiment_by_name(experiment)
    if exp is None:
        return []
    return client.search_runs([exp.experiment_id])
