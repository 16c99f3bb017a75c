"""Metric keys: the one module that makes or splits a metric key (MLflow keys, per-query array names).

MLflow keys are ``{set}/{setting}/{metric}[/{group}]``, parts without ``/``:

- ``{set}``: an evaluation set (``xquad_r``), the same set scored after a post-hoc debiasing
  (``xquad_r.center``, ``xquad_r.lir``, ``xquad_r.lir2`` for k = 2; src/evaluation/debias.py), or ``val``
  for ValidationRetrieval's copy of the macro keys;
- ``{setting}``: ``mono`` (X->X), ``cross`` (X->Y, Y != X), ``multi`` (X -> the pooled candidates of all
  languages), ``time`` (seconds per phase) or ``index`` (approximate-index checks of the corpus kinds);
- ``{metric}``: a logged metric name (:func:`logged_name`: ``r@10`` -> ``r10``, ``nDCG@10`` -> ``nDCG10``),
  or ``rank_distance``, ``missing_queries``, ``queries``, ``encode_s`` ...;
- ``{group}``: none for a macro average, ``x-y`` for one language pair (mono: ``x-x``), ``x`` for one query
  language (cross: the mean over its targets; multi: against all languages pooled; corpus kinds: one
  language's corpus).

Per-query arrays (``per_query.npz``, src/evaluation/artifacts/per_query.py) are named
``{setting}/{group}/{metric}``: ``mono/de-de/map``, ``cross/de-zh/map``, ``multi/de/map``.

MTEB's own scores (src/mteb/cli.py) are logged as ``mteb/{task}/{metric}[/{subset}]`` in MTEB's names.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass

SETTINGS = ("mono", "cross", "multi")
MONO, CROSS, MULTI = SETTINGS
TIME = "time"
INDEX = "index"
KINDS = (*SETTINGS, TIME, INDEX)  # what may stand in a key's second part
VALIDATION = "val"  # the set name of validation-split keys (`val/multi/map`), monitored by checkpoints
VALIDATION_LOSS = f"{VALIDATION}/loss"  # the module's contrastive loss on the validation split
# The grid's cut-offs and summary metrics, as src/evaluation/metrics.per_query_metrics names them (logged
# without '@'): adding a metric to the grid, its summary, CSVs, tables and model card is one edit here.
RECALL_CUTOFFS = (1, 10)
NDCG_CUTOFF = 10
GRID_METRICS = ("map", *(f"r@{k}" for k in RECALL_CUTOFFS), "mrr", f"ndcg@{NDCG_CUTOFF}")
RANK_DISTANCE = "rank_distance"  # pooled-setting language bias, lower is better
MISSING_QUERIES = "missing_queries"  # queries left out for want of a relevant candidate in their pool
QUERIES = "queries"  # how many queries a corpus set scored
MTEB = "mteb"
_SEP = "/"
_PAIR = "-"
_DEBIAS = "."  # MLflow (via Lightning) keeps only letters, digits and _ / . - space in keys
_LOGGABLE = re.compile(r"[\w\-. :]+")  # MLflow's key characters, less the separator


class MetricKeyError(ValueError):
    """A string that is not a metric key, or parts that cannot make one."""


def _check_parts(**parts: str) -> None:
    """Every part non-empty and free of the separator, else MetricKeyError naming it."""
    for name, part in parts.items():
        if not part or _SEP in part:
            raise MetricKeyError(f"metric key part {name}={part!r} is empty or contains {_SEP!r}")


@dataclass(frozen=True)
class MetricKey:
    """The parts of an MLflow metric key; `str()` gives the key."""

    dataset: str
    setting: str
    metric: str
    group: str | None = None

    def __post_init__(self) -> None:
        _check_parts(dataset=self.dataset, setting=self.setting, metric=self.metric,
                     **({} if self.group is None else {"group": self.group}))
        if self.setting not in KINDS:
            raise MetricKeyError(f"metric key setting {self.setting!r} is not one of {', '.join(KINDS)}")
        if self.group is not None:
            split_group(self.group)

    def __str__(self) -> str:
        parts = (self.dataset, self.setting, self.metric) + ((self.group,) if self.group is not None else ())
        return _SEP.join(parts)

    @property
    def query_language(self) -> str | None:
        """The query language of a per-language key (`x` of `x-y` or `x`); None for a macro key."""
        return None if self.group is None else split_group(self.group)[0]


def logged_name(name: str) -> str:
    """A metric name as logged: MLflow keys allow no '@', so `r@10` is logged as `r10`, `ndcg@10` as `ndcg10`.

    The one convention for every evaluation kind: ir_measures names lose their '@' too (`nDCG@10` ->
    `nDCG10`, `R@100` -> `R100`, `RR@10` -> `RR10`, `AP@1000` -> `AP1000`).
    """
    logged = name.replace("@", "")
    if not _LOGGABLE.fullmatch(logged):
        raise MetricKeyError(f"metric name {name!r} has characters MLflow rejects in a key ({logged!r}) "
                             f"or the key separator {_SEP!r}")
    return logged


def key(dataset: str, setting: str, metric: str, group: str | None = None) -> str:
    """`{dataset}/{setting}/{metric}[/{group}]`; `metric` is a logged name (see logged_name)."""
    return str(MetricKey(dataset, setting, metric, group))


def pair(x: str, y: str) -> str:
    """The group of one (query language, candidate language) pair: `x-y`."""
    for lang in (x, y):
        if not lang or _PAIR in lang or _SEP in lang:
            raise MetricKeyError(f"language {lang!r} is empty or contains {_PAIR!r} or {_SEP!r}")
    return f"{x}{_PAIR}{y}"


def split_group(group: str) -> tuple[str, str | None]:
    """(query language, candidate language or None) of a group `x-y` or `x`."""
    x, sep, y = group.partition(_PAIR)
    if not x or (sep and (not y or _PAIR in y)):
        raise MetricKeyError(f"group {group!r} is neither a language `x` nor a pair `x-y`")
    return x, (y if sep else None)


def pair_setting(x: str, y: str) -> str:
    """The setting a language pair belongs to: mono when the languages are the same, else cross."""
    return MONO if x == y else CROSS


def language_key(dataset: str, setting: str, metric: str, lang: str) -> str:
    """One query language's value of a setting: mono's `x-x` pair, cross's mean over targets, multi's pool."""
    return key(dataset, setting, metric, pair(lang, lang) if setting == MONO else lang)


def debiased_set(dataset: str, method: str, k: int = 1) -> str:
    """The set name of `dataset` scored after debiasing: `xquad_r.center`, `xquad_r.lir` (k=1), `xquad_r.lir2`."""
    _check_parts(dataset=dataset, method=method)
    if _DEBIAS in dataset or _DEBIAS in method:
        raise MetricKeyError(f"set {dataset!r} or method {method!r} contains {_DEBIAS!r}")
    return f"{dataset}{_DEBIAS}{method}{k if method == 'lir' and k != 1 else ''}"


def base_set(dataset: str) -> str:
    """The evaluation set a (possibly debiased) set name was scored on: `xquad_r.lir2` -> `xquad_r`."""
    return dataset.partition(_DEBIAS)[0]


def debias_method(dataset: str) -> str | None:
    """The debiasing of a set name (`xquad_r.lir2` -> `lir2`), None for a raw set."""
    return dataset.partition(_DEBIAS)[2] or None


def debiased_variants(metrics: Iterable[str], dataset: str) -> list[str]:
    """The debiased sets of `dataset` that a run's metric keys contain (`xquad_r.center`, ...), sorted."""
    found = {k.dataset for k in map(maybe_parse, metrics) if k is not None}
    return sorted(s for s in found if s != dataset and base_set(s) == dataset)


