"""Metric keys: exact strings, build/parse round trips for every setting and prefix, clear errors for bad keys."""

from __future__ import annotations

import math

import pytest

from src.core import keys
from src.core.keys import MetricKey, MetricKeyError

SETS = ("xquad_r", "mlqa_r", "val", "test")  # zero-shot sets, ValidationRetrieval's prefix, a set named `test`


def test_settings_and_metric_names() -> None:
    assert keys.SETTINGS == ("mono", "cross", "multi") == (keys.MONO, keys.CROSS, keys.MULTI)
    assert keys.KINDS == ("mono", "cross", "multi", "time", "index")
    assert keys.GRID_METRICS == ("map", "r@1", "r@10", "mrr", "ndcg@10")
    assert [keys.logged_name(m) for m in keys.GRID_METRICS] == ["map", "r1", "r10", "mrr", "ndcg10"]


def test_logged_names_drop_the_at_and_refuse_what_mlflow_or_the_grammar_cannot_hold() -> None:
    assert [keys.logged_name(m) for m in ("nDCG@10", "R@100", "RR@10", "AP@1000")] == ["nDCG10", "R100", "RR10",
                                                                                       "AP1000"]
    assert keys.logged_name("recall@100") + "_vs_exact" == "recall100_vs_exact"
    with pytest.raises(MetricKeyError, match="MLflow rejects"):
        keys.logged_name("nDCG@10(x)")
    with pytest.raises(MetricKeyError, match="separator"):
        keys.logged_name("a/b")


@pytest.mark.parametrize("dataset", SETS)
@pytest.mark.parametrize("setting", keys.SETTINGS)
def test_exact_strings_and_round_trip_for_every_setting_and_prefix(dataset: str, setting: str) -> None:
    pair = "de-de" if setting == "mono" else "de-zh"
    cases = {
        keys.key(dataset, setting, "map"): (f"{dataset}/{setting}/map", None, None),
        keys.key(dataset, setting, "r10", keys.pair(*pair.split("-"))): (f"{dataset}/{setting}/r10/{pair}", pair, "de"),
        keys.key(dataset, setting, "ndcg10", "de"): (f"{dataset}/{setting}/ndcg10/de", "de", "de"),
    }
    for built, (want, group, query_language) in cases.items():
        assert built == want
        parsed = keys.parse(built)
        assert parsed == MetricKey(dataset, setting, want.split("/")[2], group)
        assert str(parsed) == built and parsed.query_language == query_language
        assert keys.maybe_parse(built) == parsed


def test_named_keys_of_the_grid_and_corpus_kinds() -> None:
    assert keys.key("xquad_r", keys.MULTI, keys.RANK_DISTANCE) == "xquad_r/multi/rank_distance"
    assert keys.key("xquad_r", keys.CROSS, keys.MISSING_QUERIES) == "xquad_r/cross/missing_queries"
    assert keys.key("beir", keys.MONO, keys.QUERIES) == "beir/mono/queries"
    assert keys.key("miracl", keys.INDEX, "recall100_vs_exact", "sw") == "miracl/index/recall100_vs_exact/sw"
    assert keys.time_key("xquad_r", "encode") == "xquad_r/time/encode_s"
    assert keys.parse("xquad_r/time/score_s") == MetricKey("xquad_r", "time", "score_s")
    assert [keys.language_key("xq", s, "map", "de") for s in keys.SETTINGS] == ["xq/mono/map/de-de",
                                                                                  "xq/cross/map/de", "xq/multi/map/de"]
    assert keys.pair_setting("de", "de") == "mono" and keys.pair_setting("de", "zh") == "cross"
    assert keys.split_group("de-zh") == ("de", "zh") and keys.split_group("de") == ("de", None)


@pytest.mark.parametrize("bad", ["", "xquad_r", "val/loss", "train/loss", "epoch", "xquad_r/mono", "a/b/c/d/e",
                                 "xquad_r//map", "/mono/map", "xquad_r/mono/map/", "xquad_r/bogus/map",
                                 "xquad_r/cross/map/de-zh-en", "xquad_r/cross/map/-zh"])
def test_bad_keys_raise_a_clear_error(bad: str) -> None:
    with pytest.raises(MetricKeyError, match=f"{bad!r} is not a metric key") as err:
        keys.parse(bad)
    assert isinstance(err.value, ValueError)
    assert keys.maybe_parse(bad) is None


def test_bad_parts_are_refused_when_building() -> None:
    with pytest.raises(MetricKeyError, match="setting 'bogus' is not one of mono, cross, multi, time, index"):
        keys.key("xquad_r", "bogus", "map")
    with pytest.raises(MetricKeyError, match="dataset='a/b' is empty or contains '/'"):
        keys.key("a/b", "mono", "map")
    with pytest.raises(MetricKeyError, match="metric='' is empty"):
        keys.key("xquad_r", "mono", "")
    with pytest.raises(MetricKeyError, match="group=''"):
        keys.key("xquad_r", "mono", "map", "")
    with pytest.raises(MetricKeyError, match="language 'zh-cn'"):
        keys.pair("zh-cn", "de")
    with pytest.raises(MetricKeyError, match="neither a language"):
        keys.split_group("a-b-c")


