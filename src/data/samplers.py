"""Language-structured batch samplers: X-X-mono, X-X (mixed), X-Y and hybrid batches (arXiv 2408.10536).

`LanguageBatchSampler` yields lists of pair indices for ``DataLoader(dataset, batch_sampler=sampler)``. What a
batch holds is its `BatchStructure`, a small strategy that declares its pools and, per step, which pool the
step draws from:

============  ===============  ==========================================================================
class         ``sampling=``    every batch is …
============  ===============  ==========================================================================
`XXMono`      ``xx``           X-X-mono: one pool per language X of its (X, X) pairs, X drawn uniformly
`XXMixed`     ``xx_mixed``     LAReQA's X-X: one pool of all same-language pairs
`XY`          ``xy``           X-Y: one pool of all cross-language pairs
`Hybrid`      ``hybrid``       an alpha-mixture of `XXMono` and `XY`, one coin per step
`RoundRobin`  ``round_robin``  X-X-mono with the languages in turn instead of drawn
============  ===============  ==========================================================================

The sampler does the rest, the same for every structure: validation, pool streams without false negatives,
DDP sharding, epochs and ``state_dict`` / resume. A new batch structure is one class here and one YAML under
``conf/sampling`` whose ``name`` is the class's ``name``: `RoundRobin` (it overrides how a step picks its
language) and ``conf/sampling/round_robin.yaml`` are the example. One with other pools, e.g. Translate-Distill's
"mix passages", builds them from `PairIndex` in `pools`. ``src/core/config.py`` builds the structure when it
validates a config, so the structure's own parameter checks (hybrid's alpha) run before any work starts.

Semantics shared by all structures
----------------------------------
* Streams. Each pool is consumed as a stream of shuffled passes; pass k of a pool is a permutation seeded by
  (seed, epoch, pool key, k), so no pair repeats within a pass. A pass starts only when the previous one is
  used up, and leaves out the pairs still deferred from it, so a pair is never pending twice.
* No false negatives. A batch never holds two pairs with the same ``xling_id``, nor does the global step
  batch (the union over ranks), since negatives gathered across ranks would otherwise contain positives.
  A pair that would clash is deferred to the front of its stream, not dropped.
* Steps. ``num_replicas`` batches are drawn from the step's pool and rank r takes the r-th. Every rank
  computes the same global sequence, so no communication is needed.
* Epoch length. ``batches_per_epoch`` defaults to ``epoch_pairs // (batch_size * num_replicas)``: the size of
  the structure's pools, ``alpha * n_same + (1 - alpha) * n_cross`` for ``hybrid``. Because ``xx`` draws
  languages uniformly (not proportionally to pool size), a small language's pool can run through more than
  one pass in an epoch. Near the end of an epoch deferrals can also force a pool into its next pass, so a
  handful of pairs may repeat even when the pool size is an exact multiple of the global batch size.
* Determinism. Batches depend only on (seed, epoch, inputs, structure, batch_size, num_replicas,
  batches_per_epoch). The hybrid coin, the language draw and each pool's shuffles use separate RNG streams,
  and a pool's shuffles depend on its key alone, so ``alpha=0`` reproduces ``xy`` and ``alpha=1`` reproduces
  ``xx`` batch for batch.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any, ClassVar

import numpy as np
from torch.utils.data import Sampler

PoolKey = tuple[int, int]
Streams = Callable[[int], np.random.Generator]  # stream tag -> this epoch's generator for it (fresh each call)

# RNG stream tags under (seed, epoch): the hybrid coins must never shift the language draw or a pool shuffle.
MIX_STREAM = 0
LANGUAGE_STREAM = 1
_POOL_STREAM = 2
# Pool families: the first element of a pool key, which is part of its RNG key (changing one changes batches).
_XX_POOL, _SAME_POOL, _CROSS_POOL = 0, 1, 2
_EMPTY = np.empty(0, dtype=np.int64)


def _encode(values: Sequence[Any]) -> tuple[np.ndarray, list[Any]]:
    """Integer codes in first-appearance order (a dict pass beats sorting 300k strings)."""
    index: dict[Any, int] = {}
    codes = np.fromiter((index.setdefault(v, len(index)) for v in values), dtype=np.int64, count=len(values))
    return codes, list(index)


# ---------------------------------------------------------------- step plans (pure)


def uniform_languages(n_languages: int, n_steps: int, rng: np.random.Generator) -> np.ndarray:
    """Uniform language index per step, drawn independently of pool sizes."""
    if n_languages < 1:
        raise ValueError(f"n_languages must be >= 1, got {n_languages}")
    return rng.integers(0, n_languages, size=n_steps, dtype=np.int64)


def round_robin(n_languages: int, n_steps: int) -> np.ndarray:
    """Language index per step in turn: 0, 1, …, n_languages - 1, 0, 1, …"""
    if n_languages < 1:
        raise ValueError(f"n_languages must be >= 1, got {n_languages}")
    return np.arange(n_steps, dtype=np.int64) % n_languages


def mixture_choice(alpha: float, n_steps: int, rng: np.random.Generator) -> np.ndarray:
    """True where a step takes the first component: one uniform coin per step against alpha."""
    # random() is in [0, 1): alpha=0 never takes the first component and alpha=1 always does.
    return rng.random(n_steps) < alpha


def default_batches_per_epoch(epoch_pairs: float, batch_size: int, num_replicas: int = 1) -> int:
    """Epoch length: the pairs an epoch covers // global batch size."""
    return math.floor(epoch_pairs / (batch_size * num_replicas))


