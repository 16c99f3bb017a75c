"""The exported folder is a sentence-transformers model that embeds exactly like the project's BiEncoder."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from transformers import AutoModel

from src.model.encoder import ENCODER_FILE, BiEncoder
from src.model.weights.tiny import build_tiny_model
from tests.model.test_tiny import make_corpus

sentence_transformers = pytest.importorskip("sentence_transformers")

ROOT = Path(__file__).resolve().parents[2]
BUNDLED = ROOT / ".cache" / "models" / "multilingual-e5-small"
QUERIES = ["Where did the cat sit?", "Wo liegt Berlin?", "猫坐在哪里？", "How much protein should a woman eat per day"]
PASSAGES = ["The cat sat on the mat.", "Berlin liegt in Deutschland.", "巴黎在法国。", "Dogs bark loudly at night."]
# Longer than the 24-token query length below: encode_query must cut it where the project does.
LONG_QUERY = " ".join(["how much protein should a woman eat per day"] * 4)


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise cosine of two embedding matrices."""
    return (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)


@pytest.fixture(scope="module")
def tiny_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random BERT (with a pooler) whose vocabulary covers the test texts."""
    texts = make_corpus(600) + QUERIES + PASSAGES
    return build_tiny_model(texts, tmp_path_factory.mktemp("tiny") / "model", vocab_size=800)


def check_same_embeddings(encoder: BiEncoder, folder: Path, max_query_length: int | None = None) -> float:
    """SentenceTransformer(folder) against the encoder on both sides; returns the smallest cosine."""
    st = sentence_transformers.SentenceTransformer(str(folder), device="cpu")
    worst = 1.0
    for texts, side in ((QUERIES, "query"), (PASSAGES, "passage")):
        ours = encoder.encode(texts, side, batch_size=32)
        for theirs in (st.encode(texts, prompt_name=side),
                       st.encode_query(texts) if side == "query" else st.encode_document(texts)):
            cos = cosines(ours, theirs)
            assert cos.min() >= 0.9999, (side, cos)
            worst = min(worst, float(cos.min()))
    if max_query_length is not None:  # encode_query applies the query length, as training did
        cos = cosines(encoder.encode([LONG_QUERY], "query", batch_size=32), st.encode_query([LONG_QUERY]))
        assert cos.min() >= 0.9999, cos
    return worst


@pytest.mark.parametrize("pooling", ["mean", "cls", "pooler"])
def test_tiny_export_is_a_sentence_transformer(tiny_folder: Path, tmp_path: Path, pooling: str) -> None:
    encoder = BiEncoder(str(tiny_folder), pooling=pooling, query_prefix="query: ", passage_prefix="passage: ",
                        max_query_length=24, max_passage_length=48)
    out = encoder.save(tmp_path / "model")
    modules = json.loads((out / "modules.json").read_text())
    kinds = [m["type"].rsplit(".", 1)[1] for m in modules]
    assert kinds == ["Transformer", "Pooling", *(["Dense"] if pooling == "pooler" else []), "Normalize"]
    st_config = json.loads((out / "config_sentence_transformers.json").read_text())
    assert st_config["prompts"] == {"query": "query: ", "passage": "passage: ", "document": "passage: "}
    assert st_config["similarity_fn_name"] == "cosine"
    pooling_config = json.loads((out / "1_Pooling" / "config.json").read_text())
    assert pooling_config["pooling_mode"] == ("mean" if pooling == "mean" else "cls")
    check_same_embeddings(encoder, out, max_query_length=24)
    st = sentence_transformers.SentenceTransformer(str(out), device="cpu")
    assert st.max_seq_length == 48
    # Still a plain Hugging Face folder, and still the project's encoder with its own settings.
    assert AutoModel.from_pretrained(out).config.hidden_size == 64
    settings = json.loads((out / ENCODER_FILE).read_text())
    assert settings["pooling"] == pooling and settings["max_query_length"] == 24
    reloaded = BiEncoder(str(out), **settings)
    np.testing.assert_allclose(reloaded.encode(QUERIES, "query", batch_size=32), encoder.encode(QUERIES, "query", batch_size=32), atol=1e-6)


def test_build_encoder_reads_the_exported_settings(tiny_folder: Path, tmp_path: Path) -> None:
    from hydra import compose, initialize_config_dir

    from src.model.encoder import build_encoder

    encoder = BiEncoder(str(tiny_folder), pooling="pooler", query_prefix="q: ", max_query_length=16)
    out = encoder.save(tmp_path / "model")
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = compose("config", overrides=["model=tiny", f"model.pretrained={out}", "paths.output_dir=."])
    built = build_encoder(cfg.model)
    assert (built.pooling, built.prefixes["query"], built.max_lengths["query"]) == ("pooler", "q: ", 16)


@pytest.mark.slow  # ~20 s: two writes and three loads of a 470 MB model
@pytest.mark.skipif(not (BUNDLED / "config.json").is_file(), reason="bundled model not built (make model)")
def test_bundled_export_is_a_sentence_transformer(tmp_path: Path) -> None:
    encoder = BiEncoder(str(BUNDLED), pooling="mean", query_prefix="query: ", passage_prefix="passage: ")
    out = encoder.save(tmp_path / "model")
    assert check_same_embeddings(encoder, out) >= 0.9999
