"""The exported encoder as an MLflow model of its run (sentence_transformers flavor), optionally registered."""

from __future__ import annotations

import contextlib
import os
import warnings
from collections.abc import Iterator
from importlib.metadata import version
from pathlib import Path
from typing import Any
from unittest.mock import patch

MODEL_NAME = "model"  # `runs:/<run id>/model`
# A query and its prompt: the signature's params let pyfunc users pick the side (`prompt_name="passage"`).
INPUT_EXAMPLE = (["Where is Berlin?", "Wo liegt Berlin?"], {"prompt_name": "query"})
# Written instead of MLflow's inference, which reloads the model in a subprocess (~15 s for the tiny model).
REQUIREMENTS = ("sentence-transformers", "transformers", "torch")


def pip_requirements() -> list[str]:
    """What serving the model needs, pinned to the versions that wrote it (no local labels like +cpu)."""
    return [f"{name}=={version(name).split('+')[0]}" for name in REQUIREMENTS]


@contextlib.contextmanager
def pointed_at(tracking_uri: str, experiment_id: str) -> Iterator[None]:
    """MLflow's fluent API (which logs models) aimed at this store and experiment, restored afterwards."""
    # A URI set earlier in this process with mlflow.set_tracking_uri wins over the environment: pin both.
    from mlflow.tracking._tracking_service.utils import _use_tracking_uri

    # patch.dict restores the whole environment on exit, including the name removed below.
    with patch.dict(os.environ, {"MLFLOW_TRACKING_URI": tracking_uri, "MLFLOW_EXPERIMENT_ID": experiment_id}), \
            _use_tracking_uri(tracking_uri):
        os.environ.pop("MLFLOW_EXPERIMENT_NAME", None)  # a name would win over the id
        yield


def log_encoder_model(tracking_uri: str, run_id: str, model_dir: str | Path,
                      registered_model_name: str | None = None) -> Any:
    """Log an exported sentence-transformers folder to the run as `model`; returns MLflow's ModelInfo.

    `mlflow.sentence_transformers.load_model("runs:/<run id>/model")` gives back a SentenceTransformer with the
    same embeddings; `registered_model_name` also creates a version in the model registry.
    """
    import mlflow
    from sentence_transformers import SentenceTransformer

    uri = tracking_uri  # already resolved by the caller (MLFLOW_TRACKING_URI may be a stale global here)
    experiment_id = mlflow.MlflowClient(uri).get_run(run_id).info.experiment_id
    model = SentenceTransformer(str(model_dir), device="cpu", local_files_only=True)
    with pointed_at(uri, experiment_id):
        return mlflow.sentence_transformers.log_model(
            model, name=MODEL_NAME, run_id=run_id, input_example=INPUT_EXAMPLE,
            pip_requirements=pip_requirements(), registered_model_name=registered_model_name,
        )


def try_log_encoder_model(tracking_uri: str, run_id: str, model_dir: str | Path,
                          registered_model_name: str | None = None) -> Any:
    """`log_encoder_model`, but a store that fails here only warns: the trained run and its folder stay."""
    from mlflow.exceptions import MlflowException

    try:
        return log_encoder_model(tracking_uri, run_id, model_dir, registered_model_name)
    except (MlflowException, OSError) as err:  # store, registry or network (requests' errors are OSErrors)
        warnings.warn(f"could not log {model_dir} as an MLflow model of run {run_id}: {err}", stacklevel=2)
        return None
