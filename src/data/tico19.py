"""TICO-19 (COVID-19: PubMed, CMU doctor-patient dialogue, Wikipedia, Wikivoyage, ...) as translation retrieval.

Files as published (tico-19/tico-19.github.io): `data/TM/all.en-{code}.tmx.zip`, one TMX 1.4 file each. Every
`<tu tuid=...>` holds a `<prop type="note">` (source URL), an English `<tuv>` and the other language's. The same
tuid is the same segment in every file, so the languages join N-way on it; the tuid's prefix names the origin.
The English side of 19 of the 3,071 segments differs slightly between files (quote marks, small edits, and
`&gt;`/`&lt;` escaped twice in some files, so the published text reads "&gt;" there): the English of the first
non-English language listed is kept as published, and `BitextDataset.notes` says how many of the kept segments
differ. The `xml:lang` values are compared case-insensitively (published: en, ar, es-LA, hi, ru, zh, fr, pt-BR, id).
"""

from __future__ import annotations

import re
import zipfile
from collections.abc import Sequence
from pathlib import Path
from xml.etree import ElementTree

from src.data.bitext import AlignedTable, BitextDataset, id_difference, publisher_codes, require_folder
from src.data.lareqa import DataFormatError

CODES = {"en": "en", "ar": "ar", "es": "es-LA", "hi": "hi", "ru": "ru", "zh": "zh", "fr": "fr", "pt": "pt-BR",
         "id": "id"}
# tuid `{prefix}_{document}:{segment}`; prefix -> origin label. `wiki_` and `Wikipedia_handpicked_` are both
# Wikipedia articles (661 + 877 = 1,538 segments, the README's Wikipedia count).
ORIGINS = {"PubMed": "PubMed", "CMU": "CMU", "wiki": "Wikipedia", "Wikipedia_handpicked": "Wikipedia",
           "Wikivoyage": "Wikivoyage", "Wikisource": "Wikisource", "Wikinews": "Wikinews"}
LABELS = tuple(dict.fromkeys(ORIGINS.values()))
_TUID = re.compile(r"(?P<prefix>.+)_\d+:\d+")
_XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"


def origin(tuid: str) -> str:
    """The origin label of a tuid (`PubMed_7:300` -> PubMed); an unknown prefix is a DataFormatError."""
    m = _TUID.fullmatch(tuid)
    if m is None or m["prefix"] not in ORIGINS:
        raise DataFormatError(f"tuid {tuid!r} has no known origin prefix (expected {{prefix}}_{{n}}:{{n}} with a "
                              f"prefix among {', '.join(ORIGINS)})")
    return ORIGINS[m["prefix"]]


def read_tmx(path: Path, code: str) -> dict[str, tuple[str, str]]:
    """tuid -> (English text, `code` text) of one zipped TMX file, in file order, validated."""
    try:
        with zipfile.ZipFile(path) as z:
            members = [m for m in z.namelist() if m.endswith(".tmx")]
            if len(members) != 1:
                raise DataFormatError(f"{path}: holds {len(members)} .tmx files ({members}), expected one")
            data = z.read(members[0])
    except zipfile.BadZipFile as err:
        raise DataFormatError(f"{path}: not a zip file ({err})") from err
    try:
        root = ElementTree.fromstring(data)
    except ElementTree.ParseError as err:
        raise DataFormatError(f"{path}: {members[0]} is not valid TMX/XML ({err})") from err
    out: dict[str, tuple[str, str]] = {}
    for n, tu in enumerate(root.iter("tu"), 1):
        tuid = tu.get("tuid")
        if not tuid:
            raise DataFormatError(f"{path}: <tu> number {n} has no tuid")
        if tuid in out:
            raise DataFormatError(f"{path}: tuid {tuid} appears twice")
        try:
            origin(tuid)
        except DataFormatError as err:
            raise DataFormatError(f"{path}: {err}") from err
        segs = _segments(tu, path, tuid)
        for lang in ("en", code.lower()):
            if lang not in segs:
                raise DataFormatError(f"{path}: tuid {tuid} has no <tuv xml:lang=\"{lang}\"> "
                                      f"(it has {', '.join(sorted(segs)) or 'none'})")
            if not segs[lang].strip():
                raise DataFormatError(f"{path}: tuid {tuid} has an empty {lang} <seg>")
        out[tuid] = (segs["en"], segs[code.lower()])
    if not out:
        raise DataFormatError(f"{path}: no <tu> segments")
    return out