# What a learning curve shows: the validation loss, mono / cross / multi mAP and the rank distance.
CURVE_KEYS = (VALIDATION_LOSS, *(key(VALIDATION, s, "map") for s in SETTINGS), key(VALIDATION, MULTI, RANK_DISTANCE))


def array_metric(logged: str) -> str:
    """The per-query array name (per_query.npz) of a logged grid metric: `r1` -> `r@1`, `map` unchanged."""
    for name in GRID_METRICS:
        if logged_name(name) == logged:
            return name
    return logged


def time_key(dataset: str, phase: str) -> str:
    """Seconds a phase (`encode`, `score`, `search`) of one set took: `{set}/time/{phase}_s`."""
    return key(dataset, TIME, f"{phase}_s")


def parse(text: str) -> MetricKey:
    """The parts of a metric key; MetricKeyError (a ValueError) names what is wrong with any other string."""
    parts = text.split(_SEP)
    if len(parts) not in (3, 4):
        raise MetricKeyError(f"{text!r} is not a metric key: expected {{set}}/{{setting}}/{{metric}}[/{{group}}]")
    try:
        return MetricKey(*parts)
    except MetricKeyError as err:
        raise MetricKeyError(f"{text!r} is not a metric key: {err}") from None


def maybe_parse(text: str) -> MetricKey | None:
    """parse(), or None for a key of another grammar (a run's `train/loss`, `val/loss`, `epoch`)."""
    try:
        return parse(text)
    except MetricKeyError:
        return None


