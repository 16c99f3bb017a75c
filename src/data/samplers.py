"""Language-structured batch samplers: X-X-mono, X-X (mixed), X-Y and hybrid batches (arXiv 2408.10536).

Every sampler yields lists of pair indices and is meant for ``DataLoader(dataset, batch_sampler=sampler)``.

Semantics shared by all samplers
--------------------------------
* Pools. ``xx``: one pool per language X of its (X, X) pairs; ``xx_mixed``: all same-language pairs;
  ``xy``: all cross-language pairs; ``hybrid``: the ``xx`` pools plus the ``xy`` pool.
* Streams. Each pool is consumed as a stream of shuffled passes; pass k of a pool is a permutation seeded by
  (seed, epoch, pool, k), so no pair repeats within a pass. A pass starts only when the previous one is used
  up, and leaves out the pairs still deferred from it, so a pair is never pending twice.
* No false negatives. A batch never holds two pairs with the same ``xling_id``, nor does the global step
  batch (the union over ranks), since negatives gathered across ranks would otherwise contain positives.
  A pair that would clash is deferred to the front of its stream, not dropped.
* Steps. At each step the batch type (and, for X-X-mono, the language) is drawn once, then
  ``num_replicas`` batches of that type are drawn from the same pool and rank r takes the r-th. Every rank
  computes the same global sequence, so no communication is needed.
* Epoch length. ``batches_per_epoch`` defaults to ``n_pairs // (batch_size * num_replicas)``, where
  ``n_pairs`` counts the pairs of the pools the sampler uses: same-language pairs for ``xx`` / ``xx_mixed``,
  cross-language pairs for ``xy``, and ``alpha * n_same + (1 - alpha) * n_cross`` for ``hybrid``.
  Because ``xx`` draws languages uniformly (not proportionally to pool size), a small language's pool can
  run through more than one pass in an epoch; that is inherent to the uniform draw. Near the end of an epoch
  deferrals can also force a pool into its next pass, so a handful of pairs may repeat even when
  ``n_pairs`` is an exact multiple of the global batch size.
* Determinism. Batches depend only on (seed, epoch, inputs, batch_size, num_replicas, batches_per_epoch,
  alpha); the batch-type draw, the language draw and each pool's shuffles use separate RNG streams, so
  ``alpha=0`` reproduces ``xy`` and ``alpha=1`` reproduces ``xx`` batch for batch.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, ClassVar

import numpy as np
from torch.utils.data import Sampler

SAMPLER_NAMES: tuple[str, ...] = ("xx", "xx_mixed", "xy", "hybrid")
BATCH_TYPES: tuple[str, ...] = ("xx", "xx_mixed", "xy")

# Separate RNG stream tags: the hybrid coin flips must never shift the language draw or a pool shuffle.
_STREAM_PLAN = 0
_STREAM_LANG = 1
_STREAM_POOL = 2
# Pool families inside the pool stream key; xx pools add the language code as a second key element.
_FAMILY = {"xx": 0, "xx_mixed": 1, "xy": 2}
_EMPTY = np.empty(0, dtype=np.int64)


def _check_alpha(alpha: float) -> float:
    """Return alpha as float or raise if it is not a probability."""
    value = float(alpha)
    if not 0.0 <= value <= 1.0:  # also rejects NaN
        raise ValueError(f"alpha must be in [0, 1] (probability of an X-X batch), got alpha={alpha!r}")
    return value


def _check_kind(kind: str) -> None:
    """Raise a ValueError naming the valid sampler names."""
    if kind not in SAMPLER_NAMES:
        raise ValueError(f"unknown batch sampler {kind!r}; valid names: {', '.join(SAMPLER_NAMES)}")


def batch_type_plan(kind: str, alpha: float | None, n_batches: int, rng: np.random.Generator) -> list[str]:
    """Per-step batch type ('xx', 'xx_mixed' or 'xy'); hybrid flips one alpha-coin per step from rng."""
    _check_kind(kind)
    if n_batches < 0:
        raise ValueError(f"n_batches must be >= 0, got {n_batches}")
    if kind != "hybrid":
        return [kind] * n_batches
    a = _check_alpha(0.5 if alpha is None else alpha)
    # random() is in [0, 1): alpha=0 never gives 'xx' and alpha=1 always does.
    return ["xx" if x else "xy" for x in (rng.random(n_batches) < a)]


def language_plan(n_languages: int, n_batches: int, rng: np.random.Generator) -> np.ndarray:
    """Uniform language index per step (used only at X-X-mono steps), drawn independently of pool sizes."""
    if n_languages < 1:
        raise ValueError(f"n_languages must be >= 1, got {n_languages}")
    return rng.integers(0, n_languages, size=n_batches, dtype=np.int64)


def default_batches_per_epoch(
    kind: str, n_same: int, n_cross: int, batch_size: int, num_replicas: int = 1, alpha: float = 0.5
) -> int:
    """Epoch length: pairs in the pools used (alpha-weighted for hybrid) // global batch size."""
    _check_kind(kind)
    if kind in ("xx", "xx_mixed"):
        n_pairs: float = n_same
    elif kind == "xy":
        n_pairs = n_cross
    else:
        a = _check_alpha(alpha)
        n_pairs = a * n_same + (1.0 - a) * n_cross
    return math.floor(n_pairs / (batch_size * num_replicas))


