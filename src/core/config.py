"""Typed schema for the composed Hydra config: wrong keys, types or values fail before any work starts.

The schema holds no default values: conf/ is their one source, so every field a config file sets is MISSING
here (a value no config file gives fails naming its key). Fields that only some kinds use default to None.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from omegaconf import MISSING, DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from src.core.specs import IndexSpec, debias_methods, parse_measure

DATASET_KINDS = ("lareqa", "bitext", "miracl", "beir")
# Kinds with a corpus searched through an index (src/evaluation/retrieval.py) rather than the LAReQA grid.
CORPUS_KINDS = ("miracl", "beir")
# Kinds encoded once in-process and scored as a language grid (src/evaluation/kinds.py): training can run them.
GRID_KINDS = ("lareqa", "bitext")
# The file formats a kind reads (`format:`; null = the kind's own): the LAReQA grid also reads NTREX-128
# documents (headline -> lead), translation retrieval reads the four aligned-text publishers' layouts.
FORMATS = {"lareqa": ("lareqa", "ntrex"), "bitext": ("ntrex", "sib200", "tico19", "tatoeba")}
NTREX_CANDIDATES = ("lines", "body")  # an NTREX grid's candidates: every body line, or one body per document
# A set's subject, for the report's grouping: lower-case words joined by '-' (wikipedia-qa, news, medical).
_DOMAIN = re.compile(r"[a-z0-9]+(-[a-z0-9]+)*")
MIRACL_SPLITS = ("train", "dev")  # splits with public qrels
# Export subfolders (src/evaluation/artifacts) too large to upload by default (eval.log_large_artifacts).
LARGE_ARTIFACTS = ("trec", "embeddings")


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


def _check_domain(key: str, domain: str) -> None:
    """A domain label: lower-case words joined by '-'."""
    _check(isinstance(domain, str) and bool(_DOMAIN.fullmatch(domain)), key,
           "a lower-case label such as wikipedia-qa, news, web, medical, everyday", domain)


@dataclass
class PathsSchema:
    root_dir: str = MISSING
    data_dir: str = MISSING
    cache_dir: str = MISSING
    output_dir: str = MISSING


@dataclass
class ModelSchema:
    name: str = MISSING
    pretrained: str = MISSING
    pooling: str = MISSING
    query_prefix: str = MISSING
    passage_prefix: str = MISSING
    max_query_length: int = MISSING
    max_passage_length: int = MISSING
    freeze_embeddings: bool = MISSING
    gradient_checkpointing: bool = MISSING
    gather_negatives: bool = MISSING
    cached_negatives: bool = MISSING
    cache_chunk_size: int = MISSING
    length_buckets: int = MISSING
    pad_to_multiple_of: int = MISSING
    prepare: Any = MISSING
    encoder: Any = MISSING

    def __post_init__(self) -> None:
        _check(self.pooling in ("mean", "cls", "pooler"), "model.pooling", "one of mean, cls, pooler", self.pooling)
        _check(self.length_buckets >= 1, "model.length_buckets", ">= 1 (forwards per side; 1 = one)",
               self.length_buckets)
        _check(self.pad_to_multiple_of >= 1, "model.pad_to_multiple_of", ">= 1 (1 = pad to the longest row)",
               self.pad_to_multiple_of)
        _check(self.cache_chunk_size >= 1, "model.cache_chunk_size", ">= 1 (rows per GradCache chunk)",
               self.cache_chunk_size)
        _check(self.max_query_length > 0, "model.max_query_length", "> 0", self.max_query_length)
        _check(self.max_passage_length > 0, "model.max_passage_length", "> 0", self.max_passage_length)


@dataclass
class DatasetSchema:
    """One dataset; `kind` decides which of the other fields it needs (checked per kind below)."""

    name: str = MISSING
    kind: str = MISSING
    # What the texts are about (wikipedia-qa, news, web, medical, everyday, ...): the report groups sets by it.
    domain: str = MISSING
    # lareqa/beir: the local folder; miracl: a local folder in the hub layout, or null to download.
    path: str | None = MISSING
    languages: list[str] = MISSING
    # beir: the qrels file qrels/{split}.tsv; miracl: the topics/qrels split (dev). Unused by lareqa.
    split: str | None = None
    # miracl only: the hub datasets used when path is null.
    hub_topics: str | None = None
    hub_corpus: str | None = None
    # beir/miracl: evaluate only the first N queries (per language) with judgements; null = all.
    max_queries: int | None = None
    # lareqa/bitext: the publisher's layout the files are in (FORMATS); null = the kind's own (lareqa: SQuAD JSON).
    format: str | None = None
    # lareqa with format=ntrex: `lines` (every body line a candidate, the lead relevant) or `body` (one per document).
    candidates: str | None = None
    # bitext with format=tico19: keep only the segments whose `tuid` starts with one of these origins; null = all.
    origins: list[str] | None = None

    def __post_init__(self) -> None:
        # TrainSetSchema (data.train) extends this schema; eval sets live under data.eval.<name>.
        key = "data.train" if hasattr(self, "candidate_text") else f"data.eval.{self.name}"
        _check(self.kind in DATASET_KINDS, f"{key}.kind", f"one of {DATASET_KINDS}", self.kind)
        _check_domain(f"{key}.domain", self.domain)
        self._check_format(key)
        if self.kind != "miracl":
            _check(self.path is not None, f"{key}.path", f"a folder (kind={self.kind})", self.path)
            for extra in ("hub_topics", "hub_corpus"):
                _check(getattr(self, extra) is None, f"{key}.{extra}", "null (only kind=miracl uses it)",
                       getattr(self, extra))
        if self.kind in FORMATS:
            _check_languages(f"data ({self.name}).languages", self.languages)
            return
        _check(bool(self.split), f"{key}.split", "a split name such as test or dev", self.split)
        _check(self.max_queries is None or self.max_queries > 0, f"{key}.max_queries", "> 0 or null",
               self.max_queries)
        if self.kind == "beir":
            # A BEIR folder is one monolingual corpus; its language (optional) only labels the run.
            _check(len(self.languages) <= 1, f"{key}.languages", "at most one language (one corpus)",
                   self.languages)
            if self.languages:
                _check_languages(f"{key}.languages", self.languages)
        else:
            _check_languages(f"{key}.languages", self.languages)
            _check(self.split in MIRACL_SPLITS, f"{key}.split", f"one of {MIRACL_SPLITS}", self.split)
            _check(self.path is not None or (bool(self.hub_topics) and bool(self.hub_corpus)),
                   f"{key}.hub_topics/hub_corpus", "hub dataset names when path is null",
                   (self.hub_topics, self.hub_corpus))


    def _check_format(self, key: str) -> None:
        """`format`, `candidates` and `origins` only where the kind and format use them."""
        formats = FORMATS.get(self.kind, ())
        _check(self.kind != "bitext" or self.format is not None, f"{key}.format", f"one of {formats}", self.format)
        _check(self.format is None or self.format in formats, f"{key}.format",
               f"one of {formats} for kind={self.kind}" if formats else f"null (kind={self.kind} has one format)",
               self.format)
        ntrex_grid = self.kind == "lareqa" and self.format == "ntrex"
        _check((self.candidates in NTREX_CANDIDATES) if ntrex_grid else self.candidates is None, f"{key}.candidates",
               f"one of {NTREX_CANDIDATES}" if ntrex_grid else "null (only kind=lareqa format=ntrex uses it)",
               self.candidates)
        if self.kind == "bitext" and self.format == "tico19":
            _check(self.origins is None or (bool(self.origins) and all(isinstance(o, str) and o for o in self.origins)),
                   f"{key}.origins", "null (every segment) or a non-empty list of tuid prefixes such as PubMed, CMU",
                   self.origins)
        else:
            _check(self.origins is None, f"{key}.origins", "null (only kind=bitext format=tico19 uses it)", self.origins)


@dataclass
class TrainSetSchema(DatasetSchema):
    candidate_text: str = MISSING
    hard_negatives: bool = MISSING
    # kind=hub (parallel hub datasets such as mMARCO): language -> dataset config, split, size, columns
    subsets: dict[str, str] = field(default_factory=dict)
    max_rows: int | None = None
    columns: dict[str, str | None] = field(default_factory=dict)
    val_fraction: float = MISSING

    def __post_init__(self) -> None:
        _check(0.0 <= self.val_fraction < 1.0, "data.train.val_fraction", "a fraction in [0, 1)", self.val_fraction)
        _check(self.kind == "lareqa" or self.val_fraction == 0.0, "data.train.val_fraction",
               f"0 for kind={self.kind} (validation splits are built for LAReQA sets)", self.val_fraction)
        _check(self.kind in ("lareqa", "hub") and self.format is None, "data.train.kind/format",
               "kind lareqa or hub with format null (training reads LAReQA files or parallel hub sets)",
               (self.kind, self.format))
        if self.kind == "hub":
            _check_domain("data.train.domain", self.domain)
            _check_languages("data.train.languages", self.languages)
            missing = [lang for lang in self.languages if lang not in self.subsets]
            _check(not missing, "data.train.subsets", f"a dataset config for every language (missing {missing})",
                   dict(self.subsets))
            _check(bool(self.split), "data.train.split", "the hub dataset's split, e.g. train", self.split)
            _check(self.max_rows is not None and self.max_rows > 0, "data.train.max_rows", "> 0",
                   self.max_rows)
        else:
            super().__post_init__()
        _check(self.candidate_text in ("sentence", "sentence_context"), "data.train.candidate_text",
               "sentence or sentence_context", self.candidate_text)


@dataclass
class DataSchema:
    train: TrainSetSchema | None = None
    eval: dict[str, DatasetSchema] = field(default_factory=dict)
    batch_size: int = MISSING
    num_workers: int = MISSING

    def __post_init__(self) -> None:
        _check(self.batch_size >= 2, "data.batch_size", "an integer >= 2 (in-batch negatives)", self.batch_size)
        _check(self.num_workers >= 0, "data.num_workers", ">= 0", self.num_workers)


@dataclass
class SamplingSchema:
    name: str = MISSING
    alpha: float | None = MISSING
    sampler: Any = MISSING

    def __post_init__(self) -> None:
        from hydra.errors import InstantiationException
        from hydra.utils import instantiate

        node = self.sampler.get("structure") if isinstance(self.sampler, dict) else None
        _check(node is not None, "sampling.sampler.structure", "a batch structure (see conf/sampling/)", node)
        # Building the structure runs its own parameter checks (Hybrid: sampling.alpha), the only ones there are.
        try:
            structure = instantiate(node)
        except InstantiationException as err:
            cause = err.__cause__  # a structure's own ValueError names its key; anything else is about the node
            message = str(cause) if isinstance(cause, ValueError) else f"sampling.sampler.structure: {err}"
            raise ConfigError(message) from err
        _check(self.name == structure.name, "sampling.name", f"{structure.name!r}, the name of its batch structure",
               self.name)


@dataclass
class LossSchema:
    _target_: str = MISSING
    temperature: float = MISSING
    in_batch_positives: bool = MISSING

    def __post_init__(self) -> None:
        _check(self.temperature > 0, "loss.temperature", "> 0", self.temperature)


@dataclass
class OptimSchema:
    lr: float = MISSING
    weight_decay: float = MISSING
    warmup_ratio: float = MISSING
    optimizer: Any = MISSING

    def __post_init__(self) -> None:
        _check(self.lr > 0, "optim.lr", "> 0", self.lr)
        _check(self.weight_decay >= 0, "optim.weight_decay", ">= 0", self.weight_decay)
        _check(0 <= self.warmup_ratio <= 1, "optim.warmup_ratio", "in [0, 1]", self.warmup_ratio)


@dataclass
class ConsoleSchema:
    quiet: bool = MISSING
    progress_bar: Any = MISSING


@dataclass
class LoggerSchema:
    experiment_name: str = MISSING
    tracking_uri: str = MISSING
    run_name: str | None = MISSING
    log_model: bool = MISSING
    registered_model_name: str | None = MISSING


@dataclass
class EvalSchema:
    batch_size: int = MISSING
    candidate_text: str = MISSING
    allow_overlap: bool = MISSING
    overlap_min_chars: int = MISSING
    exports: bool = MISSING
    trec_depth: int = MISSING
    save_embeddings: bool = MISSING
    log_large_artifacts: bool = MISSING
    # Corpus kinds (beir, miracl): ir_measures names with cut-offs; the search depth is the largest.
    measures: list[str] = MISSING
    # Index knobs: checked by src.core.specs.IndexSpec.
    index: str = MISSING
    nlist: int | None = MISSING
    nprobe: int = MISSING
    hnsw_m: int = MISSING
    ef_construction: int = MISSING
    ef_search: int = MISSING
    index_train_size: int | None = MISSING
    gpu_index: bool = MISSING
    exact_check_queries: int = MISSING
    corpus_shard_size: int = MISSING
    embedding_dtype: str = MISSING
    cache_embeddings: bool = MISSING
    debias: Any = MISSING  # none | center | lir, or a list of them
    debias_k: int = MISSING

    def artifacts_kept_local(self) -> tuple[str, ...]:
        """Export subfolders not uploaded to MLflow: TREC runs and embeddings unless log_large_artifacts."""
        return () if self.log_large_artifacts else LARGE_ARTIFACTS

    def __post_init__(self) -> None:
        try:
            debias_methods(self.debias)
        except ValueError as err:
            raise ConfigError(str(err)) from err
        _check(self.debias_k >= 1, "eval.debias_k", ">= 1 (language directions LIR removes)", self.debias_k)
        _check(self.batch_size > 0, "eval.batch_size", "> 0", self.batch_size)
        _check(bool(self.measures), "eval.measures", "a non-empty list such as [nDCG@10, R@100]", self.measures)
        for m in self.measures:
            try:
                parse_measure(m)
            except ValueError as err:
                raise ConfigError(f"eval.measures: {err}") from err
        try:
            IndexSpec.from_config(self)
        except ValueError as err:
            raise ConfigError(str(err)) from err
        _check(self.corpus_shard_size > 0, "eval.corpus_shard_size", "> 0", self.corpus_shard_size)
        _check(self.exact_check_queries >= 0, "eval.exact_check_queries", ">= 0 (0 = no check)",
               self.exact_check_queries)
        _check(self.embedding_dtype in ("float32", "float16"), "eval.embedding_dtype", "float32 or float16",
               self.embedding_dtype)
        _check(self.candidate_text in ("sentence", "sentence_context"), "eval.candidate_text",
               "sentence or sentence_context", self.candidate_text)
        _check(self.trec_depth >= 0, "eval.trec_depth", ">= 0 (0 = full ranking)", self.trec_depth)
        _check(self.overlap_min_chars >= 0, "eval.overlap_min_chars", ">= 0", self.overlap_min_chars)


@dataclass
class ConfigSchema:
    task_name: str = MISSING
    seed: int = MISSING
    threads: int | None = MISSING
    ckpt_path: str | None = MISSING
    resume: bool = MISSING
    on_nonfinite: str = MISSING
    slurm_auto_requeue: bool = MISSING
    export_model: bool = MISSING
    paths: PathsSchema = MISSING
    model: ModelSchema = MISSING
    data: DataSchema = MISSING
    sampling: SamplingSchema = MISSING
    loss: LossSchema = MISSING
    optim: OptimSchema = MISSING
    trainer: Any = MISSING
    logger: LoggerSchema = MISSING
    callbacks: Any = MISSING
    eval: EvalSchema = MISSING
    console: ConsoleSchema = MISSING
    # src.evaluate only (conf/evaluate.yaml sets it): a finished sweep whose jobs get the sets added, else None.
    # No `jobs:` in conf/config.yaml, so training configs and their fingerprints do not carry it.
    jobs: str | None = None

    def __post_init__(self) -> None:
        from src.runtime.hardware import PRECISIONS

        _check(self.on_nonfinite in ("stop", "skip"), "on_nonfinite", "stop or skip", self.on_nonfinite)
        _check(self.threads is None or self.threads >= 1, "threads", "an integer >= 1, or null for the usable cores",
               self.threads)
        if isinstance(self.trainer, dict) and self.trainer.get("precision") is not None:  # null: trainer.plugins
            _check(str(self.trainer["precision"]) in PRECISIONS, "trainer.precision", f"one of {', '.join(PRECISIONS)}",
                   self.trainer["precision"])
        strategy = self.trainer.get("strategy") if isinstance(self.trainer, dict) else None
        if isinstance(strategy, dict) and "timeout_s" in strategy:  # trainer=ddp (src.training.launch)
            _check(strategy["timeout_s"] > 0, "trainer.strategy.timeout_s", "> 0 seconds",
                   strategy["timeout_s"])
        memory = self.callbacks.get("memory") if isinstance(self.callbacks, dict) else None
        if isinstance(memory, dict) and memory.get("trim_every_n_steps") is not None:  # src.runtime.memory
            _check(memory["trim_every_n_steps"] >= 1, "callbacks.memory.trim_every_n_steps", ">= 1 or null",
                   memory["trim_every_n_steps"])
        # The training callback runs the grid kinds only; corpus kinds need src.evaluate (docs/large-corpora.md).
        if self.task_name == "train" and self.data is not MISSING and self.data.train is not None:
            for name, ds in self.data.eval.items():
                _check(ds.kind in GRID_KINDS, f"data.eval.{name}.kind",
                       f"one of {GRID_KINDS} during training (src.run evaluates grid sets; evaluate the checkpoint "
                       "on beir/miracl sets with `python -m src.evaluate ckpt_path=...`)", ds.kind)


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
