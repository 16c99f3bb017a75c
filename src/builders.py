"""Builders shared by the entry points: config -> datasets, encoder, MLflow tags."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from src.data.lareqa import LareqaDataset, load_lareqa
from src.data.pairs import PairTable, build_pairs
from src.model.encoder import ENCODER_FILE, BiEncoder

REPO = Path(__file__).resolve().parent.parent


def load_training_pairs(cfg: DictConfig, seed: int) -> PairTable:
    """Training pairs from `data.train`: a LAReQA set (every language pair per question id) or a hub set."""
    t = cfg.data.train
    if t.kind == "hub":
        from src.data.hub import build_parallel_pairs

        return build_parallel_pairs(t.path, list(t.languages), dict(t.subsets), t.split, t.max_rows,
                                    dict(t.columns) if t.hard_negatives else {**t.columns, "negative": None})
    train_set = load_lareqa(t.path, list(t.languages), t.name)
    return build_pairs(train_set, t.candidate_text, t.hard_negatives, seed)


def load_eval_sets(cfg: DictConfig) -> dict[str, LareqaDataset]:
    """Every LAReQA evaluation set under `data.eval`, validated (corpus kinds load through src.evaluation.retrieval)."""
    return {name: load_lareqa(d.path, list(d.languages), name) for name, d in cfg.data.eval.items()
            if d.kind == "lareqa"}


def build_encoder(cfg: DictConfig, texts: Sequence[str] | None = None, pretrained: str | None = None) -> BiEncoder:
    """Prepare offline weights when the model config says how, then instantiate the encoder.

    A folder exported by xlir carries its pooling/prefix settings (xlir_encoder.json); they win over the
    model config so the exported model is evaluated exactly as it was trained.
    """
    from hydra.utils import instantiate

    if pretrained is None:
        pretrained = cfg.model.pretrained
        # A complete model folder is used as it is (e.g. model.pretrained=<exported folder>).
        if cfg.model.prepare is not None and not (Path(str(pretrained)) / "config.json").is_file():
            pretrained = instantiate(cfg.model.prepare)(texts=texts)
    settings: dict[str, Any] = {}
    exported = Path(str(pretrained)) / ENCODER_FILE
    if exported.is_file():
        settings = json.loads(exported.read_text())
    return instantiate(cfg.model.encoder, pretrained=str(pretrained), **settings)


def tags(cfg: DictConfig, task: str) -> dict[str, str]:
    """Searchable MLflow tags: task, model, sampling, data sets and the code's commit."""
    from src.tracking.mlflow import git_commit

    out = {
        "task": task,
        "model": cfg.model.name,
        "eval_data": ",".join(cfg.data.eval.keys()),
        "seed": str(cfg.seed),
        "git_commit": git_commit(REPO),
    }
    if task == "train":
        out.update(sampling=cfg.sampling.name, alpha=str(cfg.sampling.alpha), train_data=cfg.data.train.name)
    return out
