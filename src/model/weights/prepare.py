"""Builders that create model weights offline before training; each returns the folder to load."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any


def prepare_bundled(out_dir: str | Path, texts: Sequence[str] | None = None) -> str:
    """Convert the packaged multilingual-e5-small once into `out_dir` (texts are not needed)."""
    from src.model.weights.bundled import build_bundled_model

    return str(build_bundled_model(Path(out_dir)))


def prepare_tiny(out_dir: str | Path, texts: Sequence[str] | None = None, **tiny_kwargs: Any) -> str:
    """Build the tiny test BERT for these training texts, in a subfolder keyed by texts and settings."""
    from src.model.weights.tiny import build_tiny_model

    if not texts:
        raise ValueError(
            "model=tiny needs the training texts to train its WordPiece vocabulary (data.train); "
            "to evaluate a trained tiny model use model.pretrained=<its exported model folder>"
        )
    digest = hashlib.sha256(repr(sorted(tiny_kwargs.items())).encode())
    for t in texts:
        digest.update(t.encode())
        digest.update(b"\0")
    target = Path(out_dir) / digest.hexdigest()[:16]
    if (target / "config.json").is_file():
        return str(target)
    return str(build_tiny_model(texts, target, **tiny_kwargs))
