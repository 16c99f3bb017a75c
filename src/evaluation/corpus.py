"""Corpus encoding that scales: streamed from Arrow, sharded on disk, resumable, cached, distributed.

The corpus is cut into shards of `shard_size` rows (corpus order). A shard's rows are read from the
memory-mapped Arrow table only when that shard is encoded, tokenised, sorted by length (long first, so
padding is small and the peak-memory batch comes first) and written as one `.npy` file in corpus order.
Lightning's `predict` loop runs the batches: under DDP every rank takes the shards `i % world == rank`,
so ranks never overlap; each finished shard is renamed into place atomically, which makes an
interrupted encoding resume at the first missing shard. `manifest.json` records the fingerprints and
shapes; it is marked complete by rank 0 once every shard exists, and a complete store is reused by later
evaluations of the same weights on the same corpus (the folder name is the hash of both fingerprints).
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from lightning.pytorch import LightningDataModule, LightningModule, Trainer
from lightning.pytorch.callbacks import BasePredictionWriter
from torch.utils.data import DataLoader, IterableDataset

from src.model.encoder import BiEncoder

MANIFEST = "manifest.json"
FORMAT_VERSION = 1  # bump when the passage text recipe or the file layout changes


def passage_text(title: str | None, text: str | None) -> str:
    """The text a passage is embedded as: title and body joined by a space (the E5/BEIR convention)."""
    return f"{title or ''} {text or ''}".strip()


def shard_bounds(n_rows: int, shard_size: int) -> list[tuple[int, int]]:
    """[start, stop) row ranges of consecutive shards covering n_rows."""
    if shard_size < 1:
        raise ValueError(f"eval.corpus_shard_size must be > 0, got {shard_size}")
    return [(s, min(s + shard_size, n_rows)) for s in range(0, n_rows, shard_size)]


def owned_shards(n_shards: int, rank: int, world_size: int) -> list[int]:
    """The shards one rank encodes: round robin, so ranks are disjoint and together cover all shards."""
    if not 0 <= rank < world_size:
        raise ValueError(f"rank {rank} outside world size {world_size}")
    return list(range(rank, n_shards, world_size))


def model_fingerprint(encoder: BiEncoder) -> str:
    """SHA-256 of the encoder's weights and of every setting that changes an embedding."""
    digest = hashlib.sha256()
    settings = {"pooling": encoder.pooling, "prefixes": encoder.prefixes, "max_lengths": encoder.max_lengths,
                "normalize": encoder.normalize, "tokenizer": type(encoder.tokenizer).__name__,
                "vocab": len(encoder.tokenizer)}
    digest.update(json.dumps(settings, sort_keys=True).encode())
    for name, tensor in encoder.state_dict().items():
        digest.update(f"{name}:{tuple(tensor.shape)}:{tensor.dtype}".encode())
        digest.update(tensor.detach().cpu().contiguous().view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def corpus_fingerprint(corpus: Any) -> str:
    """The `datasets` fingerprint of the corpus table (changes with its files and every transform)."""
    return str(corpus._fingerprint)


@dataclass
class EmbeddingStore:
    """A folder of embedding shards `shard-00000.npy`... plus `manifest.json`."""

    folder: Path
    n_rows: int
    dim: int
    shard_size: int
    dtype: str

    @property
    def bounds(self) -> list[tuple[int, int]]:
        """Row ranges of the shards."""
        return shard_bounds(self.n_rows, self.shard_size)

    def shard_path(self, i: int) -> Path:
        """File of shard i."""
        return self.folder / f"shard-{i:05d}.npy"

    def missing(self) -> list[int]:
        """Shards not written yet."""
        return [i for i in range(len(self.bounds)) if not self.shard_path(i).is_file()]

    @property
    def complete(self) -> bool:
        """True when the manifest says every shard was written."""
        path = self.folder / MANIFEST
        return path.is_file() and bool(json.loads(path.read_text()).get("complete"))

    def write_shard(self, i: int, emb: np.ndarray) -> None:
        """Save one shard atomically (temp file + rename), so a crash never leaves a truncated shard."""
        start, stop = self.bounds[i]
        if emb.shape != (stop - start, self.dim):
            raise ValueError(f"shard {i}: expected shape {(stop - start, self.dim)}, got {emb.shape}")
        tmp = self.folder / f".shard-{i:05d}.{os.getpid()}.tmp.npy"
        np.save(tmp, emb.astype(self.dtype, copy=False))
        os.replace(tmp, self.shard_path(i))

    def shards(self) -> Iterator[np.ndarray]:
        """Every shard in corpus order, memory-mapped (float16 shards stay float16 until used)."""
        for i in range(len(self.bounds)):
            yield np.load(self.shard_path(i), mmap_mode="r")

    def load(self) -> np.ndarray:
        """All embeddings as one float32 array (small corpora and tests)."""
        if not self.bounds:
            return np.empty((0, self.dim), dtype=np.float32)
        return np.concatenate([np.asarray(s, dtype=np.float32) for s in self.shards()])


def open_store(folder: Path, n_rows: int, dim: int, shard_size: int, dtype: str, meta: dict[str, Any]) -> EmbeddingStore:
    """Create the folder and manifest, or reopen an existing one after checking it describes the same job."""
    folder.mkdir(parents=True, exist_ok=True)
    store = EmbeddingStore(folder, n_rows, dim, shard_size, dtype)
    manifest = {"version": FORMAT_VERSION, "n_rows": n_rows, "dim": dim, "shard_size": shard_size,
                "dtype": dtype, **meta}
    path = folder / MANIFEST
    if path.is_file():
        old = json.loads(path.read_text())
        differs = {k: (old.get(k), v) for k, v in manifest.items() if old.get(k) != v}
        if differs:
            raise ValueError(f"{path}: an embedding cache for other settings is in the way ({differs}); delete it")
        return store
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps({**manifest, "complete": False}, indent=2))
    os.replace(tmp, path)
    return store


