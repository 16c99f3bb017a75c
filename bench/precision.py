"""Comparison 5: fp32 vs bf16 autocast on this CPU — encoding and a training step — and what `auto` picks.

bf16 autocast is fast only where the CPU has bf16 units (AMX, AVX512-BF16); elsewhere oneDNN emulates it and
it is several times slower than fp32. Both precisions run the same work, alternated in one process:
encoding every `stride`-th XQuAD-R text with the bundled mE5-small (`BiEncoder.encode`), and plain training
steps (bench.train_step's loop: forward, InfoNCE, backward, clipping, AdamW) on the same MLQA-R batches.
Goal: the precision that `trainer.precision=auto` resolves to on this machine is within 5 % of the faster.

    python -m bench precision                   # this CPU as it is
    python -m bench precision --cap-isa avx2    # the same CPU as an AVX2-only machine looks to torch/oneDNN
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from bench import common, train_step
from bench.harness import alternate
from src.runtime.hardware import detect_cpu, resolve_precision

GOAL_RATIO = 1.05  # auto's pick / the faster precision
ARMS = {"32-true": None, "bf16-mixed": torch.bfloat16}


@dataclass(frozen=True)
class Size:
    """How much to encode and how many training steps per repetition."""

    stride: int  # every stride-th question and candidate of XQuAD-R (all 11 languages)
    warmup_steps: int
    steps: int
    repetitions: int
    batch_size: int = 128


QUICK = Size(stride=400, warmup_steps=1, steps=1, repetitions=1)
# Emulated bf16 can be ~17x slower than fp32 per step: sizes that stay minutes even there.
FULL = Size(stride=32, warmup_steps=1, steps=3, repetitions=2)


def auto_row(kind: str, medians: dict[str, float], auto: str, setting: str, extra: str) -> dict[str, Any]:
    """One table row: auto's pick against the faster of the two precisions."""
    fastest = min(medians, key=medians.__getitem__)
    ratio = medians[auto] / medians[fastest]
    return {"comparison": "5 precision", "setting": f"{kind}: {setting}; auto -> {auto}",
            "project_s": medians[auto], "reference_s": medians[fastest],
            "ratio": {"median": ratio, "min": ratio, "max": ratio}, "goal": f"auto / fastest <= {GOAL_RATIO}",
            "met": ratio <= GOAL_RATIO,
            "extra": f"bf16/fp32 {medians['bf16-mixed'] / medians['32-true']:.2f}x; fastest {fastest}; {extra}"}


def run(quick: bool = False, size: Size | None = None) -> dict[str, Any]:
    """Encoding and training step, fp32 vs bf16, alternated; the rows say whether auto picked the faster."""
    size = size or (QUICK if quick else FULL)
    cpu = detect_cpu()
    auto = resolve_precision("auto", "cpu", cpu.native_bf16, cuda_bf16=False)
    print(f"precision: {cpu.model} [{cpu.flags()}], auto -> {auto}")
    texts = common.dataset_texts(common.xquad_r(), size.stride)
    s = train_step.setup("me5_small_bundled")
    steps = train_step.Size(models=("me5_small_bundled",), warmup=size.warmup_steps, steps=size.steps,
                            repetitions=size.repetitions)
    batches = train_step.plain_batches(s, size.warmup_steps + size.steps)
    s.encoder.eval()
    encode = alternate({p: (lambda d=d: s.encoder.encode(texts.queries + texts.passages, "passage",
                                                          batch_size=size.batch_size, autocast_dtype=d))
                        for p, d in ARMS.items()}, baseline="32-true", repetitions=size.repetitions, warmup=0)
    s.encoder.train()
    step = alternate({p: (lambda p=p: train_step.plain_steps(s, steps, batches, precision=p)) for p in ARMS},
                     baseline="32-true", repetitions=size.repetitions, warmup=0)
    tokens = sum(int(b["query"]["attention_mask"].numel() + b["passage"]["attention_mask"].numel())
                 for b in batches) // len(batches)
    rows = [
        auto_row("encoding", {p: encode.arms[p].median_s for p in ARMS}, auto,
                 f"{len(texts)} XQuAD-R texts, mE5-small, batch {size.batch_size}", f"{cpu.flags()}"),
        auto_row("train step", {p: step.arms[p].median_s for p in ARMS}, auto,
                 f"mE5-small, batch {s.cfg.data.batch_size} + hard negatives (~{tokens:,} padded tokens)",
                 f"{cpu.flags()}"),
    ]
    return {"size": size.__dict__, "cpu": {**cpu.__dict__, "native_bf16": cpu.native_bf16}, "auto": auto,
            "rows": rows, "details": {"encoding": encode.to_json(), "train_step": step.to_json()}}
