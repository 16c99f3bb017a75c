"""All of XQuAD-R: encoding of the 26,104 texts (project vs sentence-transformers) and the evaluation floor.

    python -m bench.fullset            # ~30 min on 2 cores -> bench/results/fullset.json

`make bench` measures slices so that it finishes in ~20 minutes; this runs the two comparisons whose
reference can run on the whole set here (the per-pair evaluator grid would re-encode 12x 26,104 texts).
Encoding: fp32 and bf16, 2 alternated repetitions each. Floor: `evaluate_sets` on the full 121 pairs +
pooled vs encoding alone of the same texts, under bf16 autocast (the evaluation precision of the default
CPU trainer, bf16-mixed), 2 alternated repetitions.
"""

from __future__ import annotations

import argparse
import os
from dataclasses import replace
from pathlib import Path
from typing import Any

from bench import common, encoding, grid
from bench.harness import RESULTS_DIR, write_result


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Encoding on every text, then the full-set floor; one JSON file with both."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repetitions", type=int, default=2)
    p.add_argument("--results-dir", type=Path, default=RESULTS_DIR)
    args = p.parse_args(argv)
    if not common.has_sentence_transformers():
        raise SystemExit(common.ST_MISSING)

    enc_payload = encoding.run(size=replace(encoding.ALL, repetitions=args.repetitions))
    ds = common.xquad_r()
    enc = common.encoder("me5_small_bundled")
    n_texts = ds.num_questions + ds.num_candidates
    print(f"floor: all of XQuAD-R ({n_texts} texts), bf16")
    floor = grid.floor_ratio(enc, ds, encoding.ALL.batch_size, args.repetitions, precision="bf16-mixed")
    rows = enc_payload["rows"] + [grid.floor_row(
        f"me5_small_bundled, all of XQuAD-R ({n_texts} texts), 121 pairs + pooled, bf16: evaluate_sets / encode only",
        floor)]
    payload = {"encoding": enc_payload, "floor": floor, "rows": rows}
    path = write_result("fullset", payload, args.results_dir)
    from bench.__main__ import markdown_table

    print(markdown_table(rows))
    print(f"written to {path}")
    return payload


if __name__ == "__main__":
    main()
