"""The evaluation kinds: one small protocol, a registry keyed by a set's `kind:` (conf/data/eval/*.yaml).

Like sentence-transformers' evaluators, each kind is a small class with one job: turn one loaded set and an
encoder into per-query results. The grid kinds encode every text of a set once in this process and score a
language grid (GridResult); the corpus kinds search an index over a large corpus (src/evaluation/retrieval.py,
through Lightning's predict loop). Each kind declares the settings it scores, so nothing downstream asks
"which kind is this?":

    kind      settings              data                      scoring
    lareqa    mono, cross, multi    LareqaDataset             src/evaluation/grid.py
    bitext    cross, multi          BitextDataset             src/evaluation/bitext.py
    beir      mono                  corpus + queries + qrels  src/evaluation/retrieval.py
    miracl    mono                  corpus + queries + qrels  src/evaluation/retrieval.py

A new kind is a class with these members and one line in KINDS.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, ClassVar, Protocol

import numpy as np

from src.core import keys
from src.data.bitext import BitextDataset
from src.data.lareqa import LareqaDataset
from src.evaluation.grid import Embeddings, GridResult, encode_dataset, score_grid

# Called with the number of texts just encoded (progress bars).
OnBatch = Callable[[int], None] | None


class EvaluationKind(Protocol):
    """What every evaluation kind declares."""

    name: ClassVar[str]  # the `kind:` value of the sets it evaluates
    settings: ClassVar[tuple[str, ...]]  # the keys.SETTINGS it logs
    grid: ClassVar[bool]  # encoded once in-process and scored as a language grid (else a corpus search)


class GridKind(EvaluationKind, Protocol):
    """A kind whose sets are encoded once and scored as a grid; the same exports and tests follow."""

    dataset_type: ClassVar[type]

    def num_texts(self, dataset: Any) -> int:
        """Texts encode() will encode (the progress total)."""

    def encode(self, dataset: Any, encode: Callable[..., np.ndarray], candidate_text: str) -> Embeddings:
        """Every text of the set encoded once; `encode(texts, side, contexts)` encodes one call's texts."""

    def score(self, dataset: Any, emb: Embeddings) -> GridResult:
        """Per-query metrics of every setting the kind has."""

    def texts(self, dataset: Any) -> Iterator[str]:
        """Every evaluation text (queries and candidates), for the zero-shot guard."""

    def write_trec(self, dataset: Any, emb: Embeddings, out_dir: Path, depth: int) -> list[Path]:
        """TREC run and qrels files of every setting."""

    def write_embeddings(self, dataset: Any, emb: Embeddings, out_dir: Path) -> list[Path]:
        """The embeddings with the records they belong to (opt-in: eval.save_embeddings)."""


class LareqaGrid:
    """Question -> answer sentence over the language grid (LAReQA: XQuAD-R, MLQA-R; NTREX-128 headlines)."""

    name: ClassVar[str] = "lareqa"
    settings: ClassVar[tuple[str, ...]] = keys.SETTINGS
    grid: ClassVar[bool] = True
    dataset_type: ClassVar[type] = LareqaDataset

    def num_texts(self, dataset: LareqaDataset) -> int:
        return dataset.num_questions + dataset.num_candidates

    def encode(self, dataset: LareqaDataset, encode: Callable[..., np.ndarray], candidate_text: str) -> Embeddings:
        return encode_dataset(dataset, encode, candidate_text)

    def score(self, dataset: LareqaDataset, emb: Embeddings) -> GridResult:
        return score_grid(dataset, emb)

    def texts(self, dataset: LareqaDataset) -> Iterator[str]:
        for split in dataset.by_lang.values():
            yield from (q.text for q in split.questions)
            yield from (c.sentence for c in split.candidates)

    def write_trec(self, dataset: LareqaDataset, emb: Embeddings, out_dir: Path, depth: int) -> list[Path]:
        from src.evaluation.artifacts.trec import write_trec

        return write_trec(dataset, emb, out_dir, depth=depth)

    def write_embeddings(self, dataset: LareqaDataset, emb: Embeddings, out_dir: Path) -> list[Path]:
        from src.evaluation.artifacts.embeddings import save_embeddings

        return save_embeddings(dataset, emb, out_dir)


