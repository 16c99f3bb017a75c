"""Zero-shot guard: no evaluation question or candidate text may appear in the training data."""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from src.data.lareqa import LareqaDataset

_SPACE = re.compile(r"\s+")


class ZeroShotOverlapError(ValueError):
    """Evaluation texts were found in the training data."""


def normalise(text: str) -> str:
    """NFKC, case-folded, whitespace collapsed: what counts as 'the same text'."""
    return _SPACE.sub(" ", unicodedata.normalize("NFKC", text).casefold()).strip()


def text_hash(text: str) -> bytes:
    """16-byte digest of the normalised text (keeps memory flat for large corpora)."""
    return hashlib.blake2b(normalise(text).encode(), digest_size=16).digest()


@dataclass
class OverlapReport:
    """How many evaluation texts also occur in training, per evaluation set, with examples."""

    counts: dict[str, int] = field(default_factory=dict)
    examples: dict[str, list[str]] = field(default_factory=dict)

    @property
    def total(self) -> int:
        """Overlapping texts over all evaluation sets."""
        return sum(self.counts.values())

    def describe(self, limit: int = 5) -> str:
        """One line per evaluation set with a few examples."""
        return "; ".join(
            f"{name}: {n} texts, e.g. {self.examples[name][:limit]}" for name, n in self.counts.items() if n
        )


def is_content(text: str, min_chars: int) -> bool:
    """Whether a text is long enough to count as leakage (boilerplate such as '[citation needed]' is not)."""
    return sum(c.isalnum() for c in text) >= min_chars


def find_overlap(
    train_texts: Iterable[str], eval_sets: Mapping[str, LareqaDataset], min_chars: int = 10, keep: int = 5
) -> OverlapReport:
    """Evaluation questions and candidates (>= min_chars letters/digits) whose text occurs in training."""
    seen = {text_hash(t) for t in train_texts if is_content(t, min_chars)}
    report = OverlapReport()
    for name, ds in eval_sets.items():
        hits: list[str] = []
        count = 0
        for split in ds.by_lang.values():
            for text in [q.text for q in split.questions] + [c.sentence for c in split.candidates]:
                if text_hash(text) in seen:
                    count += 1
                    if len(hits) < keep:
                        hits.append(text)
        report.counts[name], report.examples[name] = count, hits
    return report


def check_zero_shot(
    train_texts: Iterable[str],
    eval_sets: Mapping[str, LareqaDataset],
    allow_overlap: bool = False,
    min_chars: int = 10,
) -> OverlapReport:
    """Raise with the count and examples on overlap unless `eval.allow_overlap` is set."""
    report = find_overlap(train_texts, eval_sets, min_chars)
    if report.total and not allow_overlap:
        raise ZeroShotOverlapError(
            f"zero-shot check failed: {report.total} evaluation texts also occur in the training data "
            f"({report.describe()}); set eval.allow_overlap=true to evaluate anyway"
        )
    return report
