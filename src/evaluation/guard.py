"""Zero-shot guard: no evaluation question or candidate text may appear in the training data."""

from __future__ import annotations

import hashlib
from collections.abc import Container, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from src.data.text import normalise  # one normalisation, shared with the false-negative mask
from src.evaluation.kinds import kind_of


class ZeroShotOverlapError(ValueError):
    """Evaluation texts were found in the training data."""


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
            f"evaluation set {name!r}: {n} texts, e.g. {self.examples[name][:limit]}"
            for name, n in self.counts.items() if n
        )


def is_content(text: str, min_chars: int) -> bool:
    """Whether a text is long enough to count as leakage (boilerplate such as '[citation needed]' is not)."""
    return sum(c.isalnum() for c in text) >= min_chars


def content_hashes(texts: Iterable[str], min_chars: int) -> set[bytes]:
    """Hashes of the texts long enough to count as leakage: what a training set is checked by."""
    return {text_hash(t) for t in texts if is_content(t, min_chars)}


def overlap_with(
    seen: Container[bytes], eval_sets: Mapping[str, Any], min_chars: int = 0, keep: int = 5
) -> OverlapReport:
    """Evaluation questions and candidates (>= min_chars letters/digits) whose hash is in `seen`."""
    report = OverlapReport()
    for name, ds in eval_sets.items():
        hits: list[str] = []
        count = 0
        for text in kind_of(ds).texts(ds):  # every query and candidate text, whatever the kind
            if text_hash(text) in seen and is_content(text, min_chars):
                count += 1
                if len(hits) < keep:
                    hits.append(text)
        report.counts[name], report.examples[name] = count, hits
    return report


def find_overlap(
    train_texts: Iterable[str], eval_sets: Mapping[str, Any], min_chars: int = 10, keep: int = 5
) -> OverlapReport:
    """Evaluation questions and candidates whose text occurs in training (training texts >= min_chars)."""
    return overlap_with(content_hashes(train_texts, min_chars), eval_sets, keep=keep)


def refuse_overlap(report: OverlapReport, allow_overlap: bool, source: str = "the training data") -> OverlapReport:
    """Raise with the count, the training source and examples per evaluation set unless overlap is allowed."""
    if report.total and not allow_overlap:
        raise ZeroShotOverlapError(
            f"zero-shot check failed: {report.total} evaluation texts also occur in {source} "
            f"({report.describe()}); set eval.allow_overlap=true to evaluate anyway"
        )
    return report


def check_zero_shot(
    train_texts: Iterable[str],
    eval_sets: Mapping[str, Any],
    allow_overlap: bool = False,
    min_chars: int = 10,
) -> OverlapReport:
    """Raise with the count and examples on overlap unless `eval.allow_overlap` is set."""
    return refuse_overlap(find_overlap(train_texts, eval_sets, min_chars), allow_overlap)


def zero_shot_tag(overlapping: int | None) -> str:
    """The `zero_shot_check` MLflow tag; None when the model records no training set to check against."""
    if overlapping is None:
        return "not checked: no training-set metadata"
    return f"{'overlap allowed' if overlapping else 'passed'}: {overlapping} overlapping texts"


def zero_shot_tags(trained_on: list[Any], ev: Any, eval_sets: dict[str, Any], corpus_sets: dict[str, Any]
                   ) -> dict[str, str]:
    """Run training's zero-shot check against the training sets a model records; raises on overlap.

    Returns the `zero_shot_check` tag (and `trained_on` when known) in the wording training uses.
    """
    if not trained_on:
        return {"zero_shot_check": zero_shot_tag(None)}
    overlapping = sum(fp.check(eval_sets, ev.allow_overlap, ev.overlap_min_chars).total for fp in trained_on)
    # The guard reads LAReQA questions and sentences; corpus kinds (BEIR, MIRACL) are not hashed.
    unchecked = f" (corpus sets not checked: {', '.join(corpus_sets)})" if corpus_sets else ""
    return {"zero_shot_check": zero_shot_tag(overlapping) + unchecked,
            "trained_on": ",".join(f"{fp.name}:{fp.digest[:12]}" for fp in trained_on)}
