"""Every config group option composes and validates; wrong keys and values fail naming the key."""

from __future__ import annotations

from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig, OmegaConf

from src.core.config import ConfigError, validate

CONF = Path(__file__).resolve().parents[2] / "conf"


def options(group: str) -> list[str]:
    """Selectable options of a config group (files starting with _ are shared bases)."""
    return sorted(p.stem for p in (CONF / group).glob("*.yaml") if not p.stem.startswith("_"))


def make_cfg(*overrides: str) -> DictConfig:
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return compose("config", overrides=["paths.output_dir=/tmp/xlir-test", *overrides])


@pytest.mark.parametrize(
    "override",
    [f"model={m}" for m in options("model")]
    + [f"sampling={s}" for s in options("sampling")]
    + [f"trainer={t}" for t in options("trainer")]
    + [f"experiment={e}" for e in options("experiment")]
    + [f"data={d}" for d in options("data")],
)
def test_every_option_composes_and_validates(override: str) -> None:
    cfg = make_cfg(override)
    validate(cfg)
    assert cfg.model.encoder._target_ == "src.model.encoder.BiEncoder"


def test_group_options_exist() -> None:
    assert options("model") == ["labse", "mbert", "me5_small", "me5_small_bundled", "tiny", "xlmr"]
    assert options("sampling") == ["hybrid", "round_robin", "xx", "xx_mixed", "xy"]
    assert options("trainer") == ["cpu", "ddp", "gpu"]


def test_default_composition() -> None:
    cfg = make_cfg()
    assert (cfg.model.name, cfg.sampling.name, cfg.sampling.alpha) == ("me5_small_bundled", "hybrid", 0.5)
    assert cfg.data.train.name == "mlqa_r" and list(cfg.data.eval) == ["xquad_r"]
    assert cfg.logger.tracking_uri == "sqlite:///mlflow.db"


def test_paper_preset() -> None:
    cfg = make_cfg("experiment=paper_labse")
    assert cfg.model.pretrained == "sentence-transformers/LaBSE"
    assert (cfg.optim.lr, cfg.optim.weight_decay, cfg.data.batch_size, cfg.sampling.alpha) == (3e-5, 0.01, 100, 0.5)
    assert cfg.optim.optimizer._target_ == "torch.optim.AdamW"


@pytest.mark.parametrize(
    ("overrides", "key"),
    [
        (["sampling.alpha=1.5"], "sampling.alpha"),
        (["sampling.alpha=-0.1"], "sampling.alpha"),
        (["sampling.alpha=null"], "sampling.alpha"),
        (["sampling=xy", "sampling.name=xx"], "sampling.name"),
        (["loss.temperature=0"], "loss.temperature"),
        (["data.batch_size=many"], "data.batch_size"),
        (["+model.poolin=cls"], "model.poolin"),
        (["model.pooling=max"], "model.pooling"),
        (["data.train.languages=[en,english]"], "languages"),
        (["optim.warmup_ratio=2"], "optim.warmup_ratio"),
        (["model.pad_to_multiple_of=0"], "model.pad_to_multiple_of"),
        (["eval.debias=pca"], "eval.debias"),
        (["eval.debias=[center,pca]"], "eval.debias"),
        (["eval.debias_k=0"], "eval.debias_k"),
        (["trainer=ddp", "trainer.strategy.timeout_s=0"], "trainer.strategy.timeout_s"),
    ],
)
def test_bad_values_name_the_key(overrides: list[str], key: str) -> None:
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        validate(make_cfg(*overrides))


def test_early_stopping_off_by_default_on_in_comparison_presets() -> None:
    assert make_cfg().callbacks.early_stopping is None
    for preset in options("sweep"):
        cfg = make_cfg(f"sweep={preset}")
        validate(cfg)
        if preset.startswith("study"):  # the same pair budget for every sampler: no early stop, selection only
            assert cfg.callbacks.early_stopping is None, preset
        else:
            assert cfg.callbacks.early_stopping.monitor == "val/loss", preset
        assert cfg.callbacks.best_checkpoint.monitor == "val/loss", preset
        # comparison runs are longer than the quick default and validate several times to select a step
        assert cfg.trainer.max_steps // cfg.trainer.val_check_interval >= 3, preset


def test_bad_val_fraction_names_the_key() -> None:
    with pytest.raises(ConfigError, match=r"data.train.val_fraction=1.5: expected a fraction in \[0, 1\)"):
        validate(make_cfg("data.train.val_fraction=1.5"))


def test_presets_override_the_root_configs_values() -> None:
    """`_self_` comes first in config.yaml: presets may set keys that config.yaml itself defines (eval.*)."""
    assert make_cfg().eval.batch_size == 32 and make_cfg().eval.debias == "none"
    assert make_cfg("experiment=paper_labse").eval.batch_size == 512
    study = make_cfg("sweep=study")
    assert list(study.eval.debias) == ["center", "lir"] and study.eval.trec_depth == 10
    assert study.logger.experiment_name == "study" and study.trainer.max_steps == 300
    assert study.callbacks.model_checkpoint.every_n_train_steps == 50  # a kill loses at most 50 steps
    alpha = make_cfg("sweep=study_alpha", "sampling.alpha=0.25")
    differs = {k for k in ("trainer", "eval", "callbacks", "model", "data", "optim", "loss")
               if OmegaConf.to_container(alpha[k]) != OmegaConf.to_container(study[k])}
    assert not differs and alpha.sampling.name == "hybrid"  # the alpha curve differs from the study by alpha only