def mark_complete(store: EmbeddingStore) -> None:
    """Record in the manifest that every shard exists, with the shard file list."""
    path = store.folder / MANIFEST
    manifest = json.loads(path.read_text())
    manifest.update(complete=True, shards=[{"file": store.shard_path(i).name, "start": a, "stop": b}
                                           for i, (a, b) in enumerate(store.bounds)])
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(manifest, indent=2))
    os.replace(tmp, path)


class ShardBatches(IterableDataset):
    """Length-sorted, padded passage batches of the given shards, read from Arrow one shard at a time."""

    def __init__(self, corpus: Any, encoder: BiEncoder, bounds: Sequence[tuple[int, int]], shards: Sequence[int],
                 batch_size: int) -> None:
        super().__init__()
        self.corpus, self.encoder, self.bounds = corpus, encoder, list(bounds)
        self.shards, self.batch_size = list(shards), batch_size

    def __iter__(self) -> Iterator[dict[str, Any]]:
        """Yield {input_ids, attention_mask[, token_type_ids], shard, rows, size} batches."""
        columns = [c for c in ("title", "text") if c in self.corpus.column_names]
        table = self.corpus.with_format(None).select_columns(columns)
        for shard in self.shards:
            start, stop = self.bounds[shard]
            rows = table[start:stop]  # only this shard's texts are ever in Python memory
            titles = rows.get("title") or [None] * (stop - start)
            texts = [passage_text(t, x) for t, x in zip(titles, rows["text"])]
            features = self.encoder.tokenize(texts, "passage")
            lengths = np.fromiter((len(r) for r in features["input_ids"]), dtype=np.int64, count=len(texts))
            order = np.argsort(-lengths, kind="stable")
            for b in range(0, len(order), self.batch_size):
                idx = order[b:b + self.batch_size]
                batch = self.encoder.pad({k: [v[i] for i in idx] for k, v in features.items()})
                yield {**batch, "shard": shard, "rows": torch.as_tensor(idx), "size": stop - start}


class CorpusDataModule(LightningDataModule):
    """Predict data: the shards this rank owns and has not written yet."""

    def __init__(self, corpus: Any, encoder: BiEncoder, store: EmbeddingStore, batch_size: int) -> None:
        super().__init__()
        self.corpus, self.encoder, self.store, self.batch_size = corpus, encoder, store, batch_size

    def predict_dataloader(self) -> DataLoader:
        """One loader over this rank's pending shards (batches are built by the dataset)."""
        rank, world = self.trainer.global_rank, self.trainer.world_size
        mine = [i for i in owned_shards(len(self.store.bounds), rank, world) if not self.store.shard_path(i).is_file()]
        return DataLoader(ShardBatches(self.corpus, self.encoder, self.store.bounds, mine, self.batch_size),
                          batch_size=None, num_workers=0)


