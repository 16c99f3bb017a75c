"""Builders shared by the entry points: config -> datasets, encoder, MLflow tags."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from src.config import ConfigError
from src.data.datamodule import VAL_SEED
from src.data.lareqa import LareqaDataset, load_lareqa
from src.data.pairs import PairTable, build_pairs
from src.data.validation import retrieval_subset, split_by_question
from src.model.encoder import ENCODER_FILE, BiEncoder

REPO = Path(__file__).resolve().parent.parent


@dataclass
class TrainingData:
    """Training pairs, and the validation split's pairs (loss) and retrieval set (mAP) when there is one."""

    pairs: PairTable
    val_pairs: PairTable | None = None
    val_set: LareqaDataset | None = None

    def texts(self) -> list[str]:
        """Every text the run learns from or selects on (the zero-shot check's training side)."""
        tables = [self.pairs] + ([self.val_pairs] if self.val_pairs else [])
        return [t for table in tables for t in table.queries + table.passages]


def load_training_data(cfg: DictConfig, seed: int) -> TrainingData:
    """`data.train`: a LAReQA set (every language pair per question id, minus the validation ids) or a hub set."""
    t = cfg.data.train
    if t.kind == "hub":
        from src.data.hub import build_parallel_pairs

        return TrainingData(build_parallel_pairs(
            t.path, list(t.languages), dict(t.subsets), t.split, t.max_rows,
            dict(t.columns) if t.hard_negatives else {**t.columns, "negative": None}))
    full = load_lareqa(t.path, list(t.languages), t.name)
    if not t.val_fraction:
        return TrainingData(build_pairs(full, t.candidate_text, t.hard_negatives, seed))
    train_set, val_set = split_by_question(full, t.val_fraction)
    if val_set.num_questions == 0:
        raise ConfigError(f"data.train.val_fraction={t.val_fraction}: holds out no question of {t.name} "
                          f"({full.num_questions} questions); raise it, or 0 for no validation split")
    # Validation pairs draw their hard negatives with a fixed seed: the same validation loss for every run.
    return TrainingData(build_pairs(train_set, t.candidate_text, t.hard_negatives, seed),
                        build_pairs(val_set, t.candidate_text, t.hard_negatives, VAL_SEED),
                        retrieval_subset(val_set))


def load_training_pairs(cfg: DictConfig, seed: int) -> PairTable:
    """The training pairs of `data.train` (validation question ids left out)."""
    return load_training_data(cfg, seed).pairs


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
