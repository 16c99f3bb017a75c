"""Bi-encoder: a Hugging Face encoder + pooling + L2 normalisation, shared by queries and passages."""

from __future__ import annotations

import itertools
import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import torch
from torch import nn

from src.data.padding import LengthBuckets, round_up

if TYPE_CHECKING:
    from omegaconf import DictConfig

    from src.core.config import ModelSchema

Pooling = Literal["mean", "cls", "pooler"]
# `sentence`: both sides of a symmetric task (translation retrieval): the query prefix (E5's rule for symmetric
# tasks) and the longer of the two length limits, since a sentence is as long as a passage.
Side = Literal["query", "passage", "sentence"]
ENCODER_FILE = "xlir_encoder.json"  # pooling/prefix/length settings saved next to an exported model


def looks_like_local_path(name: str) -> bool:
    """True for names a user means as a folder (absolute, ./, ../, ~), not a hub id like org/model."""
    return name.startswith(("/", "./", "../", "~")) or os.path.isdir(os.path.expanduser(name))


def check_pretrained(name: str) -> None:
    """Fail early, naming `model.pretrained`, when a local model folder is missing or incomplete."""
    if not looks_like_local_path(name):
        return
    path = Path(name).expanduser()
    if not path.is_dir():
        raise FileNotFoundError(f"model.pretrained={name}: folder does not exist")
    if not (path / "config.json").is_file():
        raise FileNotFoundError(f"model.pretrained={name}: no config.json (not a Hugging Face model folder)")
    tokenizer_files = ("tokenizer.json", "vocab.txt", "sentencepiece.bpe.model", "spiece.model")
    if not any((path / f).is_file() for f in tokenizer_files):
        raise FileNotFoundError(
            f"model.pretrained={name}: holds no tokenizer (expected one of {', '.join(tokenizer_files)})"
        )


