"""Tiny fixtures in the out-of-domain publishers' own formats (hand-written lines, not copies of the real files)."""

from __future__ import annotations

import zipfile
from pathlib import Path

# NTREX-128: three documents, line-aligned in en/de/zh; d1 has 3 lines, d2 2, d3 4.
NTREX_DOCS = ["d1", "d1", "d1", "d2", "d2", "d3", "d3", "d3", "d3"]
NTREX = {
    "eng": ["Cats win prize", "A cat won a prize.", "It was happy.", "Rain falls", "It rained all day.",
            "Markets rise", "Stocks went up.", "Bonds fell.", "Gold was flat."],
    "deu": ["Katzen gewinnen Preis", "Eine Katze gewann einen Preis.", "Sie war froh.", "Regen fällt",
            "Es regnete den ganzen Tag.", "Märkte steigen", "Aktien stiegen.", "Anleihen fielen.", "Gold blieb."],
    "zho-CN": ["猫获奖", "一只猫获了奖。", "它很高兴。", "下雨", "下了一整天雨。", "市场上涨", "股票上涨。", "债券下跌。", "黄金持平。"],
}


def write_ntrex(root: Path, drop_line: str | None = None, empty_line: str | None = None,
                split_document: bool = False) -> Path:
    """`ntrex128/` with DOCUMENT_IDS.tsv and en/de/zh files (CRLF, as published); options inject defects."""
    folder = root / "ntrex128"
    (folder / "NTREX-128").mkdir(parents=True)
    docs = list(NTREX_DOCS)
    if split_document:  # d1 again after d2: documents must be contiguous
        docs[5] = "d1"
    # As published: DOCUMENT_IDS.tsv has LF lines, the text files CRLF; no header, one id per line.
    (folder / "DOCUMENT_IDS.tsv").write_bytes("".join(f"{d}\n" for d in docs).encode("utf-8"))
    for code, lines in NTREX.items():
        lines = list(lines)
        if code == drop_line:
            lines = lines[:-1]
        if code == empty_line:
            lines[4] = ""
        name = "newstest2019-src.eng.txt" if code == "eng" else f"newstest2019-ref.{code}.txt"
        (folder / "NTREX-128" / name).write_text("".join(f"{t}\r\n" for t in lines), encoding="utf-8")
    return folder


# SIB-200: five FLORES indices over the three split files, en/de/zh, a topic each.
SIB = {
    "eng_Latn": {3: "Science is fun.", 7: '"Go," he said.', 12: "The team won.", 20: "Paris is big.", 31: "Eat well."},
    "deu_Latn": {3: "Wissenschaft macht Spaß.", 7: '"Geh", sagte er.', 12: "Das Team gewann.", 20: "Paris ist groß.",
                 31: "Iss gut."},
    "zho_Hans": {3: "科学很有趣。", 7: "“走吧，”他说。", 12: "球队赢了。", 20: "巴黎很大。", 31: "好好吃饭。"},
}
SIB_TOPICS = {3: "science/technology", 7: "entertainment", 12: "sports", 20: "travel", 31: "health"}
SIB_SPLITS = {"train": [12, 3, 31], "dev": [7], "test": [20]}


def _tsv_field(text: str) -> str:
    """CSV quoting as the publisher's files have it: a field holding a quote is quoted, its quotes doubled."""
    return '"' + text.replace('"', '""') + '"' if '"' in text else text


def write_sib200(root: Path, bad_row: str | None = None, duplicate: bool = False, drop_id: str | None = None,
                 other_topic: bool = False, bad_header: bool = False) -> Path:
    """`sib200/data/annotated/{code}/{split}.tsv`; `bad_row` in (no_id, columns, empty) breaks zho_Hans dev."""
    folder = root / "sib200"
    for code, texts in SIB.items():
        split_dir = folder / "data" / "annotated" / code
        split_dir.mkdir(parents=True)
        for split, ids in SIB_SPLITS.items():
            ids = [i for i in ids if not (code == drop_id and i == 20)]
            rows = [f"{i}\t{'geography' if other_topic and code == 'deu_Latn' and i == 3 else SIB_TOPICS[i]}\t"
                    f"{_tsv_field(texts[i])}" for i in ids]
            if code == "zho_Hans" and split == "dev":
                if bad_row == "no_id":
                    rows[0] = f"\t{SIB_TOPICS[7]}\t{texts[7]}"
                elif bad_row == "columns":
                    rows[0] = f"7\t{texts[7]}"
                elif bad_row == "empty":
                    rows[0] = f"7\t{SIB_TOPICS[7]}\t "
            if duplicate and code == "deu_Latn" and split == "test":
                rows.append(f"3\t{SIB_TOPICS[3]}\tNoch einmal.")
            header = "index_id\ttopic\ttext" if bad_header and code == "eng_Latn" and split == "train" else \
                "index_id\tcategory\ttext"
            (split_dir / f"{split}.tsv").write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")
    return folder


