"""SIB-200 (FLORES-200 sentences from web articles, a topic label each) as translation retrieval.

Files as published (dadelani/sib-200): `data/annotated/{code}/{train,dev,test}.tsv` with the header
`index_id  category  text`, tab-separated with CSV quoting: a text that holds a `"` is quoted and its quotes
doubled (417 texts over the 11 languages). The csv module's excel-tab dialect reads them back exactly; a plain
split on tabs would keep the quoting. Four texts start with a space: kept as released. The topic-classification
split does not matter for retrieval: the three files together are the 1,004 sentences, N-way via `index_id`
(the FLORES sentence index, the same in every language).
"""

from __future__ import annotations

import csv
import re
from collections.abc import Sequence
from pathlib import Path

from src.data.bitext import AlignedTable, BitextDataset, id_difference, publisher_codes, require_folder
from src.data.lareqa import DataFormatError

CODES = {"ar": "arb_Arab", "de": "deu_Latn", "el": "ell_Grek", "en": "eng_Latn", "es": "spa_Latn", "hi": "hin_Deva",
         "ru": "rus_Cyrl", "th": "tha_Thai", "tr": "tur_Latn", "vi": "vie_Latn", "zh": "zho_Hans"}
SPLITS = ("train", "dev", "test")
COLUMNS = ["index_id", "category", "text"]


def read_split(path: Path) -> list[tuple[int, int, str, str]]:
    """(line, index_id, category, text) rows of one TSV file, validated (errors name the file and line)."""
    if not path.is_file():
        raise FileNotFoundError(f"missing file {path} (SIB-200 keeps every language's {', '.join(SPLITS)}.tsv)")
    out = []
    with path.open(encoding="utf-8", newline="") as f:
        # strict: a stray quote inside a quoted text is an error, not a silently different text.
        reader = csv.reader(f, dialect="excel-tab", strict=True)
        try:
            header = next(reader, None)
            if header != COLUMNS:
                raise DataFormatError(f"{path}: line 1 is {header or 'missing'}, expected the header "
                                      f"{' '.join(COLUMNS)} (tab-separated)")
            n = reader.line_num + 1
            for row in reader:
                out.append((n, *_parse_row(row, path, n)))
                n = reader.line_num + 1
        except csv.Error as err:
            raise DataFormatError(f"{path}: line {reader.line_num}: bad TSV quoting ({err})") from err
    return out


def _parse_row(row: list[str], path: Path, n: int) -> tuple[int, str, str]:
    """(index_id, category, text) of the row that starts on line `n`, or an error naming file and line."""
    if len(row) != 3:
        raise DataFormatError(f"{path}: line {n} has {len(row)} columns, expected 3 ({' '.join(COLUMNS)})")
    index_id, category, text = row
    if not re.fullmatch(r"[0-9]+", index_id):
        raise DataFormatError(f"{path}: line {n} has index_id {index_id!r}, expected a FLORES sentence index")
    if not text.strip() or not category.strip():
        raise DataFormatError(f"{path}: line {n} (index_id {index_id}) has an empty "
                              f"{'text' if not text.strip() else 'category'}")
    # No published text holds a line break: one here is an unclosed quote that swallowed the next lines.
    if "\n" in text or "\r" in text:
        raise DataFormatError(f"{path}: line {n} (index_id {index_id}): the quoted text runs over several lines "
                              f"(an unclosed quote?)")
    return int(index_id), category, text


def read_language(root: Path, code: str) -> dict[int, tuple[str, str]]:
    """index_id -> (category, text) over the three splits of one language; a repeated id is an error."""
    folder = root / "data" / "annotated" / code
    if not folder.is_dir():
        have = sorted(p.name for p in (root / "data" / "annotated").glob("*_*"))
        raise FileNotFoundError(f"missing folder {folder} (languages here: {', '.join(have) or 'none'})")
    rows: dict[int, tuple[str, str]] = {}
    first_seen: dict[int, str] = {}
    for split in SPLITS:
        path = folder / f"{split}.tsv"
        for n, index_id, category, text in read_split(path):
            if index_id in rows:
                raise DataFormatError(f"{path}: line {n}: index_id {index_id} appears twice in {code} "
                                      f"(first at {first_seen[index_id]})")
            rows[index_id] = (category, text)
            first_seen[index_id] = f"{split}.tsv line {n}"
    return rows


def load_sib200(path: str | Path, languages: Sequence[str], name: str) -> BitextDataset:
    """One N-way table over the listed languages, rows in index_id order, the topic as each row's label."""
    root = require_folder(Path(path), "sib200")
    codes = publisher_codes(languages, CODES, f"SIB-200 ({root})")
    by_lang = {lang: read_language(root, code) for lang, code in codes.items()}
    first = next(iter(by_lang))
    ids = sorted(by_lang[first])
    for lang, rows in by_lang.items():
        diff = id_difference(ids, rows)
        if diff:
            raise DataFormatError(f"SIB-200 {codes[lang]} ({lang}): index_ids differ from {codes[first]}'s ({diff})")
        bad = next((i for i in ids if rows[i][0] != by_lang[first][i][0]), None)
        if bad is not None:
            raise DataFormatError(f"SIB-200 {codes[lang]} ({lang}): index_id {bad} has category {rows[bad][0]!r}, "
                                  f"{codes[first]} has {by_lang[first][bad][0]!r}")
    texts = {lang: tuple(rows[i][1] for i in ids) for lang, rows in by_lang.items()}
    labels = tuple(by_lang[first][i][0] for i in ids)
    return BitextDataset(name, [AlignedTable(name, tuple(map(str, ids)), texts, labels)], multi=True,
                         label_name="topic")
