"""Resident memory of the default training run: does RSS creep, and what does each remedy cost per step?

Each option is a real `python -m src.run` of the default experiment's training (evaluation and exports
off) in its own process, with `callbacks.memory` logging RSS and its high-water mark every logging step to
a throw-away MLflow store. Reported per option: RSS after step 20 and after the last step (creep =
their ratio), the peak, and the median step time from the logged throughput, each against no trimming.
Goals (docs/hardware.md: Memory): RSS at the last step within 10 % of step 20, peak <= 6 GB, steps <= 10 % slower.

    python -m bench.memory [--steps 150] [--options notrim,trim10,trim1,trim10_exact]
    python -m bench.memory --trim-cost [--blocks 8]

The options run one after the other, so their step times compare only on an idle machine. `--trim-cost`
measures the trimming's step-time cost side by side instead: in one process, blocks of 10 training steps of
the bundled model (plain loop, the configured precision) alternate between "malloc_trim, then 10 steps" and
"10 steps", so load from other processes falls on both arms alike.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench.common import REPO
from bench.harness import RESULTS_DIR, write_result

OPTIONS = {
    "notrim": ["callbacks.memory.trim_every_n_steps=null"],
    "trim10": ["callbacks.memory.trim_every_n_steps=10"],
    "trim1": ["callbacks.memory.trim_every_n_steps=1"],
    # exact padded widths (the default rounds them up to multiples of 8: fewer oneDNN kernel shapes)
    "trim10_exact": ["callbacks.memory.trim_every_n_steps=10", "model.pad_to_multiple_of=1"],
}
GOALS = {"creep": 1.10, "peak_gib": 6.0, "step_ratio": 1.10}


def overrides(option: str, steps: int, root: Path, db: str) -> list[str]:
    """The `src.run` overrides of one option: training only, into a throw-away store (tests compose them)."""
    return [*OPTIONS[option], f"trainer.max_steps={steps}", "+callbacks.retrieval_eval.at_train_end=false",
            "export_model=false", f"logger.tracking_uri={db}", f"logger.run_name={option}",
            f"hydra.run.dir={root / option}"]


def train(option: str, steps: int, root: Path, extra: Sequence[str] = ()) -> dict[str, Any]:
    """One training-only run; RSS series and throughput from its MLflow metrics."""
    import mlflow

    db = f"sqlite:///{root}/mlflow.db"
    cmd = [sys.executable, "-m", "src.run", *overrides(option, steps, root, db), *extra]
    subprocess.run(cmd, cwd=REPO, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    client = mlflow.tracking.MlflowClient(db)
    run = client.search_runs([client.get_experiment_by_name("xlir").experiment_id],
                             filter_string=f"attributes.run_name = '{option}'")[0]

    def series(key: str) -> dict[int, float]:
        return {m.step: m.value for m in client.get_metric_history(run.info.run_id, key)}

    rss, peak, pairs = series("train/rss_mib"), series("train/peak_rss_mib"), series("train/pairs_per_s")
    batch = int(run.data.params["data.batch_size"])
    first = min((s for s in rss if s >= 20), default=min(rss))
    last = max(rss)
    return {"rss_mib": rss, "rss_step20_mib": rss[first], "rss_last_mib": rss[last], "last_step": last,
            "peak_mib": max(peak.values()), "creep": rss[last] / rss[first],
            # throughput windows after the first (start-up) window: seconds per step
            "step_s": statistics.median(batch / v for s, v in sorted(pairs.items())[1:])}


def trim_cost(blocks: int, block_steps: int = 10, model: str = "me5_small_bundled") -> dict[str, Any]:
    """Seconds per block of `block_steps` steps with malloc_trim before it vs without, alternated (ratio row)."""
    from bench import train_step
    from bench.harness import alternate
    from src.runtime.memory import malloc_trim

    s = train_step.setup(model)
    batches = train_step.plain_batches(s, block_steps)
    opt = train_step.optimizer(s)
    size = train_step.Size(models=(model,), warmup=0, steps=block_steps, repetitions=1)

    def steps(trim: bool) -> Any:
        if trim:
            malloc_trim()
        return train_step.plain_steps(s, size, batches, opt=opt)

    res = alternate({"no trim": lambda: steps(False), "trim every 10": lambda: steps(True)},
                    baseline="no trim", repetitions=blocks, warmup=1)
    ratio = res.ratios["trim every 10"]
    row = {"comparison": "7 memory", "setting": f"{model}, batch {s.cfg.data.batch_size}, {s.precision}, "
           f"malloc_trim + {block_steps} steps vs {block_steps} steps, alternated", "project_s":
           res.arms["trim every 10"].median_s, "reference_s": res.arms["no trim"].median_s, "ratio": ratio,
           "goal": f"<= {GOALS['step_ratio']}", "met": ratio["median"] <= GOALS["step_ratio"], "extra": ""}
    return res.to_json() | {"rows": [row]}


def main(argv: Sequence[str] | None = None) -> int:
    """Run each option once, one after the other; write results/memory.json and print a table."""
    ap = argparse.ArgumentParser(prog="python -m bench.memory", description=__doc__)
    ap.add_argument("--steps", type=int, default=150)
    ap.add_argument("--options", default=",".join(OPTIONS))
    ap.add_argument("--results-dir", type=Path, default=RESULTS_DIR)
    ap.add_argument("--trim-cost", action="store_true", help="only the alternated step-time cost of trimming")
    ap.add_argument("--blocks", type=int, default=8, help="--trim-cost: blocks per arm")
    ap.add_argument("overrides", nargs="*", help="extra src.run overrides for every option")
    args = ap.parse_args(argv)
    if args.trim_cost:
        result = trim_cost(args.blocks)
        path = write_result("memory_trim_cost", result, args.results_dir)
        print(json.dumps({"rows": result["rows"]}, indent=1, default=str))
        print(f"-> {path}")
        return 0
    root = Path(tempfile.mkdtemp(prefix="xlir-bench-memory-"))
    results = {}
    for option in args.options.split(","):
        print(f"memory: {option}, {args.steps} steps", flush=True)
        results[option] = train(option, args.steps, root, args.overrides)
        r = results[option]
        print(f"  RSS step {20} {r['rss_step20_mib']:.0f} MiB, step {r['last_step']} {r['rss_last_mib']:.0f} MiB "
              f"(x{r['creep']:.2f}), peak {r['peak_mib']:.0f} MiB, {r['step_s']:.2f} s/step", flush=True)
    base = results.get("notrim")
    rows = []
    for option, r in results.items():
        ratio = r["step_s"] / base["step_s"] if base else None
        met = (r["creep"] <= GOALS["creep"] and r["peak_mib"] / 1024 <= GOALS["peak_gib"]
               and (ratio is None or ratio <= GOALS["step_ratio"]))
        rows.append({"comparison": "7 memory", "setting": f"default run, {args.steps} steps, {option}",
                     "project_s": r["step_s"], "reference_s": base["step_s"] if base else None,
                     "ratio": {"median": ratio, "min": ratio, "max": ratio} if ratio else None,
                     "goal": "creep <= 1.10, peak <= 6 GiB, step <= 1.10x notrim", "met": met,
                     "extra": f"RSS {r['rss_step20_mib']:.0f} -> {r['rss_last_mib']:.0f} MiB (x{r['creep']:.2f}), "
                              f"peak {r['peak_mib']:.0f} MiB"})
    path = write_result("memory", {"steps": args.steps, "overrides": args.overrides, "rows": rows,
                                   "details": results}, args.results_dir)
    print(json.dumps({"rows": rows}, indent=1, default=str))
    print(f"-> {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
