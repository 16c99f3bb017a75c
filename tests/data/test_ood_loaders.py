"""The out-of-domain loaders on fixtures in the publishers' formats: exact content and every bad-input error."""

from __future__ import annotations

from pathlib import Path

import pytest

from src.data.lareqa import DataFormatError
from src.data.ntrex import load_ntrex, ntrex_bitext, ntrex_grid
from src.data.sib200 import load_sib200
from src.data.tatoeba import load_tatoeba
from src.data.tico19 import load_tico19, origin
from tests.data import ood_fixtures as fx

LANGS = ["en", "de", "zh"]


# --- NTREX-128 ------------------------------------------------------------------------------------------------

def test_ntrex_headline_asks_for_the_lead(tmp_path: Path) -> None:
    ds = ntrex_grid(load_ntrex(fx.write_ntrex(tmp_path), LANGS), "lines", "ntrex")
    en = ds.by_lang["en"]
    assert [(q.qid, q.xling_id, q.text, q.relevant_uid) for q in en.questions] == [
        ("en:d1", "d1", "Cats win prize", "en:d1-1"), ("en:d2", "d2", "Rain falls", "en:d2-1"),
        ("en:d3", "d3", "Markets rise", "en:d3-1")]
    # Every line but the headlines: 2 + 1 + 3 body lines; the lead is line 1 of its document.
    assert [(c.uid, c.sentence) for c in en.candidates] == [
        ("en:d1-1", "A cat won a prize."), ("en:d1-2", "It was happy."), ("en:d2-1", "It rained all day."),
        ("en:d3-1", "Stocks went up."), ("en:d3-2", "Bonds fell."), ("en:d3-3", "Gold was flat.")]
    assert en.candidates[0].paragraph == "en:d1" and ds.by_lang["zh"].questions[2].text == "市场上涨"
    assert not any(c.sentence.endswith("\r") for c in en.candidates)  # CRLF as published, read without the \r


def test_ntrex_document_view_and_bitext(tmp_path: Path) -> None:
    corpus = load_ntrex(fx.write_ntrex(tmp_path), LANGS)
    doc = ntrex_grid(corpus, "body", "ntrex_doc").by_lang["de"]
    first = doc.candidates[0]
    assert (first.uid, first.sentence) == ("de:d1-body", "Eine Katze gewann einen Preis. Sie war froh.")
    assert [q.relevant_uid for q in doc.questions] == ["de:d1-body", "de:d2-body", "de:d3-body"]
    bitext = ntrex_bitext(corpus, "ntrex_bitext")
    (table,) = bitext.tables
    assert bitext.multi and table.ids[:4] == ("d1.0", "d1.1", "d1.2", "d2.0")
    assert table.texts["zh"][3] == "下雨" and bitext.clusters("en") == fx.NTREX_DOCS
    assert bitext.query_ids("de")[0] == "de:d1.0"


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"drop_line": "deu"}, r"newstest2019-ref\.deu\.txt: 8 lines, expected 9 \(one per line of .*DOCUMENT_IDS\.tsv"),
    ({"empty_line": "zho-CN"}, r"newstest2019-ref\.zho-CN\.txt: line 5 is empty"),
    ({"split_document": True}, r"DOCUMENT_IDS\.tsv: line 6: document d1 reappears after another document started"),
])
def test_ntrex_bad_input(tmp_path: Path, kwargs: dict, message: str) -> None:
    with pytest.raises(DataFormatError, match=message):
        load_ntrex(fx.write_ntrex(tmp_path, **kwargs), LANGS)


def test_ntrex_missing_language_and_unknown_language(tmp_path: Path) -> None:
    root = fx.write_ntrex(tmp_path)
    with pytest.raises(FileNotFoundError, match=r"missing file .*newstest2019-ref\.rus\.txt \(languages with files "
                                                r"here: de, en, zh\)"):
        load_ntrex(root, ["en", "ru"])
    with pytest.raises(DataFormatError, match=r"no language xx \(this set has ar, de"):
        load_ntrex(root, ["en", "xx"])
    with pytest.raises(FileNotFoundError, match=r"data folder .*nowhere does not exist; run `make data`"):
        load_ntrex(tmp_path / "nowhere", LANGS)