def is_validation(text: str) -> bool:
    """A validation metric (`val/...`, the evaluation's `val/multi/map` or the module's `val/loss`)."""
    return text.partition(_SEP)[0] == VALIDATION


def as_validation(metrics: Mapping[str, float], dataset: str) -> dict[str, float]:
    """The macro keys of one set's grid (mono / cross / multi, no time or groups) renamed to `val/...`."""
    out = {}
    for text, value in metrics.items():
        k = maybe_parse(text)
        if k is not None and k.dataset == dataset and k.setting in SETTINGS and k.group is None:
            out[key(VALIDATION, k.setting, k.metric)] = value
    return out


def macro_values(metrics: Mapping[str, float], dataset: str, setting: str) -> dict[str, float]:
    """{metric: value} of one set's macro keys (no group) in one setting, sorted by metric."""
    found = {}
    for text, value in metrics.items():
        k = maybe_parse(text)
        if k is not None and k.dataset == dataset and k.setting == setting and k.group is None:
            found[k.metric] = value
    return dict(sorted(found.items()))


def summary_rows(metrics: Mapping[str, float], datasets: Sequence[str], names: Sequence[str] = GRID_METRICS,
                 skip_absent: bool = False) -> Iterator[tuple[str, str, list[float], float | None]]:
    """(set, setting, macro values of `names` (NaN if absent), multi's rank distance or None) per row.

    `skip_absent`: no row for a setting without any of the keys (one the set's kind does not score, such as
    translation retrieval's mono)."""
    for dataset in datasets:
        for setting in SETTINGS:
            if skip_absent and not any(key(dataset, setting, logged_name(n)) in metrics for n in names):
                continue
            values = [metrics.get(key(dataset, setting, logged_name(n)), float("nan")) for n in names]
            bias = metrics.get(key(dataset, MULTI, RANK_DISTANCE)) if setting == MULTI else None
            yield dataset, setting, values, bias


def mteb_key(task: str, metric: str, subset: str | None = None) -> str:
    """An MTEB score: `mteb/{task}/{metric}` (mean over subsets and splits) or `.../{subset}`."""
    _check_parts(task=task, metric=metric, **({} if subset is None else {"subset": subset}))
    return _SEP.join((MTEB, task, metric) + (() if subset is None else (subset,)))


def mteb_subsets(scores: Mapping[str, float], task: str, metric: str) -> dict[str, float]:
    """{subset: value} of one MTEB task's metric, in the order of `scores`."""
    prefix = mteb_key(task, metric) + _SEP
    return {k[len(prefix):]: v for k, v in scores.items()
            if k.startswith(prefix) and _SEP not in k[len(prefix):]}


def array_key(setting: str, group: str, metric: str) -> str:
    """The name of one per-query array: `{setting}/{group}/{metric}` (`cross/de-zh/map`, `multi/de/map`)."""
    if setting not in SETTINGS:
        raise MetricKeyError(f"per-query setting {setting!r} is not one of {', '.join(SETTINGS)}")
    _check_parts(group=group, metric=metric)
    split_group(group)
    return _SEP.join((setting, group, metric))


def pair_array_key(x: str, y: str, metric: str) -> str:
    """A language pair's per-query array: `mono/x-x/{metric}` or `cross/x-y/{metric}`."""
    return array_key(pair_setting(x, y), pair(x, y), metric)


def parse_array_key(text: str) -> tuple[str, str, str | None, str]:
    """(setting, query language, candidate language or None for multi, metric) of a per-query array name."""
    parts = text.split(_SEP)
    if len(parts) != 3:
        raise MetricKeyError(f"{text!r} is not a per-query array name: expected {{setting}}/{{group}}/{{metric}}")
    setting, group, metric = parts
    try:
        array_key(setting, group, metric)
    except MetricKeyError as err:
        raise MetricKeyError(f"{text!r} is not a per-query array name: {err}") from None
    x, y = split_group(group)
    if (setting == MULTI) != (y is None) or (y is not None and pair_setting(x, y) != setting):
        raise MetricKeyError(f"{text!r} is not a per-query array name: {setting} takes "
                             f"{'a query language `x`' if setting == MULTI else 'a language pair `x-y`'}")
    return setting, x, y, metric
