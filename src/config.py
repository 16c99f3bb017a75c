"""Typed schema for the composed Hydra config: wrong keys, types or values fail before any work starts."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from omegaconf import MISSING, DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

SAMPLERS = ("xx", "xx_mixed", "xy", "hybrid")
DATASET_KINDS = ("lareqa",)


class ConfigError(ValueError):
    """A config key has a wrong name, type or value; the message names the key."""


def _check(ok: bool, key: str, expected: str, value: Any) -> None:
    """Raise ConfigError naming the key and what was expected."""
    if not ok:
        raise ConfigError(f"{key}={value!r}: expected {expected}")


def _check_languages(key: str, langs: list[str]) -> None:
    """ISO 639-1 codes, no repeats."""
    _check(bool(langs), key, "a non-empty list of ISO 639-1 language codes", langs)
    for lang in langs:
        _check(isinstance(lang, str) and len(lang) == 2 and lang.isalpha() and lang.islower(), key,
               "ISO 639-1 codes such as en, de, zh", lang)
    _check(len(set(langs)) == len(langs), key, "no repeated languages", langs)


@dataclass
class PathsSchema:
    root_dir: str = "."
    data_dir: str = "data"
    cache_dir: str = ".cache"
    output_dir: str = "outputs"


@dataclass
class ModelSchema:
    name: str = "???"
    pretrained: str = "???"
    pooling: str = "mean"
    query_prefix: str = ""
    passage_prefix: str = ""
    max_query_length: int = 64
    max_passage_length: int = 128
    freeze_embeddings: bool = False
    gradient_checkpointing: bool = False
    prepare: Any = None
    encoder: Any = None

    def __post_init__(self) -> None:
        _check(self.pooling in ("mean", "cls", "pooler"), "model.pooling", "one of mean, cls, pooler", self.pooling)
        _check(self.max_query_length > 0, "model.max_query_length", "> 0", self.max_query_length)
        _check(self.max_passage_length > 0, "model.max_passage_length", "> 0", self.max_passage_length)


@dataclass
class DatasetSchema:
    name: str = "???"
    kind: str = "lareqa"
    path: str = "???"
    languages: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        _check(self.kind in DATASET_KINDS, f"data.*.{self.name}.kind", f"one of {DATASET_KINDS}", self.kind)
        _check_languages(f"data ({self.name}).languages", self.languages)


@dataclass
class TrainSetSchema(DatasetSchema):
    candidate_text: str = "sentence"
    hard_negatives: bool = True
    # kind=hub (parallel hub datasets such as mMARCO): language -> dataset config, split, size, columns
    subsets: dict[str, str] = field(default_factory=dict)
    split: str = "train"
    max_rows: int = 50_000
    columns: dict[str, str | None] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.kind == "hub":
            _check_languages("data.train.languages", self.languages)
            missing = [lang for lang in self.languages if lang not in self.subsets]
            _check(not missing, "data.train.subsets", f"a dataset config for every language (missing {missing})",
                   dict(self.subsets))
            _check(self.max_rows > 0, "data.train.max_rows", "> 0", self.max_rows)
        else:
            super().__post_init__()
        _check(self.candidate_text in ("sentence", "sentence_context"), "data.train.candidate_text",
               "sentence or sentence_context", self.candidate_text)


@dataclass
class DataSchema:
    train: TrainSetSchema | None = None
    eval: dict[str, DatasetSchema] = field(default_factory=dict)
    batch_size: int = 32
    num_workers: int = 0

    def __post_init__(self) -> None:
        _check(self.batch_size >= 2, "data.batch_size", "an integer >= 2 (in-batch negatives)", self.batch_size)
        _check(self.num_workers >= 0, "data.num_workers", ">= 0", self.num_workers)


@dataclass
class SamplingSchema:
    name: str = "???"
    alpha: float | None = None
    sampler: Any = None

    def __post_init__(self) -> None:
        _check(self.name in SAMPLERS, "sampling.name", f"one of {', '.join(SAMPLERS)}", self.name)
        if self.name == "hybrid":
            _check(self.alpha is not None and 0.0 <= self.alpha <= 1.0, "sampling.alpha",
                   "a probability in [0, 1]", self.alpha)


@dataclass
class LossSchema:
    _target_: str = "src.model.loss.InfoNCELoss"
    temperature: float = 0.05
    in_batch_positives: bool = True

    def __post_init__(self) -> None:
        _check(self.temperature > 0, "loss.temperature", "> 0", self.temperature)


@dataclass
class OptimSchema:
    lr: float = 3e-5
    weight_decay: float = 0.01
    warmup_ratio: float = 0.1
    optimizer: Any = None

    def __post_init__(self) -> None:
        _check(self.lr > 0, "optim.lr", "> 0", self.lr)
        _check(self.weight_decay >= 0, "optim.weight_decay", ">= 0", self.weight_decay)
        _check(0 <= self.warmup_ratio <= 1, "optim.warmup_ratio", "in [0, 1]", self.warmup_ratio)


@dataclass
class LoggerSchema:
    experiment_name: str = "xlir"
    tracking_uri: str = "sqlite:///mlflow.db"
    run_name: str | None = None


@dataclass
class EvalSchema:
    batch_size: int = 128
    candidate_text: str = "sentence"
    allow_overlap: bool = False
    overlap_min_chars: int = 10
    exports: bool = True
    trec_depth: int = 100
    save_embeddings: bool = False
    log_large_artifacts: bool = False

    def __post_init__(self) -> None:
        _check(self.batch_size > 0, "eval.batch_size", "> 0", self.batch_size)
        _check(self.candidate_text in ("sentence", "sentence_context"), "eval.candidate_text",
               "sentence or sentence_context", self.candidate_text)
        _check(self.trec_depth >= 0, "eval.trec_depth", ">= 0 (0 = full ranking)", self.trec_depth)
        _check(self.overlap_min_chars >= 0, "eval.overlap_min_chars", ">= 0", self.overlap_min_chars)


@dataclass
class ConfigSchema:
    task_name: str = "train"
    seed: int = 42
    ckpt_path: str | None = None
    export_model: bool = True
    paths: PathsSchema = MISSING
    model: ModelSchema = MISSING
    data: DataSchema = MISSING
    sampling: SamplingSchema = MISSING
    loss: LossSchema = MISSING
    optim: OptimSchema = MISSING
    trainer: Any = None
    logger: LoggerSchema = MISSING
    callbacks: Any = None
    eval: EvalSchema = MISSING


def validate(cfg: DictConfig) -> ConfigSchema:
    """Check the composed config against the schema; raise ConfigError naming the offending key."""
    user = OmegaConf.to_container(cfg, resolve=True)
    assert isinstance(user, dict)
    user.pop("hydra", None)
    try:
        merged = OmegaConf.merge(OmegaConf.structured(ConfigSchema), user)
        return OmegaConf.to_object(merged)  # type: ignore[return-value]  # runs the __post_init__ checks
    except OmegaConfBaseException as err:
        key = getattr(err, "full_key", None)
        raise ConfigError(f"config key {key!r}: {err.msg if hasattr(err, 'msg') else err}") from err
