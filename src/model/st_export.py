"""A BiEncoder as a sentence-transformers model: the same pooling, normalisation, prompts and lengths."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from torch import nn

if TYPE_CHECKING:
    from src.model.encoder import BiEncoder

# Prompt names written to config_sentence_transformers.json. "document" repeats the passage prompt because
# `encode_document` and MTEB look it up before "passage" (and an absent one would default to "").
PROMPT_NAMES = {"query": "query", "passage": "passage", "document": "passage"}


def pooler_dense(model: nn.Module) -> nn.Linear:
    """The dense layer of a BERT-style pooler (`pooler.dense`), which LaBSE-style models embed with."""
    dense = getattr(getattr(model, "pooler", None), "dense", None)
    if not isinstance(dense, nn.Linear):
        raise TypeError(f"pooling=pooler needs a model with a pooler.dense layer; {type(model).__name__} has none")
    return dense


def sentence_transformer(encoder: BiEncoder, folder: str | Path) -> Any:
    """A SentenceTransformer over the Hugging Face folder `encoder.save` wrote, equal to the encoder.

    mean/cls pool the last hidden state; pooler is CLS + Dense(tanh) with the pooler's weights, the layout of
    sentence-transformers' own LaBSE. Queries and passages keep their own max lengths (query_length /
    document_length, applied by `encode_query` / `encode_document`); `max_seq_length` is the longer one.
    """
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # everything is local; never look a folder up on the hub
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Dense, Normalize, Pooling, Transformer

    lengths = encoder.max_lengths
    transformer = Transformer(str(folder), max_seq_length=max(lengths.values()),
                              query_length=lengths["query"], document_length=lengths["passage"])
    dim = transformer.get_embedding_dimension()
    modules: list[nn.Module] = [transformer, Pooling(dim, "mean" if encoder.pooling == "mean" else "cls")]
    if encoder.pooling == "pooler":
        dense = pooler_dense(encoder.model)
        modules.append(Dense(dim, dense.out_features, activation_function=nn.Tanh(),
                             init_weight=dense.weight.detach().clone(), init_bias=dense.bias.detach().clone()))
    if encoder.normalize:
        modules.append(Normalize())
    prompts = {name: encoder.prefixes[side] for name, side in PROMPT_NAMES.items()}
    return SentenceTransformer(modules=modules, device="cpu", prompts=prompts, similarity_fn_name="cosine")


def save_sentence_transformer(encoder: BiEncoder, folder: str | Path) -> Path:
    """Turn a Hugging Face folder written by `encoder.save` into a complete sentence-transformers folder."""
    sentence_transformer(encoder, folder).save(str(folder), create_model_card=False)
    return Path(folder)