def _segments(tu: ElementTree.Element, path: Path, tuid: str) -> dict[str, str]:
    """Lower-cased xml:lang -> `<seg>` text of one `<tu>`; a repeated language or inline markup is an error."""
    segs: dict[str, str] = {}
    for tuv in tu.iter("tuv"):
        lang = (tuv.get(_XML_LANG) or "").lower()  # TMX language codes are case-insensitive
        if lang in segs:
            raise DataFormatError(f"{path}: tuid {tuid} has two <tuv xml:lang=\"{lang}\">")
        seg = tuv.find("seg")
        # Inline TMX markup (<ph>, <bpt>, ...) would cut .text short: none is published, so refuse it.
        if seg is not None and len(seg):
            raise DataFormatError(f"{path}: tuid {tuid}: the {lang} <seg> holds markup <{seg[0].tag}>, "
                                  f"expected plain text")
        segs[lang] = "" if seg is None or seg.text is None else seg.text
    return segs


def load_tico19(path: str | Path, languages: Sequence[str], name: str,
                origins: Sequence[str] | None = None) -> BitextDataset:
    """One N-way table joined on tuid over the listed languages (English required), labelled by origin."""
    root = require_folder(Path(path), "tico19")
    codes = publisher_codes(languages, CODES, f"TICO-19 ({root})")
    others = [x for x in codes if x != "en"]
    if "en" not in codes or not others:
        raise DataFormatError(f"TICO-19: languages must include en and at least one other, got {list(languages)}")
    if origins is not None and (not origins or any(o not in LABELS for o in origins)):
        unknown = [o for o in origins if o not in LABELS]
        raise DataFormatError(f"TICO-19: origins {list(origins)}: unknown {unknown} (expected a non-empty list of "
                              f"{', '.join(LABELS)})")
    folder = root / "data" / "TM"
    files = {x: folder / f"all.en-{codes[x]}.tmx.zip" for x in others}
    for x, file in files.items():
        if not file.is_file():
            have = [y for y, c in CODES.items() if (folder / f"all.en-{c}.tmx.zip").is_file()]
            raise FileNotFoundError(f"missing file {file} for language {x} (languages with files here: "
                                    f"{', '.join(have) or 'none'})")
    pairs = {x: read_tmx(files[x], codes[x]) for x in others}
    ids = list(pairs[others[0]])
    for x in others[1:]:
        diff = id_difference(ids, pairs[x])
        if diff:
            raise DataFormatError(f"{files[x]}: tuids differ from {files[others[0]].name}'s ({diff})")
    if origins is not None:
        ids = [t for t in ids if origin(t) in origins]
    # The English side is the same segment in every file, but a few differ slightly (quotes, escaping, edits).
    differ = sum(len({pairs[x][t][0] for x in others}) > 1 for t in ids)
    texts = {x: tuple(pairs[others[0]][t][0] if x == "en" else pairs[x][t][1] for t in ids) for x in codes}
    notes = []
    if differ:
        notes.append(f"english sides differ between files for {differ} of {len(ids)} segments; kept the "
                     f"en-{codes[others[0]]} file's")
    table = AlignedTable(name, tuple(ids), texts, tuple(origin(t) for t in ids))
    return BitextDataset(name, [table], multi=True, label_name="origin", notes=notes)
