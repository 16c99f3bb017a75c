"""Lightning DataModule: tokenise each text once (datasets `map`, cached), batches from a language sampler."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from lightning.pytorch import LightningDataModule
from torch.utils.data import DataLoader, Dataset, Sampler

from src.data.padding import LengthBuckets
from src.data.pairs import PairTable, relevance_keys

Tokenize = Callable[..., dict[str, list[list[int]]]]


def tokenized_column(
    texts: Sequence[str],
    tokenize: Callable[[list[str], list[str] | None], dict[str, list[list[int]]]],
    key: str,
    cache_dir: str | Path | None,
    contexts: Sequence[str] | None = None,
) -> dict[str, list[list[int]]]:
    """Tokenise texts through `datasets.map`, cached on disk under a fingerprint of texts and tokenizer."""
    import datasets

    columns: dict[str, list[str]] = {"text": list(texts)}
    if contexts is not None:
        columns["context"] = list(contexts)
    digest = hashlib.sha256(key.encode())
    for column in columns.values():
        for t in column:
            digest.update(t.encode())
            digest.update(b"\0")
    cache_file = None
    if cache_dir is not None:
        Path(cache_dir).mkdir(parents=True, exist_ok=True)
        cache_file = str(Path(cache_dir) / f"tok-{digest.hexdigest()[:24]}.arrow")
    ds = datasets.Dataset.from_dict(columns)
    ds = ds.map(
        lambda b: tokenize(b["text"], b.get("context")),
        batched=True,
        batch_size=2000,
        remove_columns=list(columns),
        cache_file_name=cache_file,
        load_from_cache_file=cache_file is not None,
        new_fingerprint=digest.hexdigest()[:32],
        desc="tokenising",
    )
    # one bulk read into plain lists: datasets 5 columns are lazy and cost ~200 us per row access
    return ds[:]


class _Indices(Dataset):
    """The dataset is the pair index itself; the collator gathers token ids."""

    def __init__(self, n: int) -> None:
        self.n = n

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> int:
        return i


class PairCollator:
    """One pair table's token ids (tokenised once) and false-negative keys; turns pair indices into a batch."""

    def __init__(self, pairs: PairTable, encoder: Any, cache_dir: str | Path | None, length_buckets: int) -> None:
        self.pairs, self.encoder, self.cache_dir, self.length_buckets = pairs, encoder, cache_dir, length_buckets
        self._queries: dict[str, list[list[int]]] | None = None
        self._passages: dict[str, list[list[int]]] | None = None
        # Which passages answer which pair's question (false-negative mask, src/model/loss.py).
        self._passage_key, self._relevant = relevance_keys(pairs)

    def _key(self, side: str) -> str:
        enc = self.encoder
        return f"{enc.pretrained}|{side}|{enc.prefixes[side]}|{enc.max_lengths[side]}|{len(enc.tokenizer)}"

    def prepare(self) -> None:
        """Tokenise queries and passages once (cached on disk under cache_dir)."""
        if self._queries is not None:
            return
        enc = self.encoder
        self._queries = tokenized_column(
            self.pairs.queries, lambda t, c: enc.tokenize(t, "query"), self._key("query"), self.cache_dir
        )
        self._passages = tokenized_column(
            self.pairs.passages,
            lambda t, c: enc.tokenize(t, "passage", c),
            self._key("passage") + ("|ctx" if self.pairs.passage_contexts else ""),
            self.cache_dir,
            contexts=self.pairs.passage_contexts,
        )

    def __call__(self, indices: list[int]) -> dict[str, Any]:
        """Pad the batch's queries and its passages (positives first, then the hard negatives)."""
        assert self._queries is not None and self._passages is not None, "call prepare() first"
        p = self.pairs
        idx = torch.as_tensor(indices, dtype=torch.long).numpy()
        negs = [int(n) for n in p.neg_idx[idx] if n >= 0]
        passage_rows = [int(i) for i in p.p_idx[idx]] + negs
        query_rows = [int(i) for i in p.q_idx[idx]]
        sides = {
            "query": self.encoder.pad({k: [v[i] for i in query_rows] for k, v in self._queries.items()}),
            "passage": self.encoder.pad({k: [v[i] for i in passage_rows] for k, v in self._passages.items()}),
        }
        buckets = None
        if self.length_buckets > 1:  # token counts are here on the host: grouping them costs no device sync
            buckets = {side: LengthBuckets.from_lengths(t["attention_mask"].sum(1).numpy(), self.length_buckets,
                                                         self.encoder.pad_to_multiple_of)
                       for side, t in sides.items()}
        return {
            **sides,
            "buckets": buckets,
            "query_keys": torch.from_numpy(self._relevant[idx]),
            "passage_keys": torch.from_numpy(self._passage_key[passage_rows]),
            "n_pos": len(indices),
            "q_lang": [p.q_lang[i] for i in indices],
            "p_lang": [p.p_lang[i] for i in indices],
            "xling_id": [p.xling_id[i] for i in indices],
        }


VAL_SEED = 0  # validation batches are the same for every sampler and seed