# ---------------------------------------------------------------- pairs and pools


@dataclass(frozen=True, eq=False)
class PairIndex:
    """The training pairs as integer codes: what a structure reads to declare its pools and plan its steps."""

    languages: tuple[str, ...]  # sorted, so codes (and pool RNG keys) agree across structures and ranks
    q: np.ndarray  # query language code per pair
    p: np.ndarray  # passage language code per pair
    xid: np.ndarray  # xling_id code per pair
    n_xids: int

    @classmethod
    def build(cls, q_lang: Sequence[str], p_lang: Sequence[str], xling_id: Sequence[str]) -> PairIndex:
        """Encode languages (sorted-name codes) and xling_ids (first-appearance codes)."""
        languages = tuple(sorted(set(q_lang) | set(p_lang)))
        code = {lang: i for i, lang in enumerate(languages)}
        q = np.fromiter((code[v] for v in q_lang), dtype=np.int64, count=len(q_lang))
        p = np.fromiter((code[v] for v in p_lang), dtype=np.int64, count=len(p_lang))
        xid, names = _encode(xling_id)
        return cls(languages, q, p, xid, len(names))

    @cached_property
    def same(self) -> np.ndarray:
        """Indices of the same-language (X, X) pairs, ascending."""
        return np.flatnonzero(self.q == self.p)

    @cached_property
    def cross(self) -> np.ndarray:
        """Indices of the cross-language (X, Y) pairs, ascending."""
        return np.flatnonzero(self.q != self.p)

    @cached_property
    def xx_codes(self) -> np.ndarray:
        """Codes of the languages that have (X, X) pairs, ascending."""
        return np.unique(self.q[self.same])


@dataclass(frozen=True, eq=False)
class Pool:
    """Pairs that may share a batch; its key alone seeds its shuffles, so every structure draws it alike."""

    key: PoolKey
    kind: str  # batch type its steps are logged as (step_plan): 'xx', 'xx_mixed' or 'xy'
    members: np.ndarray  # global pair indices, ascending
    label: str  # for error messages
    language: str | None = None  # X of an X-X-mono pool


class NoPairs(ValueError):
    """A structure needs pairs the table lacks ("<what>, but there are none"); the sampler adds its name."""


def language_pools(pairs: PairIndex) -> list[Pool]:
    """One X-X-mono pool per language X with (X, X) pairs, in language-code order."""
    if not pairs.same.size:
        raise NoPairs("same-language (X, X) pairs, but there are none")
    same_q = pairs.q[pairs.same]
    return [
        Pool((_XX_POOL, int(c)), "xx", pairs.same[same_q == c], f"xx pool for language {pairs.languages[c]!r}",
             language=pairs.languages[c])
        for c in pairs.xx_codes
    ]


def same_language_pool(pairs: PairIndex) -> Pool:
    """All (X, X) pairs, languages mixed."""
    if not pairs.same.size:
        raise NoPairs("same-language (X, X) pairs, but there are none")
    return Pool((_SAME_POOL, 0), "xx_mixed", pairs.same, "xx_mixed pool (same-language pairs)")