# TICO-19: four segments (two PubMed, one CMU, one Wikipedia) in en-ar and en-es-LA; the English of
# PubMed_1:2 differs between the two files (as 19 real segments do).
TICO = [("PubMed_1:1", "Fever is common.", "الحمى شائعة.", "La fiebre es común."),
        ("PubMed_1:2", "Wash your hands.", "اغسل يديك.", "Lávese las manos."),
        ("CMU_1:3", "how long have you had a cough?", "منذ متى لديك سعال؟", "¿hace cuánto tiene tos?"),
        ("wiki_2:4", "The virus spread in 2020.", "انتشر الفيروس في 2020.", "El virus se propagó en 2020.")]


def tmx(code: str, rows: list[tuple[str, str, str]]) -> str:
    """A TMX 1.4 document like TICO-19's: one <tu> per (tuid, English, other) with a note."""
    units = "".join(
        f'<tu tuid="{tuid}">\n<prop type="note">https://example.org/{tuid}</prop>\n<tuv xml:lang="en">\n'
        f"<seg>{en}</seg></tuv>\n<tuv xml:lang=\"{code}\"><seg>{other}</seg></tuv>\n</tu>\n"
        for tuid, en, other in rows)
    return (f'<?xml version="1.0" encoding="UTF-8"?>\n<tmx version="1.4"><header srclang="en" adminlang="en" '
            f'segtype="paragraph" datatype="text" o-tmf="unknown" creationtool="unknown" '
            f'creationtoolversion="unknown"></header><body>\n{units}</body></tmx>\n')


# Each TICO-19 defect: the text of the es-LA file it replaces, and its replacement.
TICO_DEFECTS = {
    "missing_tuv": ('<tuv xml:lang="es-LA"><seg>¿hace', '<tuv xml:lang="fr"><seg>¿hace'),
    "empty_seg": ("<seg>Lávese las manos.</seg>", "<seg> </seg>"),
    "no_tuid": ('<tu tuid="wiki_2:4">', "<tu>"),
    "duplicate": ('<tu tuid="wiki_2:4">', '<tu tuid="CMU_1:3">'),
    "unknown_origin": ('<tu tuid="wiki_2:4">', '<tu tuid="Blog_2:4">'),
    "broken_xml": ("</body>", ""),
}


def write_tico19(root: Path, defect: str | None = None, extra_tuid: bool = False, two_members: bool = False) -> Path:
    """`tico19/data/TM/all.en-{ar,es-LA}.tmx.zip`; a `defect` of TICO_DEFECTS (or the options) breaks es-LA's."""
    if defect is not None and defect not in TICO_DEFECTS:
        raise ValueError(f"unknown TICO-19 fixture defect {defect!r}")
    folder = root / "tico19" / "data" / "TM"
    folder.mkdir(parents=True)
    for column, code in ((2, "ar"), (3, "es-LA")):
        rows = [(row[0], row[1] + (" (edited)" if code == "es-LA" and row[0] == "PubMed_1:2" else ""), row[column])
                for row in TICO]
        if code == "es-LA" and extra_tuid:
            rows.append(("PubMed_9:9", "Extra.", "Extra."))
        text = tmx(code, rows)
        if code == "es-LA" and defect is not None:
            text = text.replace(*TICO_DEFECTS[defect])
        with zipfile.ZipFile(folder / f"all.en-{code}.tmx.zip", "w") as z:
            z.writestr(f"all.en-{code}.tmx", text)
            if two_members and code == "es-LA":
                z.writestr("other.tmx", text)
    return root / "tico19"


# Tatoeba: two pairs whose English sides differ.
TATOEBA = {"deu": (["Ich bin müde.", "Wo ist Tom?"], ["I am tired.", "Where is Tom?"]),
           "cmn": (["我累了。", "汤姆在哪里？", "我喜欢茶。"], ["I'm tired.", "Where's Tom?", "I like tea."])}


def write_tatoeba(root: Path, misaligned: bool = False, empty_line: bool = False) -> Path:
    """`tatoeba/data/tatoeba/v1/tatoeba.{code}-eng.{code,eng}`; options break the cmn pair."""
    folder = root / "tatoeba" / "data" / "tatoeba" / "v1"
    folder.mkdir(parents=True)
    for code, (other, english) in TATOEBA.items():
        english = list(english)
        if code == "cmn" and misaligned:
            english.append("One more.")
        if code == "cmn" and empty_line:
            english[1] = ""
        (folder / f"tatoeba.{code}-eng.{code}").write_text("".join(f"{t}\n" for t in other), encoding="utf-8")
        (folder / f"tatoeba.{code}-eng.eng").write_text("".join(f"{t}\n" for t in english), encoding="utf-8")
    return root / "tatoeba"