def _encode(values: Sequence[Any]) -> tuple[np.ndarray, list[Any]]:
    """Integer codes in first-appearance order (a dict pass beats sorting 300k strings)."""
    index: dict[Any, int] = {}
    codes = np.fromiter((index.setdefault(v, len(index)) for v in values), dtype=np.int64, count=len(values))
    return codes, list(index)


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


class LanguageBatchSampler(Sampler[list[int]]):
    """Base batch sampler: pools, deterministic per-epoch streams, rank sharding and resumable state."""

    kind: ClassVar[str] = ""

    def __init__(
        self,
        q_lang: Sequence[str],
        p_lang: Sequence[str],
        xling_id: Sequence[str],
        batch_size: int,
        seed: int = 0,
        batches_per_epoch: int | None = None,
        num_replicas: int = 1,
        rank: int = 0,
        *,
        alpha: float | None = None,
    ) -> None:
        """Index the pairs into pools and validate that every pool in use can fill a global step batch."""
        super().__init__()
        _check_kind(self.kind)
        n = len(q_lang)
        if len(p_lang) != n or len(xling_id) != n:
            raise ValueError(
                f"q_lang, p_lang and xling_id must have the same length, got {n}, {len(p_lang)}, {len(xling_id)}"
            )
        if n == 0:
            raise ValueError("no training pairs: q_lang, p_lang and xling_id are empty")
        if isinstance(batch_size, bool) or int(batch_size) != batch_size or batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, got batch_size={batch_size!r}")
        if isinstance(num_replicas, bool) or int(num_replicas) != num_replicas or num_replicas < 1:
            raise ValueError(f"num_replicas must be a positive integer, got num_replicas={num_replicas!r}")
        if not 0 <= rank < num_replicas:
            raise ValueError(f"rank must be in [0, num_replicas={num_replicas}), got rank={rank!r}")
        if self.kind == "hybrid":
            alpha = _check_alpha(0.5 if alpha is None else alpha)
        elif alpha is not None:
            raise ValueError(f"alpha only applies to the 'hybrid' sampler, not {self.kind!r}")
        self.alpha = alpha
        self.batch_size = int(batch_size)
        self.num_replicas = int(num_replicas)
        self.rank = int(rank)
        self.seed = int(seed)
        # Lightning (2.6) calls set_epoch only on loader.sampler and loader.batch_sampler.sampler, not on us.
        self.sampler = _SetEpochForwarder(self)

        # Languages get sorted-name codes so pool RNG keys agree across samplers and ranks.
        self.languages: tuple[str, ...] = tuple(sorted(set(q_lang) | set(p_lang)))
        lang_code = {lang: i for i, lang in enumerate(self.languages)}
        q = np.fromiter((lang_code[v] for v in q_lang), dtype=np.int64, count=n)
        p = np.fromiter((lang_code[v] for v in p_lang), dtype=np.int64, count=n)
        self._xid, xid_names = _encode(xling_id)
        self._n_xids = len(xid_names)
        same = q == p
        self.n_same = int(same.sum())
        self.n_cross = n - self.n_same

        uses_xx = self.kind == "xx" or (self.kind == "hybrid" and alpha > 0.0)
        uses_xy = self.kind == "xy" or (self.kind == "hybrid" and alpha < 1.0)
        global_batch = self.batch_size * self.num_replicas
        # pool key -> global pair indices; xx pools are keyed (family, language code).
        self._pools: dict[tuple[int, int], np.ndarray] = {}
        same_idx = np.flatnonzero(same)
        self.xx_languages: tuple[str, ...] = tuple(self.languages[c] for c in np.unique(q[same_idx]))
        if uses_xx:
            if not self.xx_languages:
                raise ValueError(
                    f"sampler {self.kind!r} needs same-language (X, X) pairs, but there are none"
                )
            for lang in self.xx_languages:
                code = lang_code[lang]
                members = same_idx[q[same_idx] == code]
                self._add_pool((_FAMILY["xx"], code), members, f"xx pool for language {lang!r}", global_batch)
        if self.kind == "xx_mixed":
            if not same_idx.size:
                raise ValueError("sampler 'xx_mixed' needs same-language (X, X) pairs, but there are none")
            self._add_pool(
                (_FAMILY["xx_mixed"], 0), same_idx, "xx_mixed pool (same-language pairs)", global_batch
            )
        if uses_xy:
            cross_idx = np.flatnonzero(~same)
            if not cross_idx.size:
                raise ValueError(
                    f"sampler {self.kind!r} needs cross-language (X, Y) pairs with X != Y, but there are none "
                    f"(languages: {', '.join(self.languages)})"
                )
            self._add_pool((_FAMILY["xy"], 0), cross_idx, "xy pool (cross-language pairs)", global_batch)

        if batches_per_epoch is None:
            batches_per_epoch = default_batches_per_epoch(
                self.kind,
                self.n_same,
                self.n_cross,
                self.batch_size,
                self.num_replicas,
                alpha if alpha is not None else 0.5,
            )
            # Cannot trigger once every used pool passed _add_pool (each holds a global batch); kept as a guard.
            if batches_per_epoch < 1:
                raise ValueError(
                    f"too few pairs for one step: sampler {self.kind!r} has {self.n_same} same-language and "
                    f"{self.n_cross} cross-language pairs, batch_size={self.batch_size} x "
                    f"num_replicas={self.num_replicas}; pass batches_per_epoch explicitly"
                )
        elif (
            isinstance(batches_per_epoch, bool)
            or int(batches_per_epoch) != batches_per_epoch
            or (batches_per_epoch < 1)
        ):
            raise ValueError(f"batches_per_epoch must be a positive integer, got {batches_per_epoch!r}")
        self.batches_per_epoch = int(batches_per_epoch)

        self._epoch = 0
        self._batches_yielded = 0
        self._resume_from = 0  # steps to skip on the next __iter__ after load_state_dict

    def _add_pool(self, key: tuple[int, int], members: np.ndarray, name: str, global_batch: int) -> None:
        """Register a pool after checking it has enough distinct xling_ids for a global step batch."""
        distinct = int(np.unique(self._xid[members]).size)
        if distinct < global_batch:
            per_step = f" (x num_replicas={self.num_replicas} = {global_batch} per step)"
            raise ValueError(
                f"batch_size={self.batch_size}{per_step if self.num_replicas > 1 else ''} exceeds the "
                f"{distinct} distinct xling_ids in the {name}; a batch cannot be filled without duplicate "
                f"xling_ids (false negatives). Lower batch_size or drop the language."
            )
        self._pools[key] = members

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
        """(batch type, language for 'xx' steps else None) for every step of an epoch, for logging/tests."""
        types, langs = self._plan(self._epoch if epoch is None else epoch)
        return [(t, self.xx_languages[langs[i]] if t == "xx" else None) for i, t in enumerate(types)]

    def _seed_key(self, epoch: int) -> list[int]:
        """RNG key prefix; SeedSequence needs non-negative ints, so negative seeds are wrapped."""
        return [self.seed % 2**64, int(epoch)]

    def _plan(self, epoch: int) -> tuple[list[str], np.ndarray]:
        """Batch types and per-step language indices for an epoch (cheap: two vectorised draws)."""
        key = self._seed_key(epoch)
        types = batch_type_plan(
            self.kind, self.alpha, self.batches_per_epoch, np.random.default_rng([*key, _STREAM_PLAN])
        )
        # Drawn for every step (not only X-X ones) so step i gets the same language whatever alpha is.
        langs = language_plan(
            max(len(self.xx_languages), 1),
            self.batches_per_epoch,
            np.random.default_rng([*key, _STREAM_LANG]),
        )
        return types, langs

    def _global_steps(self, epoch: int) -> Iterator[list[np.ndarray]]:
        """Yield, per step, the num_replicas batches of the global step (identical on every rank)."""
        types, langs = self._plan(epoch)
        key = self._seed_key(epoch)
        streams: dict[tuple[int, int], _PoolStream] = {}
        used = np.zeros(self._n_xids, dtype=bool)  # xling_ids already in the current global step batch
        xx_codes = [self.languages.index(lang) for lang in self.xx_languages]
        for step, batch_type in enumerate(types):
            pool_key = (
                (_FAMILY["xx"], xx_codes[langs[step]]) if batch_type == "xx" else (_FAMILY[batch_type], 0)
            )
            stream = streams.get(pool_key)
            if stream is None:
                members = self._pools[pool_key]
                stream = _PoolStream(members, self._xid[members], [*key, _STREAM_POOL, *pool_key])
                streams[pool_key] = stream
            batches = [stream.draw(self.batch_size, used) for _ in range(self.num_replicas)]
            for batch in batches:
                used[self._xid[batch]] = False
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


