"""Training throughput and peak memory: 1 process vs 2 DDP processes, with and without GradCache.

    python -m bench.scale                                   # the recorded grid (CPU, ~10-15 min on 2 cores)
    python -m bench.scale --models tiny --batches 32 --steps 4
    python -m bench.scale --accelerator gpu                 # same grid on CUDA (trainer=gpu / trainer=ddp)

Every point is a fresh `python -m bench.scale --one SPEC` process running the project's real training
path (Hydra config, MLQA-R pairs, hybrid sampler, PairDataModule, RetrievalModule, Lightning Trainer with
the configured precision and clipping; `HydraDDPStrategy` with gather_negatives for 2 processes) for a
few steps, without logger, checkpoints or evaluation. Steps/s is timed between batch ends after the first
(warm-up) step; peak memory is each rank's RSS high-water mark (`ru_maxrss`). Results go to
`bench/results/scale.json` and a Markdown table on stdout.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from lightning.pytorch import Callback

REPO = Path(__file__).resolve().parent.parent
MODELS = {"tiny": "tiny", "bundled": "me5_small_bundled"}


def peak_rss_mb() -> float:
    """This process's RSS high-water mark in MiB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_one(spec: dict[str, Any]) -> None:
    """One measurement point in this process (and, for DDP, the child ranks Lightning starts)."""
    import lightning.pytorch as pl
    from hydra import compose, initialize_config_dir
    from hydra.utils import instantiate

    from src.data.datamodule import PairDataModule, pair_sampler
    from src.data.sets import load_training_pairs
    from src.model.encoder import build_encoder
    from src.model.module import RetrievalModule
    from src.training.launch import HydraDDPStrategy

    overrides = [f"model={spec['model']}", f"data.batch_size={spec['batch']}",
                 f"model.cached_negatives={spec['cached']}", f"model.cache_chunk_size={spec['chunk']}",
                 f"trainer.precision={spec['precision']}"]
    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        cfg = compose("config", overrides=overrides, return_hydra_config=False)
    pl.seed_everything(cfg.seed)
    pairs = load_training_pairs(cfg.data.train, cfg.seed)
    encoder = build_encoder(cfg.model, texts=pairs.queries + pairs.passages)
    module = RetrievalModule(encoder, instantiate(cfg.loss), instantiate(cfg.optim.optimizer), cfg.optim.warmup_ratio,
                             gather_negatives=spec["world"] > 1, cached_negatives=spec["cached"],
                             cache_chunk_size=spec["chunk"])
    timer = StepTimer(Path(spec["out"]))
    strategy = HydraDDPStrategy() if spec["world"] > 1 else "auto"
    trainer = pl.Trainer(accelerator=spec["accelerator"], devices=spec["world"], strategy=strategy,
                         precision=spec["precision"], max_steps=spec["steps"], gradient_clip_val=1.0, logger=False,
                         enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                         use_distributed_sampler=False, callbacks=[timer])
    sampler = pair_sampler(instantiate(cfg.sampling.sampler), pairs, cfg.data.batch_size, cfg.seed,
                           trainer.world_size, trainer.global_rank)
    data = PairDataModule(pairs, encoder, sampler, cfg.data.batch_size, cache_dir=Path(cfg.paths.cache_dir) / "tokenized",
                          length_buckets=cfg.model.length_buckets)
    trainer.fit(module, datamodule=data)


class StepTimer(Callback):
    """Wall-clock time at every batch end; each rank writes its times and peak RSS at the end."""

    def __init__(self, out: Path) -> None:
        self.out = out
        self.times: list[float] = []

    def on_train_batch_end(self, trainer: Any, *args: Any) -> None:
        """Record the time."""
        self.times.append(time.perf_counter())

    def on_train_end(self, trainer: Any, module: Any) -> None:
        """Write this rank's record next to the requested output file."""
        import torch

        cuda = torch.cuda.max_memory_allocated() / 2**20 if torch.cuda.is_available() else None
        record = {"rank": trainer.global_rank, "times": self.times, "peak_rss_mb": peak_rss_mb(),
                  "cuda_peak_mb": cuda, "threads": torch.get_num_threads()}
        self.out.with_suffix(f".rank{trainer.global_rank}.json").write_text(json.dumps(record))


