"""Comparison 1: encoding XQuAD-R texts — project `BiEncoder.encode` vs `SentenceTransformer.encode`.

Same weights (one Hugging Face folder), same prompts/prefixes, max lengths (64 query / 128 passage tokens),
batch size and precision (fp32, and bf16 autocast for both). Goal: ratio project/reference <= 1.0 with
cosine >= 0.9999 between the two embeddings of every text.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from bench import common
from bench.harness import alternate

GOAL_RATIO = 1.0
GOAL_COSINE = 0.9999


@dataclass(frozen=True)
class Size:
    """How much of XQuAD-R to encode and how often."""

    stride: int  # every stride-th question and candidate (all 11 languages stay represented)
    repetitions: int
    batch_size: int = 128


QUICK = Size(stride=400, repetitions=2)
# ~26 batches per side: enough for the batching order to matter (a slice of one batch per side pads alike).
FULL = Size(stride=8, repetitions=3)
ALL = Size(stride=1, repetitions=2)  # all 26,104 texts (python -m bench.fullset)


def project_encode(enc: Any, texts: common.Texts, batch_size: int, dtype: torch.dtype | None) -> np.ndarray:
    """The project's path: both sides through `BiEncoder.encode`, stacked queries then passages."""
    q = enc.encode(texts.queries, "query", batch_size=batch_size, autocast_dtype=dtype)
    p = enc.encode(texts.passages, "passage", batch_size=batch_size, autocast_dtype=dtype)
    return np.concatenate([q, p])


def reference_encode(st: Any, enc: Any, texts: common.Texts, batch_size: int, dtype: torch.dtype | None) -> np.ndarray:
    """The reference: `SentenceTransformer.encode` per side, under the same autocast as the project."""
    with torch.autocast("cpu", dtype=dtype or torch.bfloat16, enabled=dtype is not None):
        q = common.st_encode(st, texts.queries, "query", enc.max_lengths["query"], batch_size)
        p = common.st_encode(st, texts.passages, "passage", enc.max_lengths["passage"], batch_size)
    return np.concatenate([q, p])


def min_cosine(a: np.ndarray, b: np.ndarray) -> float:
    """Smallest row-wise cosine similarity between two embedding matrices of the same shape."""
    if a.shape != b.shape:
        raise ValueError(f"embedding shapes differ: {a.shape} vs {b.shape}")
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    cos = (a64 * b64).sum(1) / (np.linalg.norm(a64, axis=1) * np.linalg.norm(b64, axis=1))
    return float(cos.min())


def padded_tokens(enc: Any, texts: common.Texts, batch_size: int) -> dict[str, int]:
    """Tokens each arm's forward passes see: the project sorts by token count, sentence-transformers by characters.

    Characters are a poor proxy for tokens across scripts (a Chinese or Thai character is often a token, a
    Latin one rarely), so character-sorted batches mix lengths and pad more.
    """
    out = {"real": 0, "project": 0, "sentence-transformers": 0}
    for side, side_texts in (("query", texts.queries), ("passage", texts.passages)):
        lengths = np.array([len(r) for r in enc.tokenize(side_texts, side)["input_ids"]])
        prefix = enc.prefixes[side]
        orders = {"project": np.argsort(-lengths, kind="stable"),
                  "sentence-transformers": np.argsort([-len(prefix + t) for t in side_texts])}
        out["real"] += int(lengths.sum())
        for arm, order in orders.items():
            out[arm] += sum(int(lengths[order[i:i + batch_size]].max()) * len(order[i:i + batch_size])
                            for i in range(0, len(order), batch_size))
    return out


def profile_encode(enc: Any, texts: common.Texts, batch_size: int, top: int = 8) -> dict[str, Any]:
    """torch.profiler over one project encode: the ops with the most self CPU time and their share."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        project_encode(enc, texts, batch_size, None)
    events = [e for e in prof.key_averages() if e.self_cpu_time_total > 0]
    total = sum(e.self_cpu_time_total for e in events)
    events.sort(key=lambda e: e.self_cpu_time_total, reverse=True)
    return {
        "total_self_cpu_ms": total / 1e3,
        "top_ops": [{"op": e.key, "calls": e.count, "self_cpu_ms": round(e.self_cpu_time_total / 1e3, 1),
                     "share": round(e.self_cpu_time_total / total, 4)} for e in events[:top]],
    }


def run(quick: bool = False, size: Size | None = None) -> dict[str, Any]:
    """Alternate project and reference per precision; returns the payload written to results/encoding.json."""
    size = size or (QUICK if quick else FULL)
    texts = common.dataset_texts(common.xquad_r(), size.stride)
    enc = common.encoder("me5_small_bundled")
    st = common.sentence_transformer(enc)
    warm = common.Texts(texts.queries[:16], texts.passages[:16])
    rows, details = [], {}
    tokens = padded_tokens(enc, texts, size.batch_size)
    for label, dtype in (("fp32", None), ("bf16", torch.bfloat16)):
        print(f"encoding {len(texts)} texts, {label}")
        project_encode(enc, warm, size.batch_size, dtype)  # warm-up: first-call allocations, kernel selection
        reference_encode(st, enc, warm, size.batch_size, dtype)
        res = alternate(
            {"project": lambda d=dtype: project_encode(enc, texts, size.batch_size, d),
             "sentence-transformers": lambda d=dtype: reference_encode(st, enc, texts, size.batch_size, d)},
            baseline="sentence-transformers", repetitions=size.repetitions, warmup=0,
        )
        cosine = min_cosine(res.last_results["project"], res.last_results["sentence-transformers"])
        ratio = res.ratios["project"]
        met = ratio["median"] <= GOAL_RATIO and cosine >= GOAL_COSINE
        details[label] = {**res.to_json(), "min_cosine": cosine}
        rows.append({
            "comparison": "1 encoding", "setting": f"{len(texts)} XQuAD-R texts, mE5-small, {label}, batch "
                                                     f"{size.batch_size}",
            "project_s": res.arms["project"].median_s, "reference_s": res.arms["sentence-transformers"].median_s,
            "ratio": ratio, "goal": f"ratio <= {GOAL_RATIO}, cosine >= {GOAL_COSINE}", "met": met,
            "extra": f"min cosine {cosine:.6f}; peak RSS +{res.arms['project'].rss_peak_mib or 0:.0f} / "
                     f"+{res.arms['sentence-transformers'].rss_peak_mib or 0:.0f} MiB; padded tokens "
                     f"{tokens['project']:,} / {tokens['sentence-transformers']:,} ({tokens['real']:,} real)",
        })
    prof = profile_encode(enc, common.Texts(texts.queries[:64], texts.passages[:64]), size.batch_size)
    return {"size": size.__dict__, "texts": len(texts), "rows": rows, "details": details, "profile": prof,
            "padded_tokens": tokens}