def cross_language_pool(pairs: PairIndex) -> Pool:
    """All (X, Y) pairs with X != Y."""
    if not pairs.cross.size:
        raise NoPairs(f"cross-language (X, Y) pairs with X != Y, but there are none "
                      f"(languages: {', '.join(pairs.languages)})")
    return Pool((_CROSS_POOL, 0), "xy", pairs.cross, "xy pool (cross-language pairs)")


# ---------------------------------------------------------------- batch structures


class BatchStructure(ABC):
    """What a batch holds: the pools a structure draws from and, per step, which one (shared by all ranks)."""

    name: ClassVar[str]  # = `name` of its conf/sampling/*.yaml, the run's `sampling.name`

    @abstractmethod
    def pools(self, pairs: PairIndex) -> list[Pool]:
        """Every pool a step may draw from; each must hold a global step batch of distinct xling_ids."""

    @abstractmethod
    def plan(self, pairs: PairIndex, n_steps: int, streams: Streams) -> list[PoolKey]:
        """Key of the pool each step of an epoch draws from; random choices come from `streams`."""

    def epoch_pairs(self, pairs: PairIndex) -> float:
        """Pairs one epoch covers by default (its length is this // global batch): each pool once."""
        return sum(pool.members.size for pool in self.pools(pairs))


class _OnePool(BatchStructure):
    """A structure with a single pool: every step draws from it."""

    def plan(self, pairs: PairIndex, n_steps: int, streams: Streams) -> list[PoolKey]:
        """The one pool's key at every step."""
        (pool,) = self.pools(pairs)
        return [pool.key] * n_steps


@dataclass(frozen=True)
class XXMono(BatchStructure):
    """X-X-mono: one language X per step, drawn uniformly; every pair in the batch is (X, X)."""

    name: ClassVar[str] = "xx"

    def pools(self, pairs: PairIndex) -> list[Pool]:
        """One pool per language with (X, X) pairs."""
        return language_pools(pairs)

    def plan(self, pairs: PairIndex, n_steps: int, streams: Streams) -> list[PoolKey]:
        """The pool of each step's language."""
        codes = pairs.xx_codes
        return [(_XX_POOL, int(c)) for c in codes[self.languages(codes.size, n_steps, streams)]]

    def languages(self, n_languages: int, n_steps: int, streams: Streams) -> np.ndarray:
        """Index (into the languages with (X, X) pairs) of each step's language: uniform draws."""
        return uniform_languages(n_languages, n_steps, streams(LANGUAGE_STREAM))


@dataclass(frozen=True)
class RoundRobin(XXMono):
    """X-X-mono with the languages in turn (code order), so each gets the same number of steps ±1."""

    name: ClassVar[str] = "round_robin"

    def languages(self, n_languages: int, n_steps: int, streams: Streams) -> np.ndarray:
        """0, 1, …, n_languages - 1, 0, … from the first step of every epoch."""
        return round_robin(n_languages, n_steps)


@dataclass(frozen=True)
class XXMixed(_OnePool):
    """LAReQA X-X: every pair is same-language, languages mixed within a batch."""

    name: ClassVar[str] = "xx_mixed"

    def pools(self, pairs: PairIndex) -> list[Pool]:
        """All (X, X) pairs in one pool."""
        return [same_language_pool(pairs)]


@dataclass(frozen=True)
class XY(_OnePool):
    """X-Y: every pair has q_lang != p_lang."""

    name: ClassVar[str] = "xy"

    def pools(self, pairs: PairIndex) -> list[Pool]:
        """All (X, Y) pairs in one pool."""
        return [cross_language_pool(pairs)]


