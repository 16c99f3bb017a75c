"""Comparison 3: a training step — the project's Lightning path vs a minimal hand-written PyTorch loop.

Project arm: `RetrievalModule` + the real `PairDataModule` (tokenised once, batches from the hybrid
language sampler, collated in the step's process) + the Trainer from `conf/trainer/cpu.yaml` (bf16-mixed,
gradient clipping, progress bar), with logging off or with the configured MLflow logger. Plain arm: the
same encoder, loss, batch size 32, precision, AdamW and clipping over the same batches, pre-collated,
nothing logged. The step time is the wall time between consecutive batch ends (so it includes fetching the
next batch); the batch wait is the time from one batch end to the next batch start (data loading on the
critical path). Goal: project <= 1.10 x plain.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from lightning.pytorch import Callback, LightningModule, Trainer

from bench import common
from bench.harness import Timed, alternate

GOAL_RATIO = 1.10


@dataclass(frozen=True)
class Size:
    """Steps per repetition: the first `warmup` steps of each run are not timed."""

    models: tuple[str, ...]
    warmup: int
    steps: int
    repetitions: int
    mlflow_arm: bool = True  # also time Lightning with the configured MLflow logger


QUICK = Size(models=("tiny",), warmup=1, steps=4, repetitions=1)
FULL_TINY = Size(models=("tiny",), warmup=5, steps=40, repetitions=3)
FULL_BUNDLED = Size(models=("me5_small_bundled",), warmup=1, steps=4, repetitions=2, mlflow_arm=False)


class StepTimer(Callback):
    """Per-step wall times (batch end to batch end) and batch waits (batch end to next batch start)."""

    def __init__(self, skip: int) -> None:
        self.skip = skip
        self.step_s: list[float] = []
        self.wait_s: list[float] = []
        self._last_end: float | None = None
        self._n = 0

    def on_train_batch_start(self, trainer: Trainer, module: LightningModule, *args: Any) -> None:
        """The wait since the previous step ended: fetching and collating this batch."""
        if self._last_end is not None and self._n >= self.skip:
            self.wait_s.append(time.perf_counter() - self._last_end)

    def on_train_batch_end(self, trainer: Trainer, module: LightningModule, *args: Any) -> None:
        """Close one step (forward, backward, clipping, optimizer, scheduler, logging)."""
        now = time.perf_counter()
        if self._last_end is not None and self._n >= self.skip:
            self.step_s.append(now - self._last_end)
        self._last_end = now
        self._n += 1


@dataclass
class Setup:
    """Everything both arms share: the composed config, the training pairs and the encoder."""

    cfg: Any
    pairs: Any
    encoder: Any
    precision: str  # trainer.precision resolved for this machine (auto: bf16-mixed only where bf16 is native)


def setup(model: str) -> Setup:
    """Config, MLQA-R training pairs and the encoder, built as `src.run` builds them."""
    from src.data.sets import load_training_pairs
    from src.model.encoder import build_encoder
    from src.runtime import resolve_runtime

    cfg = common.compose([f"model={model}"])
    pairs = load_training_pairs(cfg.data.train, cfg.seed)
    encoder = build_encoder(cfg.model, texts=pairs.queries + pairs.passages)
    encoder.train()
    return Setup(cfg, pairs, encoder, resolve_runtime(cfg.trainer, cfg.threads).precision)


def datamodule(s: Setup) -> Any:
    """A fresh PairDataModule (tokenisation cached on disk), so every run starts at the same batches."""
    from hydra.utils import instantiate

    from src.data.datamodule import PairDataModule, pair_sampler

    sampler = pair_sampler(instantiate(s.cfg.sampling.sampler), s.pairs, s.cfg.data.batch_size, s.cfg.seed)
    return PairDataModule(s.pairs, s.encoder, sampler, s.cfg.data.batch_size,
                          cache_dir=Path(s.cfg.paths.cache_dir) / "tokenized",
                          num_workers=s.cfg.data.num_workers, length_buckets=s.cfg.model.length_buckets)


def lightning_steps(s: Setup, size: Size, mlflow: bool) -> Timed:
    """Fit warmup+steps steps through the configured Trainer; median step and the batch waits."""
    from hydra.utils import instantiate

    from src.model.module import RetrievalModule
    from src.tracking import mlflow as tracking

    module = RetrievalModule(encoder=s.encoder, loss=instantiate(s.cfg.loss),
                             optimizer=instantiate(s.cfg.optim.optimizer), warmup_ratio=s.cfg.optim.warmup_ratio,
                             name=s.cfg.model.name)
    # Steps warmup..warmup+steps-1 are timed: the same batches the plain loop times (lengths vary by language).
    timer = StepTimer(skip=size.warmup)
    root = tempfile.mkdtemp(prefix="xlir-bench-fit-")
    logger: Any = False
    if mlflow:
        logger = tracking.build_logger("bench", f"sqlite:///{root}/mlflow.db", "bench-train-step", {"task": "bench"})
    trainer = instantiate(s.cfg.trainer, precision=s.precision, logger=logger, callbacks=[timer],
                          max_steps=size.warmup + size.steps, enable_checkpointing=False, default_root_dir=root)
    dm = datamodule(s)
    collate_s: list[float] = []
    collate = dm.collate

    def timed_collate(indices: list[int]) -> dict[str, Any]:
        t0 = time.perf_counter()
        out = collate(indices)
        collate_s.append(time.perf_counter() - t0)
        return out

    dm.collate = timed_collate  # type: ignore[method-assign]  # batch assembly runs in this process
    trainer.fit(module, datamodule=dm)
    if mlflow:
        tracking.close_run(logger)
    median_step = statistics.median(timer.step_s)
    median_collate = statistics.median(collate_s[size.warmup:])
    return Timed(median_step, {"wait_s": statistics.median(timer.wait_s), "max_wait_s": max(timer.wait_s),
                               "collate_s": median_collate, "collate_share": median_collate / median_step})


def plain_batches(s: Setup, n: int) -> list[dict[str, Any]]:
    """The first n batches the project's DataModule serves, collated in advance (outside the timing)."""
    dm = datamodule(s)
    dm.setup("fit")
    out = []
    for batch in dm.train_dataloader():
        out.append(batch)
        if len(out) == n:
            return out
    raise ValueError(f"the sampler served fewer than {n} batches")