def pair_sampler(factory: Callable[..., Sampler[list[int]]], pairs: PairTable, batch_size: int, seed: int,
                 num_replicas: int = 1, rank: int = 0) -> Sampler[list[int]]:
    """The batch sampler over a pair table for one rank (`factory`: `sampling.sampler`, instantiated partial).

    The sampler checks at construction that every pool it draws from fills a global step batch.
    """
    return factory(q_lang=pairs.q_lang, p_lang=pairs.p_lang, xling_id=pairs.xling_id, batch_size=batch_size,
                   seed=seed, num_replicas=num_replicas, rank=rank)


def validation_batches(n: int, batch_size: int, rank: int = 0, num_replicas: int = 1) -> list[list[int]]:
    """Fixed batches over all validation pairs (one shuffle with VAL_SEED), this rank's share under DDP."""
    order = np.random.default_rng(VAL_SEED).permutation(n)
    batches = [order[i:i + batch_size].tolist() for i in range(0, n, batch_size)]
    return batches[rank::num_replicas]


class PairDataModule(LightningDataModule):
    """Serves language-structured training batches and fixed validation batches of (query, positive, negative)."""

    def __init__(
        self,
        pairs: PairTable,
        encoder: Any,
        batch_sampler: Sampler[list[int]],
        batch_size: int,
        cache_dir: str | Path | None = None,
        num_workers: int = 0,
        length_buckets: int = 1,
        val_pairs: PairTable | None = None,
    ) -> None:
        super().__init__()
        self.pairs = pairs
        self.encoder = encoder
        # Built once by the caller, for this process's rank (its shard of every global step batch).
        self.batch_sampler = batch_sampler
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.train_collator = PairCollator(pairs, encoder, cache_dir, length_buckets)
        self.val_collator = PairCollator(val_pairs, encoder, cache_dir, length_buckets) if val_pairs else None

    def setup(self, stage: str | None = None) -> None:
        """Tokenise queries and passages once; check that the batch sampler shards for this trainer's rank."""
        self.train_collator.prepare()
        if self.val_collator is not None:
            self.val_collator.prepare()
        trainer = self.trainer
        world, rank = (trainer.world_size, trainer.global_rank) if trainer is not None else (1, 0)
        built = (getattr(self.batch_sampler, "num_replicas", 1), getattr(self.batch_sampler, "rank", 0))
        if built != (world, rank):
            raise ValueError(f"the batch sampler was built for (num_replicas, rank) = {built}, "
                             f"but this trainer runs as {(world, rank)}")

    def collate(self, indices: list[int]) -> dict[str, Any]:
        """A training batch (see PairCollator)."""
        return self.train_collator(indices)

    def transfer_batch_to_device(self, batch: dict[str, Any], device: torch.device, dataloader_idx: int) -> dict[str, Any]:
        """Move only the padded token tensors; the per-pair metadata (language codes, ids) stays on the host.

        Lightning's default walks every element of the batch's lists (~3 ms a step for 3 x 32 strings).
        """
        moved: dict[str, Any] = {side: {k: v.to(device, non_blocking=True) for k, v in batch[side].items()}
                                 for side in ("query", "passage")}
        moved.update({k: batch[k].to(device, non_blocking=True) for k in ("query_keys", "passage_keys")})
        if batch.get("buckets"):
            moved["buckets"] = {side: b.to(device) for side, b in batch["buckets"].items()}
        return {**batch, **moved}

    def train_dataloader(self) -> DataLoader:
        """Batches come whole from the language sampler; the sampler also distributes across ranks."""
        return DataLoader(
            _Indices(len(self.pairs)),
            batch_sampler=self.batch_sampler,
            collate_fn=self.collate,
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
        )

    def val_dataloader(self) -> DataLoader | list:
        """Fixed validation batches (validation loss); none without a validation split."""
        if self.val_collator is None:
            return []
        world, rank = (self.trainer.world_size, self.trainer.global_rank) if self.trainer is not None else (1, 0)
        return DataLoader(_Indices(len(self.val_collator.pairs)),
                          batch_sampler=validation_batches(len(self.val_collator.pairs), self.batch_size, rank, world),
                          collate_fn=self.val_collator, num_workers=0)

    def state_dict(self) -> dict[str, Any]:
        """Sampler position, so a resumed run continues with the batches it would have seen."""
        sd = getattr(self.batch_sampler, "state_dict", None)
        if not callable(sd):
            return {}
        state = dict(sd())
        trainer = self.trainer
        if trainer is not None and trainer.state.fn == "fit":
            # The sampler counts batches handed to the DataLoader, which runs ahead with num_workers > 0 (and
            # prefetches one batch even without workers): the fit loop's count is what was trained on.
            state["epoch"] = trainer.current_epoch
            state["batches_yielded"] = trainer.fit_loop.epoch_loop.batch_progress.current.processed
        return {"sampler": state}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore the sampler position saved by `state_dict`."""
        if "sampler" in state:
            self.batch_sampler.load_state_dict(state["sampler"])  # type: ignore[attr-defined]
