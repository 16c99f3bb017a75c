"""Spec types of the config vocabulary: the values a config names and their checks (pure, no heavy imports).

The config schema (src/core/config.py) validates with them, and the layers that act on the values
(src/evaluation/index.py, debias.py, metrics.py) take them from here, so both read one definition.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

# `eval.debias`: post-hoc language-bias removal (src/evaluation/debias.py); `none` = raw embeddings only.
DEBIAS_METHODS: tuple[str, ...] = ("none", "center", "lir")
# ir_measures names of the top-k measures of the corpus kinds (src/evaluation/metrics.py TOPK_MEASURES).
TOPK_NAMES: tuple[str, ...] = ("nDCG", "R", "RR", "AP")
INDEX_KINDS = ("flat", "ivf", "hnsw")


def debias_methods(value: str | Sequence[str] | None) -> tuple[str, ...]:
    """The debiasing methods of `eval.debias` (a name or a list; `none` = none), validated, in order."""
    names = [value] if isinstance(value, str) or value is None else list(value)
    out = tuple(dict.fromkeys(str(n) for n in names if n not in (None, "none")))
    bad = [n for n in out if n not in DEBIAS_METHODS]
    if bad:
        raise ValueError(f"eval.debias={value!r}: expected none, {', '.join(DEBIAS_METHODS[1:])} or a list of them")
    return out


def parse_measure(name: str) -> tuple[str, int]:
    """Split an ir_measures name such as `nDCG@10` into ("nDCG", 10); raise naming the accepted forms."""
    measure, _, cut = str(name).partition("@")
    if measure not in TOPK_NAMES or not cut.isdigit() or int(cut) < 1:
        raise ValueError(f"measure {name!r}: expected <name>@<cut-off> with name in "
                         f"{', '.join(TOPK_NAMES)} and a positive cut-off, e.g. nDCG@10, R@100")
    return measure, int(cut)


def _positive_int(value: object) -> bool:
    """An int (not a bool) >= 1."""
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


# IndexSpec field -> the `eval.*` config key it comes from (error messages name the key a user sets).
CONFIG_KEYS = {"kind": "index", "nlist": "nlist", "nprobe": "nprobe", "hnsw_m": "hnsw_m",
               "ef_construction": "ef_construction", "ef_search": "ef_search", "train_size": "index_train_size",
               "use_gpu": "gpu_index"}


@dataclass(frozen=True)
class IndexSpec:
    """How to build and search one index; the knobs' defaults live only in the `eval` config (conf/config.yaml).

    `nlist=None` picks 4*sqrt(n) lists (FAISS's rule of thumb).
    """

    kind: str
    nlist: int | None
    nprobe: int
    hnsw_m: int
    ef_construction: int
    ef_search: int
    train_size: int | None
    use_gpu: bool
    seed: int = 0

    @classmethod
    def from_config(cls, eval_cfg: Any, seed: int = 0, **overrides: Any) -> IndexSpec:
        """The spec an `eval` config section describes, with field overrides (e.g. `kind="flat"`)."""
        fields = {name: getattr(eval_cfg, key) for name, key in CONFIG_KEYS.items()}
        return cls(**{**fields, "seed": seed, **overrides})

    @classmethod
    def exact(cls, use_gpu: bool = True) -> IndexSpec:
        """An exact flat index outside the `eval` config (TREC runs): the knobs of the other kinds do not apply."""
        return cls(kind="flat", nlist=None, nprobe=1, hnsw_m=1, ef_construction=1, ef_search=1, train_size=None,
                   use_gpu=use_gpu)

    def __post_init__(self) -> None:
        if self.kind not in INDEX_KINDS:
            raise ValueError(f"eval.index={self.kind!r}: expected one of {', '.join(INDEX_KINDS)}")
        for name in ("nprobe", "hnsw_m", "ef_construction", "ef_search"):
            if not _positive_int(getattr(self, name)):
                raise ValueError(f"eval.{CONFIG_KEYS[name]}={getattr(self, name)!r}: expected a positive integer")
        if self.nlist is not None and not _positive_int(self.nlist):
            raise ValueError(f"eval.nlist={self.nlist!r}: expected a positive integer or null (4*sqrt(corpus size))")
        if self.train_size is not None and not _positive_int(self.train_size):
            raise ValueError(f"eval.index_train_size={self.train_size!r}: expected a positive integer or null "
                             f"(40 vectors per IVF list)")

    def factory_string(self, n: int) -> str:
        """The `faiss.index_factory` description of this index for n vectors."""
        if self.kind == "flat":
            return "Flat"
        if self.kind == "ivf":
            return f"IVF{self.lists_for(n)},Flat"
        return f"HNSW{self.hnsw_m},Flat"

    def train_rows_for(self, n: int) -> int:
        """k-means sample size: the configured one, else 40 per list (FAISS warns below 39), at most n."""
        rows = self.train_size if self.train_size is not None else 40 * self.lists_for(n)
        return min(rows, n)

    def lists_for(self, n: int) -> int:
        """IVF list count: the configured one, else 4*sqrt(n), never more lists than vectors."""
        nlist = self.nlist if self.nlist is not None else int(4 * math.sqrt(max(n, 1)))
        return max(1, min(nlist, n))
