"""The benchmark harness on trivial functions, the data slicing it relies on, and a --quick smoke run."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from bench import harness
from bench.__main__ import fmt_ratio, markdown_table, parse_args
from bench.common import article_subset, has_sentence_transformers, replicate
from bench.encoding import min_cosine
from bench.memory import OPTIONS as MEMORY_OPTIONS
from bench.scaling import growth
from src.data.lareqa import load_lareqa
from src.evaluation.grid import relevance


def test_paired_ratios_use_medians_and_per_repetition_extremes() -> None:
    r = harness.paired_ratios([2.0, 4.0, 9.0], [1.0, 2.0, 3.0])
    assert r == {"median": 4.0 / 2.0, "min": 2.0, "max": 3.0}
    with pytest.raises(ValueError, match="equally many"):
        harness.paired_ratios([1.0], [1.0, 2.0])


def test_alternate_interleaves_arms_and_rotates_the_order() -> None:
    calls: list[str] = []
    arms = {"a": lambda: calls.append("a"), "b": lambda: calls.append("b")}
    res = harness.alternate(arms, baseline="b", repetitions=3, warmup=1, log=None)
    # warm-up a b, then rounds a b / b a / a b: neither arm always follows the other
    assert calls == ["a", "b", "a", "b", "b", "a", "a", "b"]
    assert set(res.arms) == {"a", "b"} and set(res.ratios) == {"a"}
    assert all(len(s.seconds) == 3 for s in res.arms.values())


def test_alternate_measures_a_slower_arm_as_slower() -> None:
    res = harness.alternate({"slow": lambda: time.sleep(0.02), "fast": lambda: None}, baseline="fast",
                            repetitions=3, warmup=0, log=None)
    assert res.arms["slow"].median_s >= 0.02 > res.arms["fast"].median_s
    assert res.ratios["slow"]["min"] > 1.0


def test_timed_result_replaces_the_wall_time_and_is_unwrapped() -> None:
    res = harness.alternate({"a": lambda: harness.Timed(5.0, "payload"), "b": lambda: harness.Timed(2.0)},
                            baseline="b", repetitions=2, warmup=0, log=None)
    assert res.arms["a"].seconds == [5.0, 5.0] and res.ratios["a"]["median"] == 2.5
    assert res.last_results["a"] == "payload"


def test_bad_arguments_are_rejected() -> None:
    with pytest.raises(ValueError, match="baseline 'c'"):
        harness.alternate({"a": lambda: None}, baseline="c")
    with pytest.raises(ValueError, match="repetitions"):
        harness.alternate({"a": lambda: None}, baseline="a", repetitions=0)
    with pytest.raises(SystemExit):
        parse_args(["nope"])


_RUN_ONCE_IN_A_FRESH_PROCESS = """
import json, numpy as np
from bench import harness
sample, out = harness.run_once(lambda: np.ones(10_000_000).sum(), trace_python=True)
print(json.dumps({"out": float(out), "py": sample.py_peak_mib, "rss": sample.rss_peak_mib,
                  "tracked": harness.rss_peak_is_tracked()}))
