"""End to end: `python -m src.evaluate data=beir_fixture` (tiny model, HNSW index) read back from MLflow,
every logged measure checked against ir_measures on the exported run; corpus kinds rejected in training."""

from __future__ import annotations

import csv
from pathlib import Path

import ir_measures
import pytest
from ir_measures import AP, RR, R, nDCG

from src.core.config import ConfigError, validate
from src.evaluation.corpus import MANIFEST, passage_text
from src.model.weights.tiny import build_tiny_model
from tests.data.test_beir import QUERIES, fixture_corpus, write_fixture
from tests.integration.helpers import mlflow_runs, run_module


def test_evaluate_beir_fixture_logs_ir_measures(tmp_path: Path) -> None:
    fixture = write_fixture(tmp_path / "beir")
    texts = [passage_text(d["title"], d["text"]) for d in fixture_corpus()] + list(QUERIES.values())
    model = build_tiny_model(texts, tmp_path / "tiny", vocab_size=300)
    db, out, cache = tmp_path / "mlflow.db", tmp_path / "run", tmp_path / "cache"
    proc = run_module(
        "src.evaluate", "data=beir_fixture", "model=tiny", f"model.pretrained={model}", "trainer.precision=32-true",
        f"logger.tracking_uri=sqlite:///{db}", f"hydra.run.dir={out}", f"paths.cache_dir={cache}",
        "eval.index=hnsw", "eval.hnsw_m=8", "eval.exact_check_queries=5", "eval.corpus_shard_size=8",
        env={"XLIR_BEIR_FIXTURE": str(fixture)}, timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "beir_fixture  AP1000=" in proc.stdout
    runs = mlflow_runs(db)
    assert len(runs) == 1 and runs[0].info.status == "FINISHED"
    m = runs[0].data.metrics
    assert m["beir_fixture/mono/queries"] == 5.0  # q1-q5 are judged; q6 is not
    assert 0.0 <= m["beir_fixture/index/recall100_vs_exact"] <= 1.0  # 30 passages: HNSW finds them all
    assert m["beir_fixture/index/recall100_vs_exact"] == 1.0

    # The same run, scored by ir_measures from the exported TREC file and the fixture's own qrels file.
    run = list(ir_measures.read_trec_run(str(out / "eval" / "beir_fixture" / "run.trec")))
    with open(fixture / "qrels" / "test.tsv", encoding="utf-8") as fh:
        qrels = [ir_measures.Qrel(r["query-id"], r["corpus-id"], int(r["score"]))
                 for r in csv.DictReader(fh, delimiter="\t")]
    expected = ir_measures.calc_aggregate([nDCG @ 10, R @ 100, RR @ 10, AP @ 1000], qrels, run)
    for key, measure in [("nDCG10", nDCG @ 10), ("R100", R @ 100), ("RR10", RR @ 10), ("AP1000", AP @ 1000)]:
        assert m[f"beir_fixture/mono/{key}"] == pytest.approx(expected[measure], abs=1e-6), key
    assert len({(r.query_id, r.doc_id) for r in run}) == 5 * 30  # depth 1000 > corpus: every passage ranked

    manifests = list((cache / "embeddings").glob(f"*/{MANIFEST}"))
    assert len(manifests) == 1 and len(list(manifests[0].parent.glob("shard-*.npy"))) == 4  # 30 rows / 8


def test_evaluate_ddp_two_cpu_ranks_matches_one_process(tmp_path: Path) -> None:
    """`src.evaluate trainer=ddp` with 2 CPU ranks: each encodes its shards, rank 0 searches and logs once."""
    fixture = write_fixture(tmp_path / "beir")
    texts = [passage_text(d["title"], d["text"]) for d in fixture_corpus()] + list(QUERIES.values())
    model = build_tiny_model(texts, tmp_path / "tiny", vocab_size=300)
    metrics = {}
    for name, extra in {"one": [], "ddp": ["trainer=ddp", "trainer.accelerator=cpu", "trainer.devices=2"]}.items():
        db = tmp_path / f"{name}.db"
        proc = run_module(
            "src.evaluate", "data=beir_fixture", "model=tiny", f"model.pretrained={model}", *extra,
            "trainer.precision=32-true", f"logger.tracking_uri=sqlite:///{db}", f"hydra.run.dir={tmp_path / name}",
            f"paths.cache_dir={tmp_path / name / 'cache'}", "eval.corpus_shard_size=8",
            env={"XLIR_BEIR_FIXTURE": str(fixture)}, timeout=600,
        )
        assert proc.returncode == 0, proc.stderr[-3000:]
        runs = mlflow_runs(db)
        assert len(runs) == 1 and runs[0].info.status == "FINISHED", name  # rank 1 opens no run of its own
        metrics[name] = {k: v for k, v in runs[0].data.metrics.items() if "/mono/" in k}
        manifest = next((tmp_path / name / "cache" / "embeddings").glob(f"*/{MANIFEST}"))
        assert len(list(manifest.parent.glob("shard-*.npy"))) == 4  # 30 rows / 8, shards split across ranks
    assert metrics["ddp"].keys() == metrics["one"].keys() and len(metrics["one"]) >= 5
    for key, value in metrics["one"].items():
        assert metrics["ddp"][key] == pytest.approx(value, abs=1e-6), key


def test_training_rejects_corpus_eval_sets(tmp_path: Path) -> None:
    from hydra import compose, initialize_config_dir

    from tests.conftest import ROOT

    with initialize_config_dir(str(ROOT / "conf"), version_base="1.3"):
        cfg = compose("config", overrides=[f"paths.output_dir={tmp_path}",
                                           "+data/eval@data.eval.beir_fixture=beir_fixture"])
    with pytest.raises(ConfigError, match=r"data.eval.beir_fixture.kind='beir'.*src.evaluate"):
        validate(cfg)
