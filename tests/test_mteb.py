"""MTEB on xlir models: the pooled LAReQA tasks agree with the project's `multi` grid; scores land in MLflow."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from src.data.lareqa import load_lareqa
from src.evaluation.grid import encode_dataset, relevance, score_grid
from src.evaluation.metrics import ranks_from_embeddings
from src.model.encoder import BiEncoder
from src.model.weights.tiny import build_tiny_model
from tests.conftest import REAL_DATA
from tests.model.test_st_export import QUERIES, cosines

pytest.importorskip("mteb")
pytest.importorskip("sentence_transformers")

LANGS = ["en", "zh"]
DEPTH = 1000  # MTEB's deepest cut-off


def ap_at(ranks: np.ndarray, depth: int) -> np.ndarray:
    """trec_eval's map_cut: precision at each relevant rank <= depth, summed, over all relevant (R)."""
    srt = np.sort(np.where(ranks > 0, ranks, np.iinfo(np.int64).max), axis=1)
    pos = np.arange(1, ranks.shape[1] + 1)
    prec = np.where(srt <= depth, pos / np.minimum(srt, depth + 1), 0.0)
    return prec.sum(1) / (ranks > 0).sum(1)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> tuple[BiEncoder, Path, Path]:
    """A tiny model with a vocabulary of the evaluation texts, exported: (encoder, export, base folder)."""
    ds = load_lareqa(REAL_DATA / "xquad-r", LANGS)
    texts = [q.text for s in ds.by_lang.values() for q in s.questions] + [
        c.sentence for s in ds.by_lang.values() for c in s.candidates]
    tmp = tmp_path_factory.mktemp("mteb")
    base = build_tiny_model(texts, tmp / "base", vocab_size=3000)
    encoder = BiEncoder(str(base), pooling="mean", query_prefix="query: ", passage_prefix="passage: ")
    encoder.eval()
    return encoder, encoder.save(tmp / "model"), base


def test_pooled_task_matches_the_project_multi_setting(tiny: tuple[BiEncoder, Path, Path], tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    import mlflow
    from sentence_transformers import SentenceTransformer

    from src.mteb.cli import main

    encoder, folder, _ = tiny
    db = tmp_path / "mlflow.db"
    client = mlflow.MlflowClient(f"sqlite:///{db}")
    client.create_experiment("xlir", artifact_location=(tmp_path / "artifacts").as_uri())  # not ./mlruns
    pool_encodings = []
    encode_document = SentenceTransformer.encode_document
    monkeypatch.setattr(SentenceTransformer, "encode_document",
                        lambda self, *a, **kw: pool_encodings.append(1) or encode_document(self, *a, **kw))
    assert main([str(folder), "--tasks", "XQuAD-R-pooled", "--languages", *LANGS, "--data-dir",
                 str(REAL_DATA.parent), "--tracking-uri", f"sqlite:///{db}", "--batch-size", "256"]) == 0
    assert len(pool_encodings) == 1  # the pool is shared by the query languages: encoded once
    [run] = client.search_runs([client.get_experiment_by_name("xlir").experiment_id])
    got = run.data.metrics
    assert run.info.status == "FINISHED" and run.data.tags["task"] == "mteb"
    assert "mteb/XQuAD-R-pooled.json" in {a.path for a in client.list_artifacts(run.info.run_id, "mteb")}

    # The project's own numbers for the same model and languages (src/evaluation/grid.py).
    ds = load_lareqa(REAL_DATA / "xquad-r", LANGS, "xquad_r")
    emb = encode_dataset(ds, lambda texts, side, ctx: encoder.encode(texts, side, batch_size=32))
    ours = score_grid(ds, emb).summary()
    pool = np.concatenate([emb.candidates[y] for y in LANGS])
    for x in LANGS:
        ranks = ranks_from_embeddings(emb.questions[x], pool, relevance(ds, x, LANGS))
        # Same definitions: nDCG@10 and R@10 directly; AP once the project's full-ranking AP is cut at 1000.
        assert got[f"mteb/XQuAD-R-pooled/ndcg_at_10/{x}"] == pytest.approx(ours[f"xquad_r/multi/ndcg10/{x}"], abs=2e-3)
        assert got[f"mteb/XQuAD-R-pooled/recall_at_10/{x}"] == pytest.approx(ours[f"xquad_r/multi/r10/{x}"], abs=2e-3)
        assert got[f"mteb/XQuAD-R-pooled/map_at_1000/{x}"] == pytest.approx(ap_at(ranks, DEPTH).mean(), abs=2e-3)
    assert got["mteb/XQuAD-R-pooled/main_score"] == pytest.approx(got["mteb/XQuAD-R-pooled/map_at_1000"])
    assert got["mteb/XQuAD-R-pooled/ndcg_at_10"] == pytest.approx(ours["xquad_r/multi/ndcg10"], abs=2e-3)
    # The only difference in mAP is the cut-off: the full ranking also credits relevant passages below 1000.
    assert ours["xquad_r/multi/map"] >= got["mteb/XQuAD-R-pooled/map_at_1000"] - 2e-3


def test_run_and_checkpoint_resolve_to_the_same_model(tiny: tuple[BiEncoder, Path, Path], tmp_path: Path) -> None:
    import mlflow
    import torch
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    from src.mteb.cli import log_scores, resolve
    from src.tracking.model import log_encoder_model

    encoder, folder, base = tiny
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = mlflow.MlflowClient(uri)
    exp = client.create_experiment("xlir", artifact_location=(tmp_path / "artifacts").as_uri())
    run_id = client.create_run(exp).info.run_id
    log_encoder_model(uri, run_id, folder)
    source = resolve(run_id, uri, tmp_path / "work")
    assert source.run_id == run_id
    assert cosines(encoder.encode(QUERIES, "query", batch_size=32), source.model.encode_query(QUERIES)).min() >= 0.9999
    log_scores(uri, "xlir", source, {"mteb/XQuAD-R-pooled/main_score": 0.5}, [])
    assert client.get_run(run_id).data.metrics["mteb/XQuAD-R-pooled/main_score"] == 0.5

    # A checkpoint of src.run: {run folder}/checkpoints/last.ckpt next to the run's config.yaml.
    run_dir = tmp_path / "run"
    (run_dir / "checkpoints").mkdir(parents=True)
    with initialize_config_dir(config_dir=str(Path(__file__).resolve().parents[1] / "conf"), version_base="1.3"):
        cfg = compose("config", overrides=["model=tiny", f"model.pretrained={base}", "model.query_prefix='query: '",
                                           "model.passage_prefix='passage: '", f"paths.output_dir={run_dir}"])
    (run_dir / "config.yaml").write_text(OmegaConf.to_yaml(cfg, resolve=True))
    state = {f"encoder.{k}": v for k, v in encoder.state_dict().items()}
    torch.save({"state_dict": state}, run_dir / "checkpoints" / "last.ckpt")
    source = resolve(str(run_dir / "checkpoints" / "last.ckpt"), uri, tmp_path / "work")
    assert source.run_id is None and source.label == "run"
    assert cosines(encoder.encode(QUERIES, "query", batch_size=32), source.model.encode_query(QUERIES)).min() >= 0.9999


def test_unknown_inputs_fail_with_a_message(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    from src.mteb.cli import main
    from src.mteb.tasks import XQuADRPooled

    assert main(["no/such/folder", "--no-log"]) == 2
    assert "neither a model folder" in capsys.readouterr().err
    with pytest.raises(ValueError, match="has no language"):
        XQuADRPooled(languages=["en", "xx"])