# --- SIB-200 ----------------------------------------------------------------------------------------------------

def test_sib200_one_table_in_index_order_with_topics(tmp_path: Path) -> None:
    ds = load_sib200(fx.write_sib200(tmp_path), LANGS, "sib200")
    (table,) = ds.tables
    assert table.ids == ("3", "7", "12", "20", "31") and ds.label_name == "topic"
    assert table.labels == ("science/technology", "entertainment", "sports", "travel", "health")
    assert table.texts["en"][1] == '"Go," he said.'  # CSV-quoted in the file, read back exactly
    assert table.texts["de"][1] == '"Geh", sagte er.' and ds.labels("zh")[4] == "health"


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"bad_row": "no_id"}, r"zho_Hans/dev\.tsv: line 2 has index_id '', expected a FLORES sentence index"),
    ({"bad_row": "columns"}, r"zho_Hans/dev\.tsv: line 2 has 2 columns, expected 3"),
    ({"bad_row": "empty"}, r"zho_Hans/dev\.tsv: line 2 \(index_id 7\) has an empty text"),
    ({"duplicate": True}, r"deu_Latn/test\.tsv: line 3: index_id 3 appears twice in deu_Latn \(first at train\.tsv line 3\)"),
    ({"drop_id": "zho_Hans"}, r"SIB-200 zho_Hans \(zh\): index_ids differ from eng_Latn's \(1 missing \[20\], 0 extra \[\]\)"),
    ({"other_topic": True}, r"SIB-200 deu_Latn \(de\): index_id 3 has category 'geography', eng_Latn has 'science/technology'"),
    ({"bad_header": True}, r"eng_Latn/train\.tsv: line 1 is \['index_id', 'topic', 'text'\], expected the header"),
])
def test_sib200_bad_input(tmp_path: Path, kwargs: dict, message: str) -> None:
    with pytest.raises(DataFormatError, match=message):
        load_sib200(fx.write_sib200(tmp_path, **kwargs), LANGS, "sib200")


def test_sib200_missing_language_folder(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"missing folder .*annotated/rus_Cyrl \(languages here: deu_Latn"):
        load_sib200(fx.write_sib200(tmp_path), ["en", "ru"], "sib200")


# --- TICO-19 ----------------------------------------------------------------------------------------------------

def test_tico19_nway_join_on_tuid_keeps_the_first_files_english(tmp_path: Path) -> None:
    ds = load_tico19(fx.write_tico19(tmp_path), ["en", "ar", "es"], "tico19")
    (table,) = ds.tables
    assert table.ids == ("PubMed_1:1", "PubMed_1:2", "CMU_1:3", "wiki_2:4")
    assert table.texts["en"][1] == "Wash your hands."  # the en-ar file's English, not es-LA's "(edited)"
    assert table.texts["es"][2] == "¿hace cuánto tiene tos?" and table.texts["ar"][0] == "الحمى شائعة."
    assert table.labels == ("PubMed", "PubMed", "CMU", "Wikipedia") and ds.label_name == "origin"
    assert ds.notes == ["english sides differ between files for 1 of 4 segments; kept the en-ar file's"]
    # The other order keeps the es-LA file's English.
    assert load_tico19(tmp_path / "tico19", ["en", "es", "ar"], "t").tables[0].texts["en"][1] == "Wash your hands. (edited)"


