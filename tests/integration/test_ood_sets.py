"""The out-of-domain loaders on the real shared files: the counts the publishers state."""

from __future__ import annotations

from collections import Counter

from src.data.ntrex import load_ntrex, ntrex_bitext, ntrex_grid
from src.data.sib200 import load_sib200
from src.data.tatoeba import load_tatoeba
from src.data.tico19 import load_tico19
from tests.integration.test_ood_evaluate import DATA

XQUAD_LANGS = ["ar", "de", "el", "en", "es", "hi", "ru", "th", "tr", "vi", "zh"]
TICO_LANGS = ["en", "ar", "es", "hi", "ru", "zh", "fr", "pt", "id"]


def test_ntrex_counts() -> None:
    corpus = load_ntrex(DATA / "ntrex128", XQUAD_LANGS)
    lines, body = ntrex_grid(corpus, "lines", "ntrex"), ntrex_grid(corpus, "body", "ntrex_doc")
    for x in XQUAD_LANGS:
        assert (len(lines.by_lang[x].questions), len(lines.by_lang[x].candidates)) == (123, 1874), x
        assert len(body.by_lang[x].candidates) == 123
    assert lines.num_candidates == 20_614  # the pooled setting
    bitext = ntrex_bitext(corpus, "ntrex_bitext")
    assert len(bitext.tables[0].ids) == 1997 and len(set(bitext.clusters("en"))) == 123


def test_sib200_counts() -> None:
    (table,) = load_sib200(DATA / "sib200", XQUAD_LANGS, "sib200").tables
    assert len(table.ids) == 1004 and set(table.texts) == set(XQUAD_LANGS)
    assert len(set(table.labels)) == 7


def test_tico19_counts() -> None:
    full = load_tico19(DATA / "tico19", TICO_LANGS, "tico19")
    assert len(full.tables[0].ids) == 3071
    assert Counter(full.tables[0].labels) == {"Wikipedia": 1538, "PubMed": 939, "Wikivoyage": 243, "CMU": 141,
                                              "Wikisource": 122, "Wikinews": 88}
    assert full.notes and "19 " in full.notes[0]  # the English sides that differ between the eight files
    medical = load_tico19(DATA / "tico19", TICO_LANGS, "tico19_medical", ["PubMed", "CMU"])
    assert len(medical.tables[0].ids) == 1080


def test_tatoeba_counts() -> None:
    ds = load_tatoeba(DATA / "tatoeba", [x for x in XQUAD_LANGS if x != "en"] + ["en"], "tatoeba")
    sizes = {t.name: len(t.ids) for t in ds.tables}
    assert sizes.pop("tha-eng") == 548 and set(sizes.values()) == {1000} and len(sizes) == 9