class Bitext:
    """Sentence -> its translations (SIB-200, TICO-19, NTREX-128 lines, Tatoeba): cross and, N-way, multi."""

    name: ClassVar[str] = "bitext"
    settings: ClassVar[tuple[str, ...]] = (keys.CROSS, keys.MULTI)
    grid: ClassVar[bool] = True
    dataset_type: ClassVar[type] = BitextDataset
    # Both sides of a symmetric task are one kind of text: the encoder's `sentence` side (the query prefix, as
    # E5 prescribes for symmetric tasks, and the passage length limit).
    side: ClassVar[str] = "sentence"

    def num_texts(self, dataset: BitextDataset) -> int:
        return len({t.texts[x][i] for x in dataset.languages for t, i in dataset.rows(x)})

    def encode(self, dataset: BitextDataset, encode: Callable[..., np.ndarray], candidate_text: str) -> Embeddings:
        from src.evaluation.bitext import encode_bitext

        return encode_bitext(dataset, lambda texts, side: encode(texts, side, None), self.side)

    def score(self, dataset: BitextDataset, emb: Embeddings) -> GridResult:
        from src.evaluation.bitext import score_bitext

        return score_bitext(dataset, emb)

    def texts(self, dataset: BitextDataset) -> Iterator[str]:
        for t in dataset.tables:
            for rows in t.texts.values():
                yield from rows

    def write_trec(self, dataset: BitextDataset, emb: Embeddings, out_dir: Path, depth: int) -> list[Path]:
        from src.evaluation.artifacts.trec import write_bitext_trec

        return write_bitext_trec(dataset, emb, out_dir, depth=depth)

    def write_embeddings(self, dataset: BitextDataset, emb: Embeddings, out_dir: Path) -> list[Path]:
        from src.evaluation.artifacts.embeddings import save_bitext_embeddings

        return save_bitext_embeddings(dataset, emb, out_dir)


class Corpus:
    """Queries against one large corpus per language through an index (BEIR, MIRACL): monolingual only."""

    settings: ClassVar[tuple[str, ...]] = (keys.MONO,)
    grid: ClassVar[bool] = False

    def __init__(self, name: str) -> None:
        self.name = name  # type: ignore[misc]  # one class serves both corpus layouts


KINDS: dict[str, EvaluationKind] = {k.name: k for k in (LareqaGrid(), Bitext(), Corpus("beir"), Corpus("miracl"))}
GRID_KINDS: tuple[GridKind, ...] = tuple(k for k in KINDS.values() if k.grid)  # type: ignore[misc]


def get_kind(kind: str) -> EvaluationKind:
    """The registered kind of a `kind:` value; ValueError naming the registered ones."""
    if kind not in KINDS:
        raise ValueError(f"evaluation kind {kind!r} is not registered (one of {', '.join(KINDS)})")
    return KINDS[kind]


def kind_of(dataset: Any) -> GridKind:
    """The grid kind that evaluates a loaded set (by its type); TypeError for anything else."""
    for kind in GRID_KINDS:
        if isinstance(dataset, kind.dataset_type):
            return kind
    raise TypeError(f"no evaluation kind scores a {type(dataset).__name__} "
                    f"(grid kinds: {', '.join(k.name for k in GRID_KINDS)})")


def set_fingerprint(dataset: Any, settings: Sequence[str] = ()) -> str:
    """16 hex digits of SHA-256 over a grid set's kind, languages, every text in encoding order and `settings`.

    The same files read with the same config give the same value on any machine (no paths in it); `settings`
    adds what else changes the numbers (debias methods, candidate text), so a different evaluation of the same
    texts is not mistaken for this one.
    """
    import hashlib

    kind = kind_of(dataset)
    h = hashlib.sha256(f"{kind.name}\0{','.join(dataset.languages)}\0{chr(0).join(settings)}".encode())
    for text in kind.texts(dataset):
        h.update(text.encode())
        h.update(b"\0")
    return h.hexdigest()[:16]


def grid_kind_names() -> tuple[str, ...]:
    """The `kind:` values whose sets a training run can evaluate (encoded in-process)."""
    return tuple(k.name for k in GRID_KINDS)


def corpus_kind_names() -> tuple[str, ...]:
    """The `kind:` values searched through an index (src.evaluate only)."""
    return tuple(name for name, k in KINDS.items() if not k.grid)


def settings_of(kind: str) -> Sequence[str]:
    """The settings a `kind:` value logs."""
    return get_kind(kind).settings