"""


def _last_line_of_python(code: str) -> str:
    """Run `code` in a fresh interpreter at the project root; the last line it printed."""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                          cwd=Path(__file__).resolve().parents[1])
    return proc.stdout.strip().splitlines()[-1]


def test_run_once_sees_python_and_rss_peaks() -> None:
    # A fresh process: RSS is process-wide, and threads left by earlier tests (torch, mlflow) can free memory
    # inside the window and hide part of the rise; nor does a fresh process have a free heap that could serve
    # the 76 MiB from pages already resident.
    got = json.loads(_last_line_of_python(_RUN_ONCE_IN_A_FRESH_PROCESS))
    assert got["out"] == 10_000_000
    assert got["py"] is not None and got["py"] >= 76
    if got["tracked"]:
        assert got["rss"] is not None and got["rss"] >= 70
    else:  # a kernel that loses freed peaks gets no number rather than a wrong one
        assert got["rss"] is None


def test_a_high_water_mark_that_misses_a_freed_buffer_is_not_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    # a kernel whose VmHWM never rises above VmRSS at the start: the probe sees it, run_once reports None
    monkeypatch.setattr(harness, "_proc_status_kib", lambda key: 1000)
    harness.rss_peak_is_tracked.cache_clear()
    try:
        assert harness.rss_peak_is_tracked() is False
        sample, _ = harness.run_once(lambda: None)
        assert sample.rss_peak_mib is None
    finally:
        harness.rss_peak_is_tracked.cache_clear()


def test_write_result_stamps_the_machine(tmp_path: Path) -> None:
    path = harness.write_result("demo", {"rows": []}, tmp_path)
    data = json.loads(path.read_text())
    assert data["comparison"] == "demo" and data["machine"]["torch"] and data["machine"]["cpus"] >= 1


def test_table_marks_unmet_goals() -> None:
    rows = [{"comparison": "x", "setting": "s", "project_s": 2.0, "reference_s": 1.0,
             "ratio": {"median": 2.0, "min": 1.5, "max": 2.5}, "goal": "<= 1", "met": False, "extra": ""}]
    table = markdown_table(rows)
    assert "**NOT MET**" in table and "2.000 (1.500–2.500)" in table
    assert fmt_ratio(None) == "—"


def test_min_cosine_and_growth() -> None:
    a = np.array([[1.0, 0.0], [0.0, 2.0]], dtype=np.float32)
    b = np.array([[1.0, 0.0], [1.0, 1.0]], dtype=np.float32)
    assert min_cosine(a, b) == pytest.approx(2 ** -0.5)
    assert growth([1.0, 2.0, 8.0], [1, 2, 4]) == [1.0, 1.0, 2.0]


def test_article_subset_and_replicate_keep_every_query_answered(lareqa_dir: Path) -> None:
    ds = load_lareqa(lareqa_dir, ["en", "de", "zh"], "toy")
    sub = article_subset(ds, 1)
    assert 0 < sub.num_candidates <= ds.num_candidates
    assert all(c.uid.split(":")[1].startswith("0-") for x in sub.languages for c in sub.by_lang[x].candidates)
    big = replicate(sub, 3)
    assert big.languages == ("en", "de", "zh", "en1", "de1", "zh1", "en2", "de2", "zh2")
    assert big.num_questions == 3 * sub.num_questions and big.num_candidates == 3 * sub.num_candidates
    rel = relevance(big, "de2", big.languages)
    # a copy-2 question is answered in copy-2 languages only (its own at least), never by an original or copy 1
    assert (rel[:, 7] >= 0).all() and (rel[:, :6] == -1).all()


@pytest.mark.skipif(not Path("data/lareqa/mlqa-r").exists(), reason="real data not linked (make data)")
def test_quick_run_writes_results(tmp_path: Path) -> None:
    from bench.__main__ import main

    names = ["train_step", "scaling"] + (["grid"] if has_sentence_transformers() else [])
    assert main([*names, "--quick", "--threads", "1", "--results-dir", str(tmp_path)]) == 0
    for name in names:
        data = json.loads((tmp_path / f"{name}.json").read_text())
        assert data["quick"] and data["rows"]
        assert all(r["project_s"] is None or r["project_s"] > 0 for r in data["rows"])
    assert "| comparison |" in (tmp_path / f"summary-{'-'.join(names)}-quick.md").read_text()


def test_ir_inputs_mirror_the_project_relevance(lareqa_dir: Path) -> None:
    from bench.grid import ir_inputs

    ds = load_lareqa(lareqa_dir, ["en", "de", "zh"], "toy")
    queries, corpus, relevant = ir_inputs(ds, ["de"], ["en", "de", "zh"])
    assert set(queries) == {q.qid for q in ds.by_lang["de"].questions}
    ids = list(corpus)
    assert ids == sorted(ids) and len(ids) == ds.num_candidates  # string order = pool order (tie-break)
    rel = relevance(ds, "de", ds.languages)
    for i, q in enumerate(ds.by_lang["de"].questions):
        assert relevant[q.qid] == {ids[j] for j in rel[i] if j >= 0}


@pytest.mark.skipif(not has_sentence_transformers(), reason="needs the bench extra (sentence-transformers)")
def test_ir_evaluator_map_equals_project_map_on_the_same_vectors(lareqa_dir: Path, tmp_path: Path) -> None:
    from bench.grid import map_agreement
    from src.model.encoder import BiEncoder
    from src.model.weights.tiny import build_tiny_model

    ds = load_lareqa(lareqa_dir, ["en", "de", "zh"], "toy")
    texts = [q.text for x in ds.languages for q in ds.by_lang[x].questions]
    texts += [c.sentence for x in ds.languages for c in ds.by_lang[x].candidates]
    enc = BiEncoder(str(build_tiny_model(texts, tmp_path / "tiny", vocab_size=200, hidden_size=16,
                                         num_layers=1, num_heads=2, intermediate_size=32)))
    out = map_agreement(enc, ds, batch_size=8)
    assert out["compared"] == 10 and out["max_abs_diff"] <= 1e-9


def test_precision_row_checks_autos_pick_against_the_faster() -> None:
    from bench.precision import auto_row

    medians = {"32-true": 2.0, "bf16-mixed": 1.0}
    good = auto_row("encoding", medians, "bf16-mixed", "s", "")
    assert good["met"] and good["ratio"]["median"] == 1.0
    bad = auto_row("encoding", medians, "32-true", "s", "")
    assert not bad["met"] and bad["ratio"]["median"] == 2.0 and "fastest bf16-mixed" in bad["extra"]


def test_cap_isa_results_go_to_their_own_folder() -> None:
    from bench.__main__ import ISA_CAPS, RESULTS_DIR, parse_args

    args = parse_args(["precision", "--cap-isa", "avx2"])
    assert args.results_dir == RESULTS_DIR / "isa-avx2" and ISA_CAPS["avx2"]["ONEDNN_MAX_CPU_ISA"] == "AVX2"
    assert parse_args(["precision"]).results_dir == RESULTS_DIR


@pytest.mark.parametrize("option", sorted(MEMORY_OPTIONS))
def test_memory_bench_overrides_compose_and_validate(option: str, tmp_path: Path) -> None:
    from bench.memory import overrides
    from src.core.config import validate
    from tests.core.test_config import make_cfg

    cfg = make_cfg(*(o for o in overrides(option, 150, tmp_path, "sqlite:///x.db") if not o.startswith("hydra.")))
    validate(cfg)
    assert cfg.callbacks.retrieval_eval.at_train_end is False and cfg.trainer.max_steps == 150


@pytest.mark.skipif(not Path("data/lareqa/mlqa-r").exists(), reason="real data not linked (make data)")
def test_trim_cost_alternates_trimmed_and_plain_blocks() -> None:
    from bench.memory import trim_cost

    result = trim_cost(blocks=2, block_steps=2, model="tiny")
    (row,) = result["rows"]
    assert row["project_s"] > 0 and row["reference_s"] > 0 and row["ratio"]["median"] > 0
    assert "tiny" in row["setting"] and "alternated" in row["setting"]


def test_the_rss_probe_sees_fresh_pages_in_a_process_with_a_large_free_heap() -> None:
    # bench processes hold a big, partly free heap (a model's activations): the probe must not be fooled by it
    # 100 MB of 100 kB blocks (malloc's heap, not mmap), touched, then freed below a live block: the heap keeps
    # them resident, and a 64 MiB malloc is served from them without any RSS rise (seen: +0 MiB)
    code = ("from bench import harness\n"
            "keep = [bytearray(b'\\x01' * 100_000) for _ in range(1000)]\npin = bytearray(100_000)\ndel keep\n"
            "print(harness.rss_peak_is_tracked())")
    fresh = "from bench import harness; print(harness.rss_peak_is_tracked())"
    assert _last_line_of_python(code) == _last_line_of_python(fresh)  # the same verdict as in a fresh process