class PassageEncoderModule(LightningModule):
    """Wraps a BiEncoder for Lightning's predict loop (device placement, precision, DDP launch)."""

    def __init__(self, encoder: BiEncoder) -> None:
        super().__init__()
        self.encoder = encoder

    def predict_step(self, batch: dict[str, Any], batch_idx: int) -> dict[str, Any]:
        """Embed one padded batch; shard bookkeeping passes through to the writer."""
        inputs = {k: batch[k] for k in ("input_ids", "attention_mask", "token_type_ids") if k in batch}
        return {"emb": self.encoder(**inputs), "shard": batch["shard"], "rows": batch["rows"], "size": batch["size"]}


class ShardWriter(BasePredictionWriter):
    """Collects batch embeddings per shard and saves a shard as soon as all its rows arrived."""

    def __init__(self, store: EmbeddingStore) -> None:
        super().__init__(write_interval="batch")
        self.store = store
        self._buffers: dict[int, np.ndarray] = {}
        self._filled: dict[int, int] = {}

    def write_on_batch_end(self, trainer: Trainer, pl_module: LightningModule, prediction: dict[str, Any],
                           batch_indices: Sequence[int] | None, batch: Any, batch_idx: int,
                           dataloader_idx: int) -> None:
        """Place the batch rows into their shard buffer; write the shard when it is full."""
        shard, size = int(prediction["shard"]), int(prediction["size"])
        buf = self._buffers.setdefault(shard, np.empty((size, self.store.dim), dtype=np.float32))
        rows = prediction["rows"].cpu().numpy()
        buf[rows] = prediction["emb"].float().cpu().numpy()
        self._filled[shard] = self._filled.get(shard, 0) + len(rows)
        if self._filled[shard] == size:
            self.store.write_shard(shard, self._buffers.pop(shard))
            del self._filled[shard]


def store_folder(cache_dir: str | Path, model_fp: str, corpus_fp: str, dtype: str, shard_size: int) -> Path:
    """`{cache_dir}/embeddings/<hash>`: one folder per (weights, corpus, dtype, shard size, format)."""
    key = hashlib.sha256(f"{model_fp}|{corpus_fp}|{dtype}|{shard_size}|v{FORMAT_VERSION}".encode()).hexdigest()
    return Path(cache_dir) / "embeddings" / key[:24]


def encode_corpus(encoder: BiEncoder, corpus: Any, trainer: Trainer, cache_dir: str | Path, batch_size: int,
                  shard_size: int = 50_000, dtype: str = "float32", model_fp: str | None = None) -> EmbeddingStore:
    """Encode (or resume, or reuse) the corpus embeddings through `trainer.predict`; every rank returns the store.

    Pass `model_fp` when encoding several corpora with the same weights, to hash them once.
    """
    if dtype not in ("float32", "float16"):
        raise ValueError(f"eval.embedding_dtype={dtype!r}: expected float32 or float16")
    model_fp = model_fp or model_fingerprint(encoder)
    corpus_fp = corpus_fingerprint(corpus)
    folder = store_folder(cache_dir, model_fp, corpus_fp, dtype, shard_size)
    meta = {"model_fingerprint": model_fp, "corpus_fingerprint": corpus_fp, "pretrained": str(encoder.pretrained)}
    store = open_store(folder, len(corpus), encoder.dim, shard_size, dtype, meta)
    if store.complete:
        return store
    writer = ShardWriter(store)
    trainer.callbacks.append(writer)
    try:
        with warnings.catch_warnings():
            # Batches carry their own shard/row positions, so the loop's batch-index tracking is not needed.
            warnings.filterwarnings("ignore", message="Couldn't infer the batch indices")
            trainer.predict(PassageEncoderModule(encoder), datamodule=CorpusDataModule(corpus, encoder, store, batch_size),
                            return_predictions=False)
    finally:
        trainer.callbacks.remove(writer)
    trainer.strategy.barrier("corpus_encoded")
    if trainer.is_global_zero:
        missing = store.missing()
        if missing:
            raise RuntimeError(f"{folder}: shards {missing[:5]} were not written by the predict loop")
        mark_complete(store)
    trainer.strategy.barrier("corpus_manifest")
    return store


def predict_trainer(**overrides: Any) -> Trainer:
    """A quiet single-process CPU/GPU Trainer for encoding (no logger, no checkpoints)."""
    kwargs = {"accelerator": "auto", "devices": 1, "logger": False, "enable_checkpointing": False,
              "enable_progress_bar": False, "enable_model_summary": False, "use_distributed_sampler": False,
              **overrides}
    return Trainer(**kwargs)