class XXBatchSampler(LanguageBatchSampler):
    """X-X-mono: one uniformly drawn language X per step; every pair in the batch is (X, X)."""

    kind = "xx"


class XXMixedBatchSampler(LanguageBatchSampler):
    """LAReQA X-X: every pair is same-language, languages mixed within a batch."""

    kind = "xx_mixed"


class XYBatchSampler(LanguageBatchSampler):
    """X-Y: every pair has q_lang != p_lang."""

    kind = "xy"


class HybridBatchSampler(LanguageBatchSampler):
    """Hybrid: each step is an X-X-mono batch with probability alpha, else an X-Y batch."""

    kind = "hybrid"

    def __init__(
        self,
        q_lang: Sequence[str],
        p_lang: Sequence[str],
        xling_id: Sequence[str],
        batch_size: int,
        seed: int = 0,
        batches_per_epoch: int | None = None,
        num_replicas: int = 1,
        rank: int = 0,
        alpha: float = 0.5,
    ) -> None:
        """Same as the base sampler plus alpha in [0, 1]: probability of an X-X step."""
        super().__init__(
            q_lang, p_lang, xling_id, batch_size, seed, batches_per_epoch, num_replicas, rank, alpha=alpha
        )


_SAMPLER_CLASSES: dict[str, type[LanguageBatchSampler]] = {
    "xx": XXBatchSampler,
    "xx_mixed": XXMixedBatchSampler,
    "xy": XYBatchSampler,
    "hybrid": HybridBatchSampler,
}


def build_batch_sampler(name: str, **kwargs: Any) -> LanguageBatchSampler:
    """Construct a sampler by name ('xx', 'xx_mixed', 'xy', 'hybrid'); alpha=None is ignored for non-hybrid."""
    _check_kind(name)
    if name != "hybrid" and kwargs.get("alpha", 0) is None:
        kwargs.pop("alpha")
    return _SAMPLER_CLASSES[name](**kwargs)