def measure(spec: dict[str, Any], timeout: int, threads: int | None = None) -> dict[str, Any]:
    """Run one point in fresh processes and summarise: steps/s, pairs/s, peak RSS per rank."""
    with tempfile.TemporaryDirectory() as tmp:
        spec = {**spec, "out": str(Path(tmp) / "point")}
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
        if threads:  # intra-op threads per process (Lightning gives DDP ranks cores / processes otherwise)
            env["OMP_NUM_THREADS"] = str(threads)
        t0 = time.perf_counter()
        proc = subprocess.run([sys.executable, "-m", "bench.scale", "--one", json.dumps(spec)], cwd=REPO, env=env,
                              capture_output=True, text=True, timeout=timeout, check=False)
        wall = time.perf_counter() - t0
        if proc.returncode != 0:
            return {**spec, "error": proc.stderr[-1500:]}
        ranks = [json.loads(p.read_text()) for p in sorted(Path(tmp).glob("point.rank*.json"))]
    times = ranks[0]["times"]
    steps_per_s = (len(times) - 1) / (times[-1] - times[0]) if len(times) > 1 else float("nan")
    return {**{k: v for k, v in spec.items() if k != "out"}, "steps_per_s": steps_per_s,
            "pairs_per_s": steps_per_s * spec["batch"] * spec["world"], "process_wall_s": wall,
            "peak_rss_mb_per_rank": [r["peak_rss_mb"] for r in ranks],
            "cuda_peak_mb_per_rank": [r["cuda_peak_mb"] for r in ranks], "torch_threads": ranks[0]["threads"]}


def table(rows: list[dict[str, Any]]) -> str:
    """Markdown table of the results."""
    head = ("| model | batch/rank | processes | GradCache | steps/s | pairs/s (global) | peak RSS per rank (MiB) |\n"
            "|---|---|---|---|---|---|---|")
    lines = [head]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['model']} | {r['batch']} | {r['world']} | {r['cached']} | failed | | |")
            continue
        cache = f"chunk {r['chunk']}" if r["cached"] else "off"
        rss = " / ".join(f"{m:,.0f}" for m in r["peak_rss_mb_per_rank"])
        lines.append(f"| {r['model']} | {r['batch']} | {r['world']} | {cache} | {r['steps_per_s']:.2f} | "
                     f"{r['pairs_per_s']:.1f} | {rss} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    """Run the grid (or, with --one, a single point) and record it."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--one", help=argparse.SUPPRESS)
    ap.add_argument("--models", default="tiny,bundled", help="comma list of: " + ", ".join(MODELS))
    ap.add_argument("--batches", default="32,128", help="per-rank batch sizes (tiny)")
    ap.add_argument("--bundled-batches", default="32", help="per-rank batch sizes for the bundled model")
    ap.add_argument("--steps", type=int, default=4, help="optimizer steps per point (the first is warm-up)")
    ap.add_argument("--bundled-steps", type=int, default=4, help="optimizer steps per bundled-model point")
    ap.add_argument("--chunk", type=int, default=8, help="GradCache chunk rows")
    ap.add_argument("--threads", type=int, default=1,
                    help="torch threads per process (0 = library default); on a shared machine 2 threads per\n"
                         "process can be 30x slower from OpenMP contention, so the recorded grid uses 1")
    ap.add_argument("--precision", default="bf16-mixed")
    ap.add_argument("--accelerator", default="cpu")
    ap.add_argument("--timeout", type=int, default=900, help="seconds per point")
    ap.add_argument("--out", default=str(REPO / "bench" / "results" / "scale.json"))
    args = ap.parse_args(argv)
    if args.one:
        run_one(json.loads(args.one))
        return
    rows = []
    for key in args.models.split(","):
        if key not in MODELS:
            raise SystemExit(f"--models: unknown {key!r}; expected some of {', '.join(MODELS)}")
        batches = args.batches if key == "tiny" else args.bundled_batches
        for batch in (int(b) for b in batches.split(",")):
            for world in (1, 2):
                for cached in (False, True):
                    spec = {"model": MODELS[key], "batch": batch, "world": world, "cached": cached,
                            "chunk": args.chunk, "steps": args.steps if key == "tiny" else args.bundled_steps,
                            "precision": args.precision,
                            "accelerator": args.accelerator}
                    row = {**measure(spec, args.timeout, args.threads), "threads_per_process": args.threads}
                    rows.append(row)
                    print(table([row]).splitlines()[-1], flush=True)
    machine = {"platform": platform.platform(), "cpus": os.cpu_count(), "python": platform.python_version(),
               "load_avg_at_end": os.getloadavg(), "accelerator": args.accelerator}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"machine": machine, "rows": rows}, indent=2))
    print(table(rows))
    print(f"machine: {machine}\nwritten: {out}")


if __name__ == "__main__":
    main()
