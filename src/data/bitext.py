"""Translation-retrieval sets: sentences aligned across languages (row i of every language is one sentence).

A set is one or more aligned tables. N-way sets (SIB-200, TICO-19, NTREX-128 lines) are one table over all
their languages; Tatoeba is one table per language pair, because its English side differs per language.
Row ids are unique within a set: they name a query in per-query files and are the randomisation unit of the
paired tests (all translations of a sentence move together).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from src.data.lareqa import DataFormatError


@dataclass(frozen=True)
class AlignedTable:
    """Sentences aligned across languages: `texts[x][i]` and `texts[y][i]` are translations, both row `ids[i]`."""

    name: str
    ids: tuple[str, ...]
    texts: Mapping[str, tuple[str, ...]]
    # One label per row (SIB-200's topic, TICO-19's origin) for per-label breakdowns; None when the set has none.
    labels: tuple[str, ...] | None = None
    # The randomisation unit of each row for paired tests where rows are not independent (NTREX lines: their
    # document); None = each row (a sentence and its translations) is its own unit.
    units: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        if len(set(self.ids)) != len(self.ids):
            dup = next(i for i in self.ids if self.ids.count(i) > 1)
            raise DataFormatError(f"{self.name}: row id {dup!r} appears twice")
        for lang, rows in self.texts.items():
            if len(rows) != len(self.ids):
                raise DataFormatError(f"{self.name}: language {lang} has {len(rows)} rows, expected {len(self.ids)}")
        for what, values in (("labels", self.labels), ("units", self.units)):
            if values is not None and len(values) != len(self.ids):
                raise DataFormatError(f"{self.name}: {len(values)} {what} for {len(self.ids)} rows")

    @property
    def languages(self) -> tuple[str, ...]:
        """The table's languages, in load order."""
        return tuple(self.texts)


@dataclass
class BitextDataset:
    """A translation-retrieval set: its aligned tables and whether the pooled (multi) setting is defined."""

    name: str
    tables: list[AlignedTable]
    # The pooled setting needs one table over every language (N-way); Tatoeba's per-pair tables have none.
    multi: bool = True
    label_name: str | None = None  # what `AlignedTable.labels` are ("topic", "origin")
    notes: list[str] = field(default_factory=list)  # load-time facts worth logging (e.g. English variants kept)

    def __post_init__(self) -> None:
        if not self.tables:
            raise DataFormatError(f"{self.name}: no aligned table")
        if self.multi and len(self.tables) != 1:
            raise DataFormatError(f"{self.name}: the pooled setting needs one N-way table, got {len(self.tables)}")
        ids = [i for t in self.tables for i in t.ids]
        if len(set(ids)) != len(ids):
            raise DataFormatError(f"{self.name}: row ids repeat across tables")

    @property
    def languages(self) -> tuple[str, ...]:
        """Every language of the set, in first-seen order."""
        return tuple(dict.fromkeys(x for t in self.tables for x in t.languages))

    @property
    def pairs(self) -> tuple[tuple[str, str], ...]:
        """The scored (query language, candidate language) pairs: every ordered pair inside one table."""
        return tuple((x, y) for t in self.tables for x in t.languages for y in t.languages if x != y)

    def rows(self, lang: str) -> list[tuple[AlignedTable, int]]:
        """(table, row) of every sentence of `lang`, tables in order: the query order of that language."""
        return [(t, i) for t in self.tables if lang in t.texts for i in range(len(t.ids))]

    def query_ids(self, lang: str) -> list[str]:
        """`{lang}:{row id}` of every sentence of `lang`, in query order (the per-query files' qids)."""
        return [f"{lang}:{t.ids[i]}" for t, i in self.rows(lang)]

    def labels(self, lang: str) -> list[str] | None:
        """The row labels of `lang`'s sentences in query order, or None when the set has none."""
        if self.label_name is None:
            return None
        return [t.labels[i] if t.labels is not None else "" for t, i in self.rows(lang)]

    def clusters(self, lang: str) -> list[str] | None:
        """The randomisation unit of `lang`'s sentences in query order; None when every row is its own."""
        if all(t.units is None for t in self.tables):
            return None
        return [t.units[i] if t.units is not None else t.ids[i] for t, i in self.rows(lang)]

    @property
    def num_sentences(self) -> int:
        """Sentences over all languages and tables."""
        return sum(len(t.ids) * len(t.texts) for t in self.tables)


def check_texts(texts: Sequence[str], where: str) -> None:
    """Every text non-empty after stripping, else a DataFormatError naming `where` and the 1-based line."""
    for n, text in enumerate(texts, 1):
        if not text.strip():
            raise DataFormatError(f"{where}: line {n} is empty (expected a sentence on every line)")


def require_folder(root: Path, set_folder: str) -> Path:
    """The set's folder, or FileNotFoundError saying how to get it."""
    if not root.is_dir():
        raise FileNotFoundError(
            f"data folder {root} does not exist; run `make data` (links ../shared/data/{set_folder} or downloads "
            f"the pinned upstream files) or set XLIR_DATA_DIR / paths.data_dir")
    return root


def publisher_codes(languages: Sequence[str], codes: Mapping[str, str], set_name: str) -> dict[str, str]:
    """ISO 639-1 -> the publisher's code for every language, or an error naming the unknown ones."""
    unknown = [x for x in languages if x not in codes]
    if unknown:
        raise DataFormatError(f"{set_name}: no language {', '.join(unknown)} (this set has {', '.join(codes)})")
    if len(set(languages)) != len(languages) or not languages:
        raise DataFormatError(f"{set_name}: languages must be a non-empty list without repeats, got {list(languages)}")
    return {x: codes[x] for x in languages}


def read_lines(path: Path, available: Sequence[str] = ()) -> list[str]:
    """A one-sentence-per-line UTF-8 file: lines without their line break, none empty (errors name file and line)."""
    if not path.is_file():
        have = f" (languages with files here: {', '.join(available)})" if available else ""
        raise FileNotFoundError(f"missing file {path}{have}")
    try:
        # Bytes, not read_text: text mode's universal newlines would also split a line at a lone "\r".
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as err:
        raise DataFormatError(f"{path}: not UTF-8 ({err})") from err
    # Only the line break goes ("\n", or "\r\n": NTREX's files are CRLF); other whitespace is kept as released.
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    lines = [ln.removesuffix("\r") for ln in lines]
    check_texts(lines, str(path))
    return lines


def id_difference(expected: Iterable[Any], got: Iterable[Any], few: int = 5) -> str | None:
    """'missing [...], extra [...]' (a few of each, sorted) when two id collections differ, else None."""
    missing, extra = sorted(set(expected) - set(got)), sorted(set(got) - set(expected))
    if not missing and not extra:
        return None
    return f"{len(missing)} missing {missing[:few]}, {len(extra)} extra {extra[:few]}"