@dataclass(frozen=True)
class Hybrid(BatchStructure):
    """Each step is an `XXMono` step with probability alpha, else an `XY` step (whole batches, never mixed)."""

    alpha: float  # no default here: conf/sampling/hybrid.yaml is its one source
    name: ClassVar[str] = "hybrid"
    xx: ClassVar[BatchStructure] = XXMono()
    xy: ClassVar[BatchStructure] = XY()

    def __post_init__(self) -> None:
        """alpha is checked here and nowhere else (src/core/config.py builds the structure to validate a config)."""
        if not isinstance(self.alpha, (int, float)) or not 0.0 <= self.alpha <= 1.0:  # also rejects None, NaN
            raise ValueError(f"sampling.alpha={self.alpha!r}: expected a probability in [0, 1] "
                             "(the share of X-X-mono steps)")
        object.__setattr__(self, "alpha", float(self.alpha))

    def _components(self) -> list[tuple[BatchStructure, float]]:
        """(structure, weight) of the components a step can take; alpha 0 or 1 never needs the other's pools."""
        return [(s, w) for s, w in ((self.xx, self.alpha), (self.xy, 1.0 - self.alpha)) if w > 0]

    def pools(self, pairs: PairIndex) -> list[Pool]:
        """The pools of the components in use."""
        return [pool for s, _ in self._components() for pool in s.pools(pairs)]

    def epoch_pairs(self, pairs: PairIndex) -> float:
        """alpha * n_same + (1 - alpha) * n_cross (a component left out adds nothing)."""
        return sum(w * s.epoch_pairs(pairs) for s, w in self._components())

    def plan(self, pairs: PairIndex, n_steps: int, streams: Streams) -> list[PoolKey]:
        """Per step the xx plan's pool if the coin says so, else the xy plan's."""
        take_xx = mixture_choice(self.alpha, n_steps, streams(MIX_STREAM))
        # Each component plans every step from its own stream, so step i's language is the same for any alpha.
        xx = self.xx.plan(pairs, n_steps, streams) if take_xx.any() else []
        xy = self.xy.plan(pairs, n_steps, streams) if not take_xx.all() else []
        return [xx[i] if t else xy[i] for i, t in enumerate(take_xx)]


# ---------------------------------------------------------------- the sampler