def test_validation_prefix() -> None:
    assert keys.is_validation("val/multi/map") and keys.is_validation("val/loss")
    assert not keys.is_validation("xquad_r/multi/map") and not keys.is_validation("validation/loss")
    assert not keys.is_validation("")
    grid = {"mlqa_r_val/mono/map": 0.5, "mlqa_r_val/multi/map": 0.4, "mlqa_r_val/multi/rank_distance": 3.0,
            "mlqa_r_val/cross/missing_queries": 2.0, "mlqa_r_val/cross/map/de": 0.1,
            "mlqa_r_val/mono/map/de-de": 0.2, "val/time/encode_s": 1.5, "other/mono/map": 0.9}
    assert keys.as_validation(grid, "mlqa_r_val") == {
        "val/mono/map": 0.5, "val/multi/map": 0.4, "val/multi/rank_distance": 3.0, "val/cross/missing_queries": 2.0}


def test_macro_values_and_summary_rows() -> None:
    metrics = {"beir/mono/nDCG10": 0.5, "beir/mono/AP1000": 0.4, "beir/mono/queries": 5.0, "beir/mono/nDCG10/sw": 0.1,
               "beir/index/recall100_vs_exact": 1.0, "beir/time/encode_s": 2.0, "train/loss": 1.0}
    assert list(keys.macro_values(metrics, "beir", keys.MONO).items()) == [
        ("AP1000", 0.4), ("nDCG10", 0.5), ("queries", 5.0)]
    rows = list(keys.summary_rows({"xq/mono/map": 0.8, "xq/multi/r1": 0.5, "xq/multi/rank_distance": 3.5}, ["xq"]))
    assert [(name, setting, bias) for name, setting, _, bias in rows] == [
        ("xq", "mono", None), ("xq", "cross", None), ("xq", "multi", 3.5)]
    assert rows[0][2][0] == 0.8 and rows[2][2][1] == 0.5 and all(map(math.isnan, rows[1][2]))  # NaN if absent


def test_per_query_array_names() -> None:
    assert keys.pair_array_key("de", "de", "map") == "mono/de-de/map"
    assert keys.pair_array_key("de", "zh", "r@10") == "cross/de-zh/r@10"
    assert keys.array_key(keys.MULTI, "de", "rank_distance") == "multi/de/rank_distance"
    parsed = {"mono/de-de/map": ("mono", "de", "de", "map"), "cross/de-zh/r@10": ("cross", "de", "zh", "r@10"),
              "multi/zh/n_relevant": ("multi", "zh", None, "n_relevant")}
    for name, parts in parsed.items():
        assert keys.parse_array_key(name) == parts
    bad_names = {"mono/de-zh/map": "mono takes", "cross/de-de/map": "cross takes", "multi/de-zh/map": "multi takes",
                 "cross/de/map": "cross takes", "time/de/map": "setting 'time'", "mono/de-de": "expected",
                 "xq/mono/de-de/map": "expected"}
    for bad, why in bad_names.items():
        with pytest.raises(MetricKeyError, match=why):
            keys.parse_array_key(bad)


def test_mteb_keys() -> None:
    assert keys.mteb_key("XQuAD-R-pooled", "main_score") == "mteb/XQuAD-R-pooled/main_score"
    assert keys.mteb_key("XQuAD-R-pooled", "ndcg_at_10", "de") == "mteb/XQuAD-R-pooled/ndcg_at_10/de"
    scores = {"mteb/T/main_score": 0.5, "mteb/T/main_score/de": 0.4, "mteb/T/main_score/en": 0.6,
              "mteb/T/ndcg_at_10/de": 0.1, "mteb/U/main_score/de": 0.9}
    assert keys.mteb_subsets(scores, "T", "main_score") == {"de": 0.4, "en": 0.6}
    with pytest.raises(MetricKeyError, match="task='a/b'"):
        keys.mteb_key("a/b", "main_score")


def test_debiased_set_names_round_trip_to_their_base_set() -> None:
    assert keys.debiased_set("xquad_r", "center") == "xquad_r.center"
    assert keys.debiased_set("xquad_r", "lir") == "xquad_r.lir"
    assert keys.debiased_set("xquad_r", "lir", 2) == "xquad_r.lir2"
    for name in ("xquad_r.center", "xquad_r.lir2", "xquad_r"):
        assert keys.base_set(name) == "xquad_r"
    k = keys.parse(keys.key(keys.debiased_set("mlqa_r", "center"), keys.MULTI, "map"))
    assert (k.dataset, k.setting, k.metric) == ("mlqa_r.center", "multi", "map")
    with pytest.raises(keys.MetricKeyError):
        keys.debiased_set("xquad_r.center", "lir")
