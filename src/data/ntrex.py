"""NTREX-128 (news: WMT19 newstest2019's English source, 123 documents, human translations) as evaluation sets.

Files as published (MicrosoftTranslator/NTREX): `NTREX-128/newstest2019-src.eng.txt` and
`NTREX-128/newstest2019-ref.{code}.txt`, 1,997 CRLF lines each, line-aligned across languages;
`DOCUMENT_IDS.tsv` (no header, one column, LF lines) names each line's document, e.g. `bbc.381790`
(documents are contiguous runs of lines: 123 documents of 4 to 30 lines).

Two views:
- the LAReQA grid (`ntrex_grid`): a document's headline (its first line) is the query, its lead (second
  line) the relevant candidate among the body lines of every document (`lines`), or its whole body among one
  body per document (`body`); the document id links the languages. A few documents start mid-article, so
  their "headline" is an ordinary first sentence: every document is kept, as released.
- translation retrieval (`ntrex_bitext`): every line asks for its translations; the document is the
  randomisation unit of the paired tests (lines of one article are not independent).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from src.data.bitext import AlignedTable, BitextDataset, publisher_codes, read_lines, require_folder
from src.data.lareqa import Candidate, DataFormatError, LanguageSplit, LareqaDataset, Question

CODES = {"ar": "arb", "de": "deu", "el": "ell", "en": "eng", "es": "spa", "hi": "hin", "ru": "rus", "th": "tha",
         "tr": "tur", "vi": "vie", "zh": "zho-CN"}
DOCUMENT_IDS = "DOCUMENT_IDS.tsv"


@dataclass(frozen=True)
class NtrexCorpus:
    """Every document of every language: `documents[lang][k]` is document `doc_ids[k]`'s lines."""

    doc_ids: tuple[str, ...]
    documents: dict[str, tuple[tuple[str, ...], ...]]

    @property
    def languages(self) -> tuple[str, ...]:
        """Languages in load order."""
        return tuple(self.documents)


def language_file(root: Path, lang: str) -> Path:
    """The file of one language (English is the source file, the others references)."""
    code = CODES[lang]
    return root / "NTREX-128" / (f"newstest2019-src.{code}.txt" if lang == "en" else f"newstest2019-ref.{code}.txt")


def read_document_ids(path: Path) -> list[str]:
    """Each line's document id; an empty or malformed row, or a document that reappears later, is an error."""
    rows = read_lines(path)
    seen: set[str] = set()
    for n, doc in enumerate(rows, 1):
        if "\t" in doc or doc != doc.strip():
            raise DataFormatError(f"{path}: line {n} is {doc!r}, expected one document id")
        if doc in seen and rows[n - 2] != doc:
            raise DataFormatError(f"{path}: line {n}: document {doc} reappears after another document started "
                                  f"(documents must be contiguous runs of lines)")
        seen.add(doc)
    return rows


def load_ntrex(path: str | Path, languages: Sequence[str]) -> NtrexCorpus:
    """Read and validate the listed languages' files and the document ids."""
    root = require_folder(Path(path), "ntrex128")
    codes = publisher_codes(languages, CODES, f"NTREX-128 ({root})")
    doc_of_line = read_document_ids(root / DOCUMENT_IDS)
    available = sorted(x for x in CODES if language_file(root, x).is_file())
    starts = [i for i, d in enumerate(doc_of_line) if i == 0 or doc_of_line[i - 1] != d]
    bounds = list(zip(starts, starts[1:] + [len(doc_of_line)]))
    documents = {}
    for lang in codes:
        file = language_file(root, lang)
        lines = read_lines(file, available)
        if len(lines) != len(doc_of_line):
            raise DataFormatError(f"{file}: {len(lines)} lines, expected {len(doc_of_line)} "
                                  f"(one per line of {root / DOCUMENT_IDS}; the files are line-aligned)")
        documents[lang] = tuple(tuple(lines[a:b]) for a, b in bounds)
    return NtrexCorpus(tuple(doc_of_line[a] for a, _ in bounds), documents)


def ntrex_grid(corpus: NtrexCorpus, candidates: str, name: str) -> LareqaDataset:
    """Headline -> lead among every document's body lines (`lines`), or -> its whole body (`body`)."""
    if candidates not in ("lines", "body"):
        raise ValueError(f"candidates={candidates!r}: expected lines or body")
    by_lang = {}
    for lang, docs in corpus.documents.items():
        split = LanguageSplit()
        for doc, lines in zip(corpus.doc_ids, docs):
            if len(lines) < 2:
                raise DataFormatError(f"NTREX-128 ({lang}): document {doc} has {len(lines)} line(s), "
                                      f"expected a headline and at least one body line")
            paragraph, body = f"{lang}:{doc}", " ".join(lines[1:])
            if candidates == "lines":
                uids = [f"{paragraph}-{k}" for k in range(1, len(lines))]
                split.candidates += [Candidate(u, lang, s, body, paragraph) for u, s in zip(uids, lines[1:])]
            else:
                uids = [f"{paragraph}-body"]
                split.candidates.append(Candidate(uids[0], lang, body, body, paragraph))
            split.questions.append(Question(f"{lang}:{doc}", doc, lang, lines[0], uids[0]))
        by_lang[lang] = split
    return LareqaDataset(name, by_lang)


def ntrex_bitext(corpus: NtrexCorpus, name: str) -> BitextDataset:
    """Every line of every document as translation retrieval over all languages; the document is the unit."""
    first = corpus.documents[corpus.languages[0]]
    ids = tuple(f"{doc}.{k}" for doc, lines in zip(corpus.doc_ids, first) for k in range(len(lines)))
    units = tuple(doc for doc, lines in zip(corpus.doc_ids, first) for _ in lines)
    texts = {lang: tuple(line for lines in docs for line in lines) for lang, docs in corpus.documents.items()}
    return BitextDataset(name, [AlignedTable(name, ids, texts, units=units)], multi=True)
