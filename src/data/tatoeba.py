"""Tatoeba (LASER's test set: everyday sentences, X <-> English) as translation retrieval.

Files as published (facebookresearch/LASER, data/tatoeba/v1): `tatoeba.{code}-eng.{code}` and
`tatoeba.{code}-eng.eng`, line-aligned (1,000 pairs per language, Thai 548). The English side differs per
language, so each language is its own two-language table: X -> en and en -> X, no pooled setting. The published
lines end in "\n" and none has leading/trailing whitespace or a "\r", so only the line break is removed
(`read_lines`); any other whitespace would be kept as released.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from src.data.bitext import AlignedTable, BitextDataset, publisher_codes, read_lines, require_folder
from src.data.lareqa import DataFormatError

CODES = {"ar": "ara", "zh": "cmn", "de": "deu", "el": "ell", "hi": "hin", "ru": "rus", "es": "spa", "th": "tha",
         "tr": "tur", "vi": "vie", "en": "eng"}


def load_tatoeba(path: str | Path, languages: Sequence[str], name: str) -> BitextDataset:
    """One (X, en) table per listed non-English language, row ids `{code}.{line index}`."""
    root = require_folder(Path(path), "tatoeba")
    codes = publisher_codes(languages, CODES, f"Tatoeba ({root})")
    if "en" not in codes or len(codes) < 2:
        raise DataFormatError(f"Tatoeba: languages must include en and at least one other, got {list(languages)}")
    folder = root / "data" / "tatoeba" / "v1"
    available = sorted(p.name.split(".")[1].split("-")[0] for p in folder.glob("tatoeba.*-eng.eng"))
    tables = []
    for x, code in codes.items():
        if x == "en":
            continue
        files = folder / f"tatoeba.{code}-eng.{code}", folder / f"tatoeba.{code}-eng.eng"
        sides = [read_lines(f, available) for f in files]
        if len(sides[0]) != len(sides[1]):
            raise DataFormatError(f"{files[0]} has {len(sides[0])} lines, {files[1]} {len(sides[1])}: "
                                  f"a pair's two files must be line-aligned")
        ids = tuple(f"{code}.{i}" for i in range(len(sides[0])))
        tables.append(AlignedTable(f"{code}-eng", ids, {x: tuple(sides[0]), "en": tuple(sides[1])}))
    return BitextDataset(name, tables, multi=False)
