"""Steps every recipe shares: start from a validated config, score grid sets with the `eval` settings, export them."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from src.core.config import ConfigSchema, EvalSchema, validate


def validated(cfg: DictConfig) -> ConfigSchema:
    """The typed, checked config (a bad key fails here, naming it), with the console set up as it asks."""
    from src.runtime.console import apply_console

    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")  # before a tokenizer loads (DataLoader forks)
    settings = validate(cfg)
    apply_console(settings.console)
    return settings


def evaluate_grid(encoder: Any, sets: Mapping[str, Any], ev: EvalSchema, precision: str) -> tuple[dict, dict, dict]:
    """(metrics, results, embeddings) of grid-kind sets and each `eval.debias` variant, as `eval` configures."""
    from src.core.specs import debias_methods
    from src.evaluation.driver import evaluate_sets

    return evaluate_sets(encoder, sets, ev.batch_size, ev.candidate_text, precision,
                         debias=debias_methods(ev.debias), debias_k=ev.debias_k)


def export_grid(sets: Mapping[str, Any], results: dict, embeddings: dict, folder: Path, ev: EvalSchema
                ) -> dict[str, Path]:
    """Grid CSVs, heatmaps, TREC runs, per-query files (and embeddings) of each set under `folder`/{set}."""
    from src.evaluation.artifacts import export_sets

    return export_sets(sets, results, embeddings, folder, trec_depth=ev.trec_depth, save_embeddings=ev.save_embeddings)