class _PoolStream:
    """One pool consumed as shuffled passes with a front queue of deferred pairs."""

    def __init__(self, members: np.ndarray, member_xids: np.ndarray, seed_key: list[int]) -> None:
        """members: global pair indices; member_xids: their xling_id codes; seed_key: RNG key prefix."""
        self._members = members
        self._xids = member_xids
        self._seed_key = seed_key
        self._order = _EMPTY  # pool-local positions of the current pass
        self._cursor = 0
        self._passes = 0
        self._front = _EMPTY  # deferred pool-local positions, in stream order

    def _start_pass(self, pending: np.ndarray) -> None:
        """Begin the next shuffled pass, leaving out pairs that are still pending from the last one."""
        rng = np.random.default_rng([*self._seed_key, self._passes])
        order = rng.permutation(len(self._members))
        if pending.size:
            keep = np.ones(len(self._members), dtype=bool)
            keep[pending] = False
            order = order[keep[order]]
        self._order, self._cursor = order, 0
        self._passes += 1

    def _scan(self, cand: np.ndarray, need: int, used: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
        """Accept up to need candidates in order with unused, distinct xling_ids; return (acc, rej, scanned)."""
        x = self._xids[cand]
        ok = ~used[x]
        # Only the first occurrence of an xling_id inside cand may be taken; later ones would clash with it.
        _, first = np.unique(x, return_index=True)
        if first.size < cand.size:
            is_first = np.zeros(cand.size, dtype=bool)
            is_first[first] = True
            ok &= is_first
        cum = np.cumsum(ok)
        cut = int(np.searchsorted(cum, need)) + 1 if cum.size and cum[-1] >= need else cand.size
        ok = ok[:cut]
        acc, rej = cand[:cut][ok], cand[:cut][~ok]
        used[x[:cut][ok]] = True
        return acc, rej, cut

    def draw(self, n: int, used: np.ndarray) -> np.ndarray:
        """Next n pairs (global indices) whose xling_ids are distinct and not marked in used; marks them."""
        accepted: list[np.ndarray] = []
        rejected: list[np.ndarray] = []
        need = n
        front, self._front = self._front, _EMPTY
        if front.size:
            acc, rej, cut = self._scan(front, need, used)
            accepted.append(acc)
            need -= acc.size
            if need == 0:
                # Deferred pairs stay ahead of the unscanned remainder of the front.
                self._front = np.concatenate([rej, front[cut:]])
                return self._members[acc]
            rejected.append(rej)
        new_passes = 0
        while need:
            if self._cursor >= self._order.size:
                # Validation guarantees enough distinct xling_ids within one full pass; a second is a bug.
                if new_passes == 2:
                    raise RuntimeError("pool cannot fill a batch without duplicate xling_ids")
                self._start_pass(np.concatenate(rejected) if rejected else _EMPTY)
                new_passes += 1
                continue
            chunk = self._order[self._cursor : self._cursor + need]
            acc, rej, cut = self._scan(chunk, need, used)
            self._cursor += cut
            accepted.append(acc)
            rejected.append(rej)
            need -= acc.size
        self._front = np.concatenate(rejected) if rejected else _EMPTY
        return self._members[np.concatenate(accepted)]


class _SetEpochForwarder:
    """Stand-in for ``batch_sampler.sampler`` so Lightning's per-epoch ``set_epoch`` reaches us."""

    def __init__(self, owner: LanguageBatchSampler) -> None:
        """Keep a reference to the owning batch sampler."""
        self._owner = owner

    def set_epoch(self, epoch: int) -> None:
        """Forward to the owning batch sampler."""
        self._owner.set_epoch(epoch)


def _positive_int(value: Any) -> bool:
    """An int-valued number >= 1 that is not a bool."""
    return not isinstance(value, bool) and int(value) == value and value >= 1


class LanguageBatchSampler(Sampler[list[int]]):
    """Batches of a `BatchStructure`: validation, deterministic per-epoch streams, rank sharding, resumable state."""

    def __init__(
        self,
        structure: BatchStructure,
        q_lang: Sequence[str],
        p_lang: Sequence[str],
        xling_id: Sequence[str],
        batch_size: int,
        seed: int = 0,
        batches_per_epoch: int | None = None,
        num_replicas: int = 1,
        rank: int = 0,
    ) -> None:
        """Index the pairs into the structure's pools and check that each can fill a global step batch."""
        super().__init__()
        n = len(q_lang)
        if len(p_lang) != n or len(xling_id) != n:
            raise ValueError(
                f"q_lang, p_lang and xling_id must have the same length, got {n}, {len(p_lang)}, {len(xling_id)}"
            )
        if n == 0:
            raise ValueError("no training pairs: q_lang, p_lang and xling_id are empty")
        if not _positive_int(batch_size):
            raise ValueError(f"batch_size must be a positive integer, got batch_size={batch_size!r}")
        if not _positive_int(num_replicas):
            raise ValueError(f"num_replicas must be a positive integer, got num_replicas={num_replicas!r}")
        if not 0 <= rank < num_replicas:
            raise ValueError(f"rank must be in [0, num_replicas={num_replicas}), got rank={rank!r}")
        self.structure = structure
        self.batch_size = int(batch_size)
        self.num_replicas = int(num_replicas)
        self.rank = int(rank)
        self.seed = int(seed)
        # Lightning (2.6) calls set_epoch only on loader.sampler and loader.batch_sampler.sampler, not on us.
        self.sampler = _SetEpochForwarder(self)

        self.pairs = PairIndex.build(q_lang, p_lang, xling_id)
        try:
            pools = structure.pools(self.pairs)
        except NoPairs as err:
            raise ValueError(f"sampler {structure.name!r} needs {err}") from None
        for pool in pools:
            self._check_fills_step(pool)
        self._pools: dict[PoolKey, Pool] = {pool.key: pool for pool in pools}

        if batches_per_epoch is None:
            batches_per_epoch = default_batches_per_epoch(
                structure.epoch_pairs(self.pairs), self.batch_size, self.num_replicas
            )
            # Cannot trigger once every pool passed _check_fills_step (each holds a global batch); kept as a guard.
            if batches_per_epoch < 1:
                raise ValueError(
                    f"too few pairs for one step: sampler {structure.name!r} has {self.pairs.same.size} "
                    f"same-language and {self.pairs.cross.size} cross-language pairs, batch_size={self.batch_size} "
                    f"x num_replicas={self.num_replicas}; pass batches_per_epoch explicitly"
                )
        elif not _positive_int(batches_per_epoch):
            raise ValueError(f"batches_per_epoch must be a positive integer, got {batches_per_epoch!r}")
        self.batches_per_epoch = int(batches_per_epoch)

        self._epoch = 0
        self._batches_yielded = 0
        self._resume_from = 0  # steps to skip on the next __iter__ after load_state_dict

    def _check_fills_step(self, pool: Pool) -> None:
        """Raise unless the pool has enough distinct xling_ids for a global step batch."""
        global_batch = self.batch_size * self.num_replicas
        distinct = int(np.unique(self.pairs.xid[pool.members]).size)
        if distinct < global_batch:
            per_step = f" (x num_replicas={self.num_replicas} = {global_batch} per step)"
            raise ValueError(
                f"batch_size={self.batch_size}{per_step if self.num_replicas > 1 else ''} exceeds the "
                f"{distinct} distinct xling_ids in the {pool.label}; a batch cannot be filled without duplicate "
                f"xling_ids (false negatives). Lower batch_size or drop the language."
            )

    def __len__(self) -> int:
        """Batches per epoch for this rank (the full epoch, also right after a mid-epoch resume)."""
        return self.batches_per_epoch

    @property
    def epoch(self) -> int:
        """Epoch the next iteration will produce."""
        return self._epoch

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch to iterate; a pending resume offset survives only if the epoch is unchanged."""
        if epoch < 0:
            raise ValueError(f"epoch must be >= 0, got {epoch}")
        if epoch != self._epoch:
            self._resume_from = 0
            self._batches_yielded = 0
        self._epoch = int(epoch)

    def step_plan(self, epoch: int | None = None) -> list[tuple[str, str | None]]:
        """(batch type, language of an X-X-mono step else None) for every step of an epoch, for logging/tests."""
        pools = [self._pools[key] for key in self._plan(epoch)]
        return [(pool.kind, pool.language) for pool in pools]

    def _seed_key(self, epoch: int) -> list[int]:
        """RNG key prefix; SeedSequence needs non-negative ints, so negative seeds are wrapped."""
        return [self.seed % 2**64, int(epoch)]

    def _plan(self, epoch: int | None) -> list[PoolKey]:
        """The structure's pool key per step of an epoch (cheap: a few vectorised draws)."""
        key = self._seed_key(self._epoch if epoch is None else epoch)
        plan = self.structure.plan(
            self.pairs, self.batches_per_epoch, lambda tag: np.random.default_rng([*key, tag])
        )
        unknown = set(plan) - self._pools.keys()
        if len(plan) != self.batches_per_epoch or unknown:
            raise RuntimeError(f"{self.structure!r} planned {len(plan)} steps (expected {self.batches_per_epoch}), "
                               f"pools not declared by pools(): {sorted(unknown)}")
        return plan

    def _global_steps(self, epoch: int) -> Iterator[list[np.ndarray]]:
        """Yield, per step, the num_replicas batches of the global step (identical on every rank)."""
        key = self._seed_key(epoch)
        xid = self.pairs.xid
        streams: dict[PoolKey, _PoolStream] = {}
        used = np.zeros(self.pairs.n_xids, dtype=bool)  # xling_ids already in the current global step batch
        for pool_key in self._plan(epoch):
            stream = streams.get(pool_key)
            if stream is None:
                members = self._pools[pool_key].members
                stream = _PoolStream(members, xid[members], [*key, _POOL_STREAM, *pool_key])
                streams[pool_key] = stream
            batches = [stream.draw(self.batch_size, used) for _ in range(self.num_replicas)]
            for batch in batches:
                used[xid[batch]] = False
            yield batches

    def __iter__(self) -> Iterator[list[int]]:
        """Yield this rank's batches for the current epoch, starting after a loaded resume point."""
        # A generator body runs at the first next(), i.e. after Lightning's set_epoch even though Lightning
        # calls iter() on the loader before it (with num_workers=0).
        epoch = self._epoch
        skip, self._resume_from = self._resume_from, 0
        self._batches_yielded = skip
        for step, batches in enumerate(self._global_steps(epoch)):
            # Skipped steps must still be drawn: deferrals make later batches depend on earlier ones.
            if step < skip:
                continue
            self._batches_yielded = step + 1
            yield batches[self.rank].tolist()

    def state_dict(self) -> dict[str, int]:
        """Resume point: epoch, batches this rank has handed out in it, and the seed."""
        return {"epoch": self._epoch, "batches_yielded": self._batches_yielded, "seed": self.seed}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Make the next iteration continue right after state['batches_yielded'] of state['epoch']."""
        missing = {"epoch", "batches_yielded", "seed"} - set(state)
        if missing:
            raise ValueError(f"sampler state is missing {sorted(missing)}")
        if int(state["seed"]) != self.seed:
            raise ValueError(f"sampler state has seed={state['seed']}, but this sampler has seed={self.seed}")
        epoch, done = int(state["epoch"]), int(state["batches_yielded"])
        if epoch < 0 or not 0 <= done <= self.batches_per_epoch:
            raise ValueError(
                f"invalid sampler state epoch={epoch}, batches_yielded={done} "
                f"(batches_per_epoch={self.batches_per_epoch})"
            )
        self._epoch = epoch
        self._resume_from = done
        self._batches_yielded = done