def test_tico19_origin_filter(tmp_path: Path) -> None:
    ds = load_tico19(fx.write_tico19(tmp_path), ["en", "ar", "es"], "tico19_medical", ["PubMed", "CMU"])
    assert ds.tables[0].ids == ("PubMed_1:1", "PubMed_1:2", "CMU_1:3")
    assert [origin(t) for t in ("wiki_4:2700", "Wikipedia_handpicked_1:1200", "Wikivoyage_1:2400", "CMU_1:3")] == [
        "Wikipedia", "Wikipedia", "Wikivoyage", "CMU"]
    with pytest.raises(DataFormatError, match=r"tuid 'X_1' has no known origin prefix"):
        origin("X_1")
    with pytest.raises(DataFormatError, match=r"origins \['Pubmed'\]: unknown \['Pubmed'\] \(expected a non-empty list of PubMed, CMU"):
        load_tico19(tmp_path / "tico19", ["en", "ar"], "t", ["Pubmed"])


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"defect": "missing_tuv"}, r"all\.en-es-LA\.tmx\.zip: tuid CMU_1:3 has no <tuv xml:lang=\"es-la\"> \(it has en, fr\)"),
    ({"defect": "empty_seg"}, r"all\.en-es-LA\.tmx\.zip: tuid PubMed_1:2 has an empty es-la <seg>"),
    ({"extra_tuid": True}, (r"all\.en-es-LA\.tmx\.zip: tuids differ from all\.en-ar\.tmx\.zip's "
                            r"\(0 missing \[\], 1 extra \['PubMed_9:9'\]\)")),
    ({"defect": "no_tuid"}, r"all\.en-es-LA\.tmx\.zip: <tu> number 4 has no tuid"),
    ({"defect": "duplicate"}, r"all\.en-es-LA\.tmx\.zip: tuid CMU_1:3 appears twice"),
    ({"defect": "unknown_origin"}, r"all\.en-es-LA\.tmx\.zip: tuid 'Blog_2:4' has no known origin prefix"),
    ({"defect": "broken_xml"}, r"all\.en-es-LA\.tmx\.zip: all\.en-es-LA\.tmx is not valid TMX/XML"),
    ({"two_members": True}, r"all\.en-es-LA\.tmx\.zip: holds 2 \.tmx files"),
])
def test_tico19_bad_input(tmp_path: Path, kwargs: dict, message: str) -> None:
    with pytest.raises(DataFormatError, match=message):
        load_tico19(fx.write_tico19(tmp_path, **kwargs), ["en", "ar", "es"], "tico19")


def test_tico19_missing_file_and_english(tmp_path: Path) -> None:
    root = fx.write_tico19(tmp_path)
    with pytest.raises(FileNotFoundError, match=(r"missing file .*all\.en-ru\.tmx\.zip for language ru "
                                                 r"\(languages with files here: ar, es\)")):
        load_tico19(root, ["en", "ar", "ru"], "t")
    with pytest.raises(DataFormatError, match=r"languages must include en"):
        load_tico19(root, ["ar", "es"], "t")


# --- Tatoeba ----------------------------------------------------------------------------------------------------

def test_tatoeba_one_table_per_language(tmp_path: Path) -> None:
    ds = load_tatoeba(fx.write_tatoeba(tmp_path), ["de", "zh", "en"], "tatoeba")
    assert not ds.multi and [t.name for t in ds.tables] == ["deu-eng", "cmn-eng"]
    assert ds.tables[1].ids == ("cmn.0", "cmn.1", "cmn.2") and ds.tables[1].texts["en"][2] == "I like tea."
    assert ds.pairs == (("de", "en"), ("en", "de"), ("zh", "en"), ("en", "zh"))
    assert ds.query_ids("en") == ["en:deu.0", "en:deu.1", "en:cmn.0", "en:cmn.1", "en:cmn.2"]


@pytest.mark.parametrize(("kwargs", "error", "message"), [
    ({"misaligned": True}, DataFormatError, r"tatoeba\.cmn-eng\.cmn has 3 lines, .*tatoeba\.cmn-eng\.eng 4"),
    ({"empty_line": True}, DataFormatError, r"tatoeba\.cmn-eng\.eng: line 2 is empty"),
])
def test_tatoeba_bad_input(tmp_path: Path, kwargs: dict, error: type, message: str) -> None:
    with pytest.raises(error, match=message):
        load_tatoeba(fx.write_tatoeba(tmp_path, **kwargs), ["de", "zh", "en"], "tatoeba")


def test_tatoeba_missing_file_and_english(tmp_path: Path) -> None:
    root = fx.write_tatoeba(tmp_path)
    with pytest.raises(FileNotFoundError, match=r"missing file .*tatoeba\.rus-eng\.rus \(languages with files here: "
                                                r"cmn, deu\)"):
        load_tatoeba(root, ["ru", "en"], "t")
    with pytest.raises(DataFormatError, match="languages must include en"):
        load_tatoeba(root, ["de", "zh"], "t")
