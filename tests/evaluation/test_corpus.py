"""Sharded corpus encoding: same vectors as BiEncoder.encode, cache reuse, resume, float16, 2-process DDP."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from lightning.pytorch import Trainer

from src.data.beir import load_beir
from src.evaluation.corpus import (
    MANIFEST,
    encode_corpus,
    model_fingerprint,
    owned_shards,
    passage_text,
    predict_trainer,
    shard_bounds,
)
from src.model.encoder import BiEncoder
from src.model.weights.tiny import build_tiny_model
from tests.data.test_beir import fixture_corpus, write_fixture


@pytest.fixture(scope="module")
def tiny_encoder(tmp_path_factory: pytest.TempPathFactory) -> BiEncoder:
    """A tiny BERT bi-encoder whose vocabulary is trained on the fixture passages."""
    texts = [passage_text(d["title"], d["text"]) for d in fixture_corpus()]
    folder = build_tiny_model(texts, tmp_path_factory.mktemp("tiny") / "model", vocab_size=300)
    return BiEncoder(str(folder), max_passage_length=32)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory):
    """The BEIR fixture's 30 passages as an Arrow-backed dataset."""
    tmp = tmp_path_factory.mktemp("beir")
    return load_beir(write_fixture(tmp / "beir"), cache_dir=tmp / "cache").corpus


def reference(encoder: BiEncoder, corpus) -> np.ndarray:
    """The embeddings BiEncoder.encode gives for the whole corpus in one call."""
    return encoder.encode([passage_text(t, x) for t, x in zip(corpus["title"], corpus["text"])], "passage", batch_size=32)


def test_shard_bounds_and_ownership() -> None:
    assert shard_bounds(10, 4) == [(0, 4), (4, 8), (8, 10)]
    assert shard_bounds(0, 4) == []
    assert owned_shards(5, 0, 2) == [0, 2, 4] and owned_shards(5, 1, 2) == [1, 3]
    assert sorted(owned_shards(7, 0, 3) + owned_shards(7, 1, 3) + owned_shards(7, 2, 3)) == list(range(7))
    with pytest.raises(ValueError, match="corpus_shard_size"):
        shard_bounds(3, 0)


def test_sharded_equals_one_call_then_reused_and_resumed(tiny_encoder: BiEncoder, corpus, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    store = encode_corpus(tiny_encoder, corpus, predict_trainer(accelerator="cpu"), tmp_path, batch_size=4,
                          shard_size=7)
    assert [p.name for p in sorted(store.folder.glob("shard-*.npy"))] == [f"shard-0000{i}.npy" for i in range(5)]
    manifest = json.loads((store.folder / MANIFEST).read_text())
    assert manifest["complete"] and manifest["n_rows"] == 30 and manifest["shards"][-1] == {
        "file": "shard-00004.npy", "start": 28, "stop": 30}
    assert manifest["model_fingerprint"] == model_fingerprint(tiny_encoder)
    np.testing.assert_allclose(store.load(), reference(tiny_encoder, corpus), atol=1e-5)

    # Reuse: a complete store is returned without running the predict loop.
    def no_predict(*args, **kwargs):
        raise AssertionError("predict ran although the cache was complete")

    monkeypatch.setattr(Trainer, "predict", no_predict)
    again = encode_corpus(tiny_encoder, corpus, predict_trainer(accelerator="cpu"), tmp_path, batch_size=4,
                          shard_size=7)
    assert again.folder == store.folder
    monkeypatch.undo()

    # Resume: an interrupted run (manifest incomplete, shard 2 missing) re-encodes only shard 2.
    before = {p.name: p.stat().st_mtime_ns for p in store.folder.glob("shard-*.npy")}
    manifest["complete"] = False
    (store.folder / MANIFEST).write_text(json.dumps(manifest))
    store.shard_path(2).unlink()
    encode_corpus(tiny_encoder, corpus, predict_trainer(accelerator="cpu"), tmp_path, batch_size=4, shard_size=7)
    after = {p.name: p.stat().st_mtime_ns for p in store.folder.glob("shard-*.npy")}
    assert {k for k in after if after[k] != before.get(k)} == {"shard-00002.npy"}
    np.testing.assert_allclose(store.load(), reference(tiny_encoder, corpus), atol=1e-5)


def test_float16_and_other_weights_get_their_own_cache(tiny_encoder: BiEncoder, corpus, tmp_path: Path) -> None:
    f32 = encode_corpus(tiny_encoder, corpus, predict_trainer(accelerator="cpu"), tmp_path, batch_size=4, shard_size=16)
    f16 = encode_corpus(tiny_encoder, corpus, predict_trainer(accelerator="cpu"), tmp_path, batch_size=4, shard_size=16,
                        dtype="float16")
    assert f16.folder != f32.folder and next(f16.shards()).dtype == np.float16
    np.testing.assert_allclose(f16.load(), f32.load(), atol=2e-3)
    assert model_fingerprint(tiny_encoder) != model_fingerprint(_perturbed(tiny_encoder))


def _perturbed(encoder: BiEncoder) -> BiEncoder:
    """A copy of the encoder with one weight changed."""
    import copy

    import torch

    other = copy.deepcopy(encoder)
    with torch.no_grad():
        next(other.parameters()).view(-1)[0] += 1.0
    return other


def test_two_ddp_processes_match_one(tiny_encoder: BiEncoder, corpus, tmp_path: Path) -> None:
    """Each of 2 CPU ranks encodes its own shards through predict; the assembled store equals 1 process."""
    single = encode_corpus(tiny_encoder, corpus, predict_trainer(accelerator="cpu"), tmp_path / "one",
                           batch_size=4, shard_size=6)
    ddp = Trainer(accelerator="cpu", devices=2, strategy="ddp_spawn", logger=False, enable_checkpointing=False,
                  enable_progress_bar=False, enable_model_summary=False, use_distributed_sampler=False)
    both = encode_corpus(tiny_encoder, corpus, ddp, tmp_path / "two", batch_size=4, shard_size=6)
    assert json.loads((both.folder / MANIFEST).read_text())["complete"]
    np.testing.assert_allclose(both.load(), single.load(), atol=1e-6)


def test_shard_batches_are_length_sorted_and_cover_rows(tiny_encoder: BiEncoder, tmp_path: Path) -> None:
    """Title-less corpus: each shard's rows arrive exactly once, longest first, in the order shards were given."""
    from src.data.beir import load_corpus
    from src.evaluation.corpus import ShardBatches

    texts = ["cats", "cats purr loudly on warm mats", "rivers", "volcanoes erupt", "cats and rivers and volcanoes"]
    (tmp_path / "c.jsonl").write_text("".join(json.dumps({"_id": str(i), "text": t}) + "\n"
                                              for i, t in enumerate(texts)))
    corpus = load_corpus([tmp_path / "c.jsonl"], cache_dir=tmp_path / "cache")
    batches = list(ShardBatches(corpus, tiny_encoder, shard_bounds(5, 3), [1, 0], batch_size=2))
    assert [(b["shard"], b["size"]) for b in batches] == [(1, 2), (0, 3), (0, 3)]
    assert sorted(batches[1]["rows"].tolist() + batches[2]["rows"].tolist()) == [0, 1, 2]
    lengths = [int(n) for b in batches[1:] for n in b["attention_mask"].sum(1)]
    assert lengths == sorted(lengths, reverse=True) and batches[1]["rows"].tolist()[0] == 1  # longest first
