"""What a model was trained on: the training set's name, languages and hashes of its content texts.

Saved into every checkpoint (entry `xlir_training_set`) and next to an exported model (`xlir_training_set.json`
+ `.npy`), so `src.evaluate` can run the training run's zero-shot check (src/evaluation/guard.py) without
re-reading training data that may no longer exist.
"""

from __future__ import annotations

import hashlib
import json
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from src.data.lareqa import LareqaDataset
from src.evaluation.guard import OverlapReport, content_hashes, overlap_with, refuse_overlap

KEY = "xlir_training_set"  # the checkpoint entry and the exported files' stem
META_FILE = f"{KEY}.json"
HASHES_FILE = f"{KEY}.npy"
HASH_BYTES = 16  # guard.text_hash digest size


@dataclass(frozen=True)
class TrainingFingerprint:
    """A training set as the zero-shot guard sees it: sorted unique 16-byte hashes of its content texts."""

    name: str
    languages: tuple[str, ...]
    min_chars: int  # guard.is_content threshold the texts were filtered with
    hashes: np.ndarray  # (n, 16) uint8, rows sorted and unique

    @classmethod
    def from_texts(cls, name: str, languages: Sequence[str], texts: Iterable[str], min_chars: int
                   ) -> TrainingFingerprint:
        """Hash the training texts that count as content (the same filter as the training check)."""
        packed = b"".join(sorted(content_hashes(texts, min_chars)))
        return cls(name, tuple(languages), min_chars, np.frombuffer(packed, np.uint8).reshape(-1, HASH_BYTES))

    @property
    def digest(self) -> str:
        """One hex digest of all hashes: equal digests mean the same training texts."""
        return hashlib.blake2b(self.hashes.tobytes(), digest_size=16).hexdigest()

    def metadata(self) -> dict[str, Any]:
        """Everything but the hashes, JSON-ready."""
        return {"name": self.name, "languages": list(self.languages), "min_chars": self.min_chars,
                "texts": len(self.hashes), "digest": self.digest, "hash": "blake2b-128 of guard.normalise(text)"}

    def check(self, eval_sets: Mapping[str, LareqaDataset], allow_overlap: bool, min_chars: int) -> OverlapReport:
        """The training run's zero-shot check against these sets; raises on overlap unless allowed."""
        if min_chars < self.min_chars:
            warnings.warn(f"eval.overlap_min_chars={min_chars} is below the {self.min_chars} that training set "
                          f"{self.name!r} was hashed with: shorter texts cannot be checked", stacklevel=2)
        seen = {row.tobytes() for row in self.hashes}
        # Training texts below self.min_chars were never hashed; a stricter threshold filters the evaluation side.
        report = overlap_with(seen, eval_sets, min_chars if min_chars > self.min_chars else 0)
        return refuse_overlap(report, allow_overlap, f"training set {self.name!r}")

    def to_checkpoint(self) -> dict[str, Any]:
        """The checkpoint entry: metadata plus the hashes as raw bytes."""
        return {**self.metadata(), "hashes": self.hashes.tobytes()}

    @classmethod
    def from_entry(cls, meta: Mapping[str, Any], hashes: np.ndarray, source: str) -> TrainingFingerprint:
        """Rebuild from stored metadata and hashes; a digest mismatch means a damaged or edited record."""
        fp = cls(str(meta["name"]), tuple(meta["languages"]), int(meta["min_chars"]),
                 np.ascontiguousarray(hashes, np.uint8).reshape(-1, HASH_BYTES))
        if fp.digest != meta["digest"]:
            raise ValueError(f"{source}: training-set hashes do not match their digest {meta['digest']}")
        return fp

    def save(self, folder: str | Path) -> Path:
        """Write the JSON metadata and the .npy hashes next to an exported model; returns the JSON path."""
        out = Path(folder)
        out.mkdir(parents=True, exist_ok=True)
        np.save(out / HASHES_FILE, self.hashes, allow_pickle=False)
        (out / META_FILE).write_text(json.dumps({**self.metadata(), "hashes_file": HASHES_FILE}, indent=2))
        return out / META_FILE


def from_checkpoint(ckpt_path: str | Path) -> TrainingFingerprint | None:
    """The fingerprint stored in a Lightning checkpoint, or None (older checkpoints have none)."""
    import torch

    if not Path(ckpt_path).is_file():
        raise FileNotFoundError(f"ckpt_path={ckpt_path}: no such checkpoint file")
    # mmap: only the small entry is read, not the (possibly GB-sized) weights and optimizer state.
    entry = torch.load(ckpt_path, map_location="cpu", weights_only=False, mmap=True).get(KEY)
    if entry is None:
        return None
    return TrainingFingerprint.from_entry(entry, np.frombuffer(entry["hashes"], np.uint8), str(ckpt_path))


def from_folder(folder: str | Path) -> TrainingFingerprint | None:
    """The fingerprint saved next to an exported model, or None (hub and bundled models have none)."""
    meta_file = Path(folder) / META_FILE
    if not meta_file.is_file():
        return None
    meta = json.loads(meta_file.read_text())
    hashes_file = meta_file.parent / meta["hashes_file"]
    if not hashes_file.is_file():
        raise FileNotFoundError(f"{meta_file} names {hashes_file}, which is missing: the model folder is incomplete")
    return TrainingFingerprint.from_entry(meta, np.load(hashes_file, allow_pickle=False), str(meta_file))


def recorded_training_sets(ckpt_path: str | None, pretrained: str) -> list[TrainingFingerprint]:
    """Training sets recorded by the checkpoint and by the model folder it fine-tunes, without duplicates."""
    found = [from_checkpoint(ckpt_path) if ckpt_path else None,
             from_folder(pretrained) if Path(pretrained).is_dir() else None]
    return list({fp.digest: fp for fp in found if fp is not None}.values())