def optimizer(s: Setup) -> torch.optim.Optimizer:
    """AdamW over the encoder's trainable parameters, as configured."""
    params = [p for p in s.encoder.parameters() if p.requires_grad]
    return torch.optim.AdamW(params, lr=s.cfg.optim.lr, weight_decay=s.cfg.optim.weight_decay)


def plain_steps(s: Setup, size: Size, batches: list[dict[str, Any]], precision: str | None = None,
                opt: torch.optim.Optimizer | None = None) -> Timed:
    """A minimal loop: autocast forward, InfoNCE, backward, clip, AdamW step; median of the timed steps.

    `precision` overrides the setup's resolved one (bench.precision times both on the same batches); `opt`
    continues an optimizer across calls (else a fresh AdamW).
    """
    from hydra.utils import instantiate

    enc, loss_fn = s.encoder, instantiate(s.cfg.loss)
    params = [p for p in enc.parameters() if p.requires_grad]
    opt = opt or optimizer(s)
    bf16 = (precision or s.precision).startswith("bf16")
    clip = s.cfg.trainer.gradient_clip_val
    times = []
    for i, batch in enumerate(batches):
        t0 = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            q = enc(**batch["query"])
            p = enc(**batch["passage"])
            n = batch["n_pos"]
            loss = loss_fn(q, p[:n], p[n:] if p.shape[0] > n else None)
        loss.backward()
        if clip:
            torch.nn.utils.clip_grad_norm_(params, clip)
        opt.step()
        opt.zero_grad(set_to_none=True)
        if i >= size.warmup:
            times.append(time.perf_counter() - t0)
    return Timed(statistics.median(times), {"loss": float(loss.detach())})


def compare(model: str, size: Size) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Alternate plain, Lightning without logger, Lightning + MLflow for one model."""
    s = setup(model)
    batches = plain_batches(s, size.warmup + size.steps)
    n_params = sum(p.numel() for p in s.encoder.parameters() if p.requires_grad)
    print(f"train step: {model} ({n_params / 1e6:.1f}M trainable), {size.steps} timed steps x "
          f"{size.repetitions} repetitions")
    arms = {"plain loop": lambda: plain_steps(s, size, batches),
            "lightning (logger off)": lambda: lightning_steps(s, size, mlflow=False)}
    if size.mlflow_arm:
        arms["lightning + mlflow"] = lambda: lightning_steps(s, size, mlflow=True)
    res = alternate(arms, baseline="plain loop", repetitions=size.repetitions, warmup=0)
    rows = []
    for arm in list(arms)[1:]:
        wait = res.last_results[arm]
        ratio = res.ratios[arm]
        rows.append({
            "comparison": "3 train step", "setting": f"{model}, batch {s.cfg.data.batch_size}, "
            f"{s.precision}, {arm} vs plain loop", "project_s": res.arms[arm].median_s,
            "reference_s": res.arms["plain loop"].median_s, "ratio": ratio, "goal": f"<= {GOAL_RATIO}",
            "met": ratio["median"] <= GOAL_RATIO,
            "extra": f"collate (on the step's thread) {wait['collate_s'] * 1e3:.1f} ms = "
                     f"{wait['collate_share']:.1%} of a step; batch end to next batch start (also progress bar, "
                     f"logger) {wait['wait_s'] * 1e3:.1f} ms",
        })
    return res.to_json() | {"batch_wait": {k: res.last_results[k] for k in res.last_results if k != "plain loop"}}, rows


def run(quick: bool = False) -> dict[str, Any]:
    """Tiny model, then the bundled model (full runs only)."""
    sizes = [QUICK] if quick else [FULL_TINY, FULL_BUNDLED]
    details, rows = {}, []
    for size in sizes:
        for model in size.models:
            details[model], model_rows = compare(model, size)
            rows.extend(model_rows)
    return {"sizes": [s.__dict__ for s in sizes], "rows": rows, "details": details}
