"""The exported encoder logged as an MLflow model: loads back from `runs:/<id>/model` with the same embeddings."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from src.model.encoder import BiEncoder
from src.model.weights.tiny import build_tiny_model
from tests.model.test_st_export import PASSAGES, QUERIES, cosines
from tests.model.test_tiny import make_corpus

pytest.importorskip("sentence_transformers")


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> tuple[BiEncoder, Path]:
    """The tiny model with E5-style prompts, exported as `src.run` exports it."""
    tmp = tmp_path_factory.mktemp("export")
    base = build_tiny_model(make_corpus(400) + QUERIES + PASSAGES, tmp / "base", vocab_size=600)
    encoder = BiEncoder(str(base), pooling="mean", query_prefix="query: ", passage_prefix="passage: ")
    encoder.eval()
    return encoder, encoder.save(tmp / "model")


def test_logged_model_loads_back_with_the_same_embeddings(exported: tuple[BiEncoder, Path], tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    import mlflow

    from src.tracking.model import log_encoder_model, pointed_at

    encoder, folder = exported
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = mlflow.MlflowClient(uri)
    exp = client.create_experiment("xlir", artifact_location=(tmp_path / "artifacts").as_uri())
    run = client.create_run(exp, run_name="tiny-hybrid-a0.5-seed1")
    info = log_encoder_model(uri, run.info.run_id, folder, registered_model_name="xlir-tiny")

    assert client.get_run(run.info.run_id).info.status == "RUNNING"  # the entry point closes the run, not this
    assert client.get_logged_model(info.model_id).experiment_id == exp  # the run's experiment, not Default
    assert info.flavors["sentence_transformers"] and info.saved_input_example_info is not None
    assert info.signature.params.to_dict()[0]["name"] == "prompt_name"
    assert client.get_model_version("xlir-tiny", "1").run_id == run.info.run_id

    with pointed_at(uri, exp):  # also when an earlier test left a global tracking URI behind
        model = mlflow.sentence_transformers.load_model(f"runs:/{run.info.run_id}/model")
        pyfunc = mlflow.pyfunc.load_model(f"runs:/{run.info.run_id}/model")
    for texts, side in ((QUERIES, "query"), (PASSAGES, "passage")):
        assert cosines(encoder.encode(texts, side, batch_size=32), model.encode(texts, prompt_name=side)).min() >= 0.9999
    served = np.asarray(pyfunc.predict(PASSAGES, params={"prompt_name": "passage"}))
    assert cosines(encoder.encode(PASSAGES, "passage", batch_size=32), served).min() >= 0.9999


def test_a_failing_store_only_warns(exported: tuple[BiEncoder, Path], tmp_path: Path) -> None:
    from src.tracking.model import try_log_encoder_model

    with pytest.warns(UserWarning, match="could not log"):
        assert try_log_encoder_model((tmp_path / "no-store").as_uri(), "0" * 32, exported[1]) is None