class BiEncoder(nn.Module):
    """Shared-weight dual encoder; `encode` maps padded token ids to unit-length sentence vectors."""

    def __init__(
        self,
        pretrained: str,
        pooling: Pooling = "mean",
        query_prefix: str = "",
        passage_prefix: str = "",
        max_query_length: int = 64,
        max_passage_length: int = 128,
        normalize: bool = True,
        freeze_embeddings: bool = False,
        gradient_checkpointing: bool = False,
        pad_to_multiple_of: int = 1,
    ) -> None:
        super().__init__()
        from transformers import AutoModel, AutoTokenizer

        if pooling not in ("mean", "cls", "pooler"):
            raise ValueError(f"model.pooling={pooling!r}: expected one of mean, cls, pooler")
        check_pretrained(pretrained)
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(pretrained)
            self.model = AutoModel.from_pretrained(pretrained)
        except OSError as err:
            raise OSError(
                f"model.pretrained={pretrained}: could not load it ({err}). Hub names need internet; "
                f"offline, point model.pretrained at a local folder or use model=me5_small_bundled"
            ) from err
        # from_pretrained returns eval mode; training must see dropout as in the original fine-tuning recipes
        self.model.train()
        self.pretrained = pretrained
        self.pooling = pooling
        self.prefixes = {"query": query_prefix, "passage": passage_prefix, "sentence": query_prefix}
        self.max_lengths = {"query": max_query_length, "passage": max_passage_length,
                            "sentence": max(max_query_length, max_passage_length)}
        self.normalize = normalize
        self.pad_to_multiple_of = pad_to_multiple_of
        if freeze_embeddings:
            # The word-embedding matrix is most of a multilingual model's parameters (96M of mE5-small's
            # 118M); freezing it keeps the vocabulary aligned across languages and halves step time.
            for p in self.model.get_input_embeddings().parameters():
                p.requires_grad_(False)
        pooler = getattr(self.model, "pooler", None)
        if pooling != "pooler" and isinstance(pooler, nn.Module):
            # Unused by mean/cls pooling: without a gradient it would make DDP wait for its all-reduce.
            pooler.requires_grad_(False)
        if gradient_checkpointing:
            # Non-reentrant checkpointing also works when the inputs need no grad (frozen embeddings).
            self.model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})

    @property
    def dim(self) -> int:
        """Embedding dimension."""
        return int(self.model.config.hidden_size)

    def tokenize(
        self, texts: Sequence[str], side: Side, contexts: Sequence[str] | None = None
    ) -> dict[str, list[list[int]]]:
        """Token ids without padding; the side picks prefix and max length, contexts form a second segment."""
        prefix = self.prefixes[side]
        first = [prefix + t for t in texts]
        kwargs = {"truncation": "only_second" if contexts is not None else True, "max_length": self.max_lengths[side]}
        if contexts is not None:
            enc = self.tokenizer(first, list(contexts), **kwargs)
        else:
            enc = self.tokenizer(first, **kwargs)
        return {k: v for k, v in enc.items() if k in ("input_ids", "token_type_ids")}

    def pad(self, features: dict[str, list[list[int]]]) -> dict[str, torch.Tensor]:
        """Pad token-id rows to the longest one rounded up to `pad_to_multiple_of`, with an attention mask."""
        ids = features["input_ids"]
        lengths = np.fromiter((len(r) for r in ids), dtype=np.int64, count=len(ids))
        width = round_up(max(int(lengths.max(initial=0)), 1), self.pad_to_multiple_of)
        # One boolean-mask scatter of all rows at once: a per-row tensor copy costs ~5 us a row in Python.
        mask = np.arange(width)[None, :] < lengths[:, None]
        pad_id = self.tokenizer.pad_token_id or 0

        def scatter(rows: list[list[int]], fill: int) -> torch.Tensor:
            out = np.full((len(rows), width), fill, dtype=np.int64)
            out[mask] = np.fromiter(itertools.chain.from_iterable(rows), dtype=np.int64, count=int(lengths.sum()))
            return torch.from_numpy(out)

        out = {"input_ids": scatter(ids, pad_id), "attention_mask": torch.from_numpy(mask.astype(np.int64))}
        if "token_type_ids" in features:
            out["token_type_ids"] = scatter(features["token_type_ids"], 0)
        return out

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, **extra: torch.Tensor) -> torch.Tensor:
        """Sentence embeddings (batch, dim) for padded token ids."""
        out = self.model(input_ids=input_ids, attention_mask=attention_mask, **extra)
        if self.pooling == "mean":
            m = attention_mask.unsqueeze(-1).to(out.last_hidden_state.dtype)
            emb = (out.last_hidden_state * m).sum(1) / m.sum(1).clamp_min(1.0)
        elif self.pooling == "cls":
            emb = out.last_hidden_state[:, 0]
        else:
            emb = out.pooler_output
        emb = emb.float()
        return nn.functional.normalize(emb, dim=-1) if self.normalize else emb

    def embed(self, features: dict[str, torch.Tensor], buckets: LengthBuckets | None = None) -> torch.Tensor:
        """Embeddings of a padded side; with `buckets`, one forward per length group (same result, less padding)."""
        if buckets is None or len(buckets.rows) <= 1:
            return self(**features)
        parts = [self(**{k: v[rows, :width] for k, v in features.items()})
                 for rows, width in zip(buckets.rows, buckets.widths)]
        return torch.cat(parts)[buckets.inverse]

    @torch.inference_mode()
    def encode(
        self,
        texts: Sequence[str],
        side: Side,
        contexts: Sequence[str] | None = None,
        *,
        batch_size: int,
        autocast_dtype: torch.dtype | None = None,
        on_batch: Callable[[int], None] | None = None,
    ) -> np.ndarray:
        """Embed texts: sorted by length, padded per batch, one host copy at the end; rows in input order."""
        device = next(self.parameters()).device
        features = self.tokenize(texts, side, contexts)
        lengths = np.fromiter((len(r) for r in features["input_ids"]), dtype=np.int64, count=len(texts))
        order = np.argsort(-lengths, kind="stable")  # longest first: the peak-memory batch comes first
        out = torch.empty((len(texts), self.dim), dtype=torch.float32, device=device)
        was_training = self.training
        self.eval()
        try:
            for start in range(0, len(order), batch_size):
                idx = order[start : start + batch_size]
                batch = self.pad({k: [v[i] for i in idx] for k, v in features.items()})
                batch = {k: v.to(device, non_blocking=True) for k, v in batch.items()}
                with torch.autocast(device.type, dtype=autocast_dtype, enabled=autocast_dtype is not None):
                    out[torch.as_tensor(idx, device=device)] = self(**batch)
                if on_batch is not None:
                    on_batch(len(idx))
        finally:
            self.train(was_training)
        return out.cpu().numpy()

    def save(self, out_dir: str | Path) -> Path:
        """Write a sentence-transformers folder (also a plain Hugging Face folder) plus xlir's own settings.

        `SentenceTransformer(out)`, `AutoModel.from_pretrained(out)` and `model.pretrained=out` all load it.
        """
        from src.model.st_export import save_sentence_transformer

        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        self.model.save_pretrained(out)
        self.tokenizer.save_pretrained(out)
        save_sentence_transformer(self, out)
        settings = {
            "pooling": self.pooling,
            "query_prefix": self.prefixes["query"],
            "passage_prefix": self.prefixes["passage"],
            "max_query_length": self.max_lengths["query"],
            "max_passage_length": self.max_lengths["passage"],
            "normalize": self.normalize,
        }
        (out / ENCODER_FILE).write_text(json.dumps(settings, indent=2))
        return out


def build_encoder(model: ModelSchema | DictConfig, texts: Sequence[str] | None = None,
                  pretrained: str | None = None) -> BiEncoder:
    """The `model` section's encoder: offline weights prepared first when the section says how.

    A folder exported by xlir carries its pooling/prefix settings (xlir_encoder.json); they win over the
    model config so the exported model is evaluated exactly as it was trained.
    """
    from hydra.utils import instantiate

    if pretrained is None:
        pretrained = model.pretrained
        # A complete model folder is used as it is (e.g. model.pretrained=<exported folder>).
        if model.prepare is not None and not (Path(str(pretrained)) / "config.json").is_file():
            pretrained = instantiate(model.prepare)(texts=texts)
    settings: dict[str, Any] = {}
    exported = Path(str(pretrained)) / ENCODER_FILE
    if exported.is_file():
        settings = json.loads(exported.read_text())
    return instantiate(model.encoder, pretrained=str(pretrained), **settings)


def load_checkpoint_weights(encoder: Any, ckpt_path: str) -> None:
    """Load the encoder weights of a training checkpoint (LightningModule keys `encoder.*`)."""
    path = Path(ckpt_path)
    if not path.is_file():
        raise FileNotFoundError(f"ckpt_path={ckpt_path}: no such checkpoint file")
    state = torch.load(path, map_location="cpu", weights_only=False)["state_dict"]
    weights = {k.removeprefix("encoder."): v for k, v in state.items() if k.startswith("encoder.")}
    missing, unexpected = encoder.load_state_dict(weights, strict=False)
    if unexpected or [m for m in missing if "pooler" not in m]:
        raise ValueError(
            f"ckpt_path={ckpt_path}: does not match model={encoder.pretrained} "
            f"(missing {missing[:3]}, unexpected {unexpected[:3]})"
        )
