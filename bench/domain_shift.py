"""The whole `data=domain_shift` preset: `evaluate_sets` over every set vs encoding each set's texts once.

    python -m bench.domain_shift                 # ~1 h on 2 cores -> bench/results/domain_shift.json
    python -m bench.domain_shift --repetitions 1 --sets sib200,tatoeba

Goal: evaluating (encode once + score every setting of every kind + debias-free bookkeeping) costs at most
10 % more than encoding alone (ratio <= 1.10): scoring the grids, the pooled settings without the query and
the per-pair tables must stay small next to the encoder. Both arms encode exactly the same texts per set
(each distinct text of a set once, the kind's own side), alternated in one process, same precision.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from bench import common
from bench.harness import RESULTS_DIR, alternate, write_result

GOAL = 1.10


def encode_only(enc: Any, datasets: dict[str, Any], batch_size: int, precision: str | None) -> dict[str, Any]:
    """Every set's texts encoded once, as evaluate_sets encodes them, without scoring anything."""
    from src.evaluation.driver import autocast_dtype
    from src.evaluation.kinds import kind_of

    dtype = autocast_dtype(precision)
    return {name: kind_of(ds).encode(ds, lambda t, s, c: enc.encode(t, s, c, batch_size=batch_size,
                                                                      autocast_dtype=dtype), "sentence")
            for name, ds in datasets.items()}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Load the preset's sets, alternate the two arms, write the ratio and the per-set shapes."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repetitions", type=int, default=2)
    p.add_argument("--sets", default=None, help="comma-separated subset of the preset's sets (default: all)")
    p.add_argument("--results-dir", type=Path, default=RESULTS_DIR)
    args = p.parse_args(argv)

    from src.evaluation.driver import evaluate_sets
    from src.evaluation.kinds import kind_of
    from src.runtime.hardware import detect_cpu, resolve_precision

    cfg = common.compose(["data=domain_shift"])
    datasets = common.eval_sets(["data=domain_shift"])
    if args.sets:
        wanted = args.sets.split(",")
        unknown = [s for s in wanted if s not in datasets]
        if unknown:
            raise SystemExit(f"--sets: {unknown} not in the preset ({', '.join(datasets)})")
        datasets = {s: datasets[s] for s in wanted}
    precision = resolve_precision("auto", "cpu", detect_cpu().native_bf16, cuda_bf16=False)
    enc = common.encoder("me5_small_bundled")
    batch_size = int(cfg.eval.batch_size)
    texts = {name: kind_of(ds).num_texts(ds) for name, ds in datasets.items()}
    print(f"domain_shift: {sum(texts.values())} texts over {len(texts)} sets, precision {precision}")
    res = alternate({"evaluate_sets": lambda: evaluate_sets(enc, datasets, batch_size, precision=precision),
                     "encode only": lambda: encode_only(enc, datasets, batch_size, precision)},
                    baseline="encode only", repetitions=args.repetitions, warmup=0)
    floor = res.to_json()
    ratio = floor["ratios"]["evaluate_sets"]
    row = {"comparison": "domain_shift floor", "setting": f"me5_small_bundled, {len(texts)} sets "
           f"({sum(texts.values())} texts), {precision}: evaluate_sets / encode only",
           "project_s": floor["arms"]["evaluate_sets"]["median_s"],
           "reference_s": floor["arms"]["encode only"]["median_s"], "ratio": ratio, "goal": f"<= {GOAL}",
           "met": ratio["median"] <= GOAL}
    payload = {"floor": floor, "texts_per_set": texts, "precision": precision, "rows": [row]}
    path = write_result("domain_shift", payload, args.results_dir)
    from bench.__main__ import markdown_table

    print(markdown_table([row]))
    print(f"written to {path}")
    return payload


if __name__ == "__main__":
    main()
