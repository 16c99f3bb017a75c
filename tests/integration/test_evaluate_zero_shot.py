"""`src.evaluate` runs the training run's zero-shot check from the model's recorded training set."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from omegaconf import DictConfig

from src.evaluation.guard import ZeroShotOverlapError
from src.evaluation.provenance import KEY, TrainingFingerprint
from tests.conftest import ROOT, lareqa_json
from tests.integration.helpers import mlflow_runs

LANGS = ["en", "de", "zh"]
OVERLAPPING = ["Where did the cat sit?", "Berlin liegt in Deutschland.", "A sentence of some other corpus."]
DISJOINT = ["A sentence of some other corpus.", "Nothing here is in the evaluation set."]


@pytest.fixture(autouse=True)
def own_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Each in-process run logs to its own store: MLflow keeps the last URI in a global and the environment."""
    import mlflow

    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    yield
    mlflow.set_tracking_uri(None)  # type: ignore[arg-type]  # forget it; monkeypatch restores the environment


@pytest.fixture(scope="module")
def mini(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The conftest LAReQA fixture (en/de/zh) as a module-wide evaluation set."""
    root = tmp_path_factory.mktemp("mini")
    for lang in LANGS:
        (root / f"{lang}.json").write_text(json.dumps(lareqa_json(lang), ensure_ascii=False))
    return root


@pytest.fixture(scope="module")
def tiny(mini: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny model folder with no training-set metadata (like a hub or bundled model)."""
    from src.data.lareqa import load_lareqa
    from src.model.weights.tiny import build_tiny_model

    ds = load_lareqa(mini, LANGS, "mini")
    texts = [t for s in ds.by_lang.values() for t in [q.text for q in s.questions] + [c.sentence for c in s.candidates]]
    return build_tiny_model(texts + OVERLAPPING + DISJOINT, tmp_path_factory.mktemp("tiny") / "model", vocab_size=300)


def exported(tiny: Path, folder: Path, train_texts: list[str]) -> Path:
    """A copy of the tiny model exported as if trained on `train_texts` (set name mini_train)."""
    shutil.copytree(tiny, folder)
    TrainingFingerprint.from_texts("mini_train", ["en", "de"], train_texts, 10).save(folder)
    return folder


def compose_eval(tmp_path: Path, model: Path, mini: Path, *overrides: str) -> DictConfig:
    """`python -m src.evaluate` config: tiny model, the mini set as evaluation set `mini`, a tmp MLflow store."""
    from hydra import compose, initialize_config_dir

    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        return compose("evaluate", overrides=[
            "model=tiny", f"model.pretrained={model}", "trainer.precision=32-true", "eval.exports=false",
            "~data.eval.xquad_r", f"+data.eval.mini={{name: mini, kind: lareqa, domain: test-fixture, path: '{mini}', languages: [en,de,zh]}}",
            f"logger.tracking_uri=sqlite:///{tmp_path / 'mlflow.db'}", f"paths.output_dir={tmp_path / 'run'}",
            f"paths.cache_dir={tmp_path / 'cache'}", *overrides])


def zero_shot_tag(tmp_path: Path) -> str:
    """The `zero_shot_check` tag of the one FINISHED evaluation run in the tmp store."""
    runs = mlflow_runs(tmp_path / "mlflow.db")
    assert len(runs) == 1 and runs[0].info.status == "FINISHED"
    return runs[0].data.tags["zero_shot_check"]


def test_refuses_set_the_model_was_trained_on(tmp_path: Path, tiny: Path, mini: Path) -> None:
    from src.evaluate import evaluate

    model = exported(tiny, tmp_path / "model", OVERLAPPING)
    with pytest.raises(ZeroShotOverlapError, match=r"2 evaluation texts also occur in training set 'mini_train' "
                       r"\(evaluation set 'mini': 2 texts, e.g. .*Where did the cat sit\?.*eval.allow_overlap=true"):
        evaluate(compose_eval(tmp_path, model, mini))
    assert mlflow_runs(tmp_path / "mlflow.db") == []  # refused before a run opened


def test_allow_overlap_evaluates_and_tags(tmp_path: Path, tiny: Path, mini: Path) -> None:
    from src.evaluate import evaluate

    model = exported(tiny, tmp_path / "model", OVERLAPPING)
    metrics = evaluate(compose_eval(tmp_path, model, mini, "eval.allow_overlap=true"))
    assert "mini/mono/map" in metrics
    assert zero_shot_tag(tmp_path) == "overlap allowed: 2 overlapping texts"
    assert mlflow_runs(tmp_path / "mlflow.db")[0].data.tags["trained_on"].startswith("mini_train:")


def test_disjoint_set_passes(tmp_path: Path, tiny: Path, mini: Path) -> None:
    from src.evaluate import evaluate

    evaluate(compose_eval(tmp_path, exported(tiny, tmp_path / "model", DISJOINT), mini))
    assert zero_shot_tag(tmp_path) == "passed: 0 overlapping texts"


def test_model_without_metadata_is_not_checked(tmp_path: Path, tiny: Path, mini: Path) -> None:
    from src.evaluate import evaluate

    evaluate(compose_eval(tmp_path, tiny, mini))
    assert zero_shot_tag(tmp_path) == "not checked: no training-set metadata"


def test_checkpoint_records_training_set(tmp_path: Path, tiny: Path, mini: Path) -> None:
    """ckpt_path= on a plain model folder: the checkpoint's own entry is what refuses the set."""
    from src.evaluate import evaluate
    from src.model.encoder import BiEncoder

    encoder = BiEncoder(str(tiny))
    fingerprint = TrainingFingerprint.from_texts("mini_train", ["en", "de"], OVERLAPPING, 10)
    torch.save({"state_dict": {f"encoder.{k}": v for k, v in encoder.state_dict().items()},
                KEY: fingerprint.to_checkpoint()}, tmp_path / "last.ckpt")
    with pytest.raises(ZeroShotOverlapError, match="training set 'mini_train'"):
        evaluate(compose_eval(tmp_path, tiny, mini, f"ckpt_path={tmp_path / 'last.ckpt'}"))
    assert mlflow_runs(tmp_path / "mlflow.db") == []


def test_mlqa_r_model_refuses_mlqa_r(tmp_path: Path, tiny: Path, real_data: Path) -> None:
    """Trained on MLQA-R (texts as src.run hashes them), evaluated on MLQA-R: refused with real examples."""
    from hydra import compose, initialize_config_dir

    from src.data.sets import load_training_pairs
    from src.evaluate import evaluate

    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        train_cfg = compose("config", overrides=[f"paths.data_dir={real_data.parent}", "paths.output_dir=unused"])
        pairs = load_training_pairs(train_cfg.data.train, 42)
        model = tmp_path / "model"
        shutil.copytree(tiny, model)
        TrainingFingerprint.from_texts(train_cfg.data.train.name, train_cfg.data.train.languages,
                                       pairs.queries + pairs.passages, 10).save(model)
        cfg = compose("evaluate", overrides=[
            "data=mlqa_r", "data.eval.mlqa_r.languages=[en,de]", "model=tiny", f"model.pretrained={model}",
            f"paths.data_dir={real_data.parent}", f"logger.tracking_uri=sqlite:///{tmp_path / 'mlflow.db'}",
            f"paths.output_dir={tmp_path / 'run'}"])
    with pytest.raises(ZeroShotOverlapError, match=r"in training set 'mlqa_r' \(evaluation set 'mlqa_r': \d+ texts"):
        evaluate(cfg)
    assert mlflow_runs(tmp_path / "mlflow.db") == []


def test_debias_variants_are_logged_and_exported_as_their_own_sets(tmp_path: Path, tiny: Path, mini: Path) -> None:
    from src.evaluate import evaluate

    metrics = evaluate(compose_eval(tmp_path, tiny, mini, "eval.debias=[center,lir]", "eval.debias_k=2",
                                    "eval.exports=true", "eval.trec_depth=5"))
    for name in ("mini", "mini.center", "mini.lir2"):
        assert f"{name}/multi/map" in metrics and f"{name}/multi/rank_distance" in metrics
    logged = mlflow_runs(tmp_path / "mlflow.db")[0]
    assert logged.data.metrics["mini.center/multi/map"] == pytest.approx(metrics["mini.center/multi/map"])
    assert (logged.data.params["eval.debias"], logged.data.params["eval.debias_k"]) == ("['center', 'lir']", "2")
    run = tmp_path / "run" / "eval"
    assert (run / "mini" / "trec").is_dir() and (run / "mini.center" / "per_query.npz").is_file()
    assert not (run / "mini.center" / "trec").exists()  # variants: grid files and per-query metrics only
