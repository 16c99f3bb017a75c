"""GPU benchmarks: a randomly initialised model of multilingual-e5-small's shape, project vs plain PyTorch loop.

    python -m bench.gpu                        # on a CUDA machine (tools/gpu_check.sh runs it): ~2-3 min on an H200
    python -m bench.gpu --dry-run              # CPU, a tiny shape and sizes: the same code paths in ~30 s

No weights are needed for speed: the model is `BertModel(config)` with mE5-small's shape (12 layers, hidden 384,
12 heads, intermediate 1536, vocab 250,037; embeddings frozen as `model=me5_small_bundled` has them) and the
real tokenizer when one is given (`--tokenizer`, carried by `make gpu-bundle`), else a WordPiece vocabulary
trained on the training texts with the embedding matrix padded to 250,037 rows.

- **training**: steps/s at batch 32, 128 and 512 (GradCache, chunk 128) on MLQA-R hybrid batches, bf16-mixed.
  Project arm: `RetrievalModule` + `PairDataModule` + the configured Trainer (`trainer=gpu`), as
  `bench/train_step.py` times it (batch end to batch end). Reference: `bench/train_step.plain_steps` (the plain
  loop over the same pre-collated batches, already on the GPU) under CUDA autocast, or its GradCache
  counterpart below. The plain loop never waits for the GPU, so once CUDA's launch queue is full its step
  times are the GPU's pace. Goal: project <= 1.10 x plain at batch 128.
- **encoding**: every XQuAD-R question and candidate (26,104 texts) through `BiEncoder.encode`
  (`bench/encoding.project_encode`) vs a plain loop (HF tokenizer call per batch in input order, forward,
  mean pooling, normalisation), bf16 autocast and fp32. Goal: >= 5,000 texts/s in bf16.

Peak CUDA memory is recorded per arm (`torch.cuda.max_memory_allocated`, reset before each call). Results:
`<results-dir>/gpu.json` (default `$OUT`, else `gpu-check-out/`), rewritten after each section.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from bench import common, encoding, train_step
from bench.harness import Timed, alternate, write_result

REPO = Path(__file__).resolve().parent.parent
PRECISION = "bf16-mixed"
TRAIN_GOAL_RATIO = train_step.GOAL_RATIO  # at batch GOAL_BATCH
GOAL_BATCH = 128
ENCODE_GOAL_TEXTS_PER_S = 5000.0
E5_SMALL_SHAPE = {"num_hidden_layers": 12, "hidden_size": 384, "num_attention_heads": 12,
                  "intermediate_size": 1536, "vocab_size": 250037}
TINY_SHAPE = {"num_hidden_layers": 2, "hidden_size": 64, "num_attention_heads": 2, "intermediate_size": 128,
              "vocab_size": 4000}


@dataclass(frozen=True)
class Plan:
    """Model shape and sizes of one benchmark run."""

    shape: dict[str, int]
    batches: tuple[int, ...]
    cached_batches: tuple[int, ...]  # trained with GradCache
    chunk: int  # GradCache chunk rows
    warmup: int  # untimed steps at the start of each run
    steps: int  # timed steps per run
    repetitions: int
    encode_stride: int  # every n-th XQuAD-R text
    encode_batch: int
    encode_repetitions: int
    languages: tuple[str, ...] = ()  # training and evaluation languages; () = the data sets' own


GPU_PLAN = Plan(E5_SMALL_SHAPE, batches=(32, 128, 512), cached_batches=(512,), chunk=128, warmup=3, steps=15,
                repetitions=2, encode_stride=1, encode_batch=128, encode_repetitions=2)
# Two languages: tokenising all of MLQA-R would be most of a dry run's time on a small machine.
DRY_PLAN = Plan(TINY_SHAPE, batches=(4, 8), cached_batches=(8,), chunk=4, warmup=1, steps=2, repetitions=1,
                encode_stride=50, encode_batch=32, encode_repetitions=1, languages=("en", "de"))


def build_model(shape: dict[str, int], out: Path, texts: Sequence[str], tokenizer: Path | None) -> Path:
    """A randomly initialised BertModel of `shape` saved with a tokenizer: the given one or a trained WordPiece."""
    from transformers import AutoTokenizer, BertConfig, BertModel

    from src.model.weights.tiny import build_tiny_model

    if tokenizer is None:
        # The trained vocabulary is smaller than mE5's; padding the embedding rows keeps the parameter count.
        build_tiny_model(texts, out, vocab_size=min(shape["vocab_size"], 30000), hidden_size=shape["hidden_size"],
                         num_layers=shape["num_hidden_layers"], num_heads=shape["num_attention_heads"],
                         intermediate_size=shape["intermediate_size"], max_position_embeddings=512)
        model = BertModel.from_pretrained(out)
        if model.config.vocab_size < shape["vocab_size"]:
            model.resize_token_embeddings(shape["vocab_size"])
            model.save_pretrained(out)
        return out
    tok = AutoTokenizer.from_pretrained(tokenizer)
    # Every id of the tokenizer needs a row (a dry run's small shape with mE5's 250k-token tokenizer).
    config = BertConfig(**{**shape, "vocab_size": max(shape["vocab_size"], len(tok))}, max_position_embeddings=512,
                        type_vocab_size=2, pad_token_id=tok.pad_token_id)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = BertModel(config)
    model.save_pretrained(out)
    tok.save_pretrained(out)
    return out


def language_overrides(languages: Sequence[str]) -> list[str]:
    """Config overrides restricting training and evaluation to these languages (none: the sets' own)."""
    if not languages:
        return []
    langs = f"[{','.join(languages)}]"
    return [f"data.train.languages={langs}", f"data.eval.xquad_r.languages={langs}"]


def compose(model_dir: Path, device: str, plan: Plan, batch: int = 32, cached: bool = False) -> Any:
    """The project config for this model folder, device, batch size and GradCache setting."""
    return common.compose(["model=me5_small_bundled", f"model.pretrained={model_dir}",
                           f"trainer={'gpu' if device == 'cuda' else 'cpu'}", f"trainer.precision={PRECISION}",
                           f"data.batch_size={batch}", f"model.cached_negatives={cached}",
                           f"model.cache_chunk_size={plan.chunk}", *language_overrides(plan.languages)])


def make_setup(cfg: Any, pairs: Any, encoder: Any) -> train_step.Setup:
    """A train_step.Setup for this config (filling `precision` where that version of Setup has the field)."""
    names = {f.name for f in dataclasses.fields(train_step.Setup)}
    extra = {"precision": PRECISION} if "precision" in names else {}
    return train_step.Setup(cfg=cfg, pairs=pairs, encoder=encoder, **extra)


def synchronize() -> None:
    """Wait for the GPU (no-op without CUDA)."""
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def with_peak_memory(fn: Callable[[], Any]) -> Callable[[], Timed]:
    """An arm that also reports its peak CUDA memory (MiB); an inner Timed keeps its own seconds."""

    def arm() -> Timed:
        cuda = torch.cuda.is_available()
        if cuda:
            synchronize()
            torch.cuda.reset_peak_memory_stats()
        t0 = time.perf_counter()
        out = fn()
        synchronize()
        seconds = time.perf_counter() - t0
        if isinstance(out, Timed):
            seconds, out = out.seconds, out.result
        peak = torch.cuda.max_memory_allocated() / 2**20 if cuda else None
        return Timed(seconds, {"value": out, "cuda_peak_mib": peak})

    return arm


# ------------------------------------------------------------------------------------------------ training
def lightning_steps(s: train_step.Setup, plan: Plan, cached: bool) -> Timed:
    """Fit warmup+steps steps through the configured Trainer (GradCache as configured); median step."""
    from hydra.utils import instantiate

    from src.model.module import RetrievalModule

    # train_step.lightning_steps builds its module without the GradCache settings, hence this variant.
    module = RetrievalModule(encoder=s.encoder, loss=instantiate(s.cfg.loss),
                             optimizer=instantiate(s.cfg.optim.optimizer), warmup_ratio=s.cfg.optim.warmup_ratio,
                             name=s.cfg.model.name, cached_negatives=cached, cache_chunk_size=plan.chunk)
    timer = train_step.StepTimer(skip=plan.warmup)
    trainer = instantiate(s.cfg.trainer, precision=PRECISION, logger=False, callbacks=[timer],
                          max_steps=plan.warmup + plan.steps, enable_checkpointing=False,
                          default_root_dir=tempfile.mkdtemp(prefix="xlir-bench-gpu-"))
    trainer.fit(module, datamodule=train_step.datamodule(s))
    return Timed(statistics.median(timer.step_s), {"wait_s": statistics.median(timer.wait_s)})


def plain_cached_steps(s: train_step.Setup, plan: Plan, batches: list[dict[str, Any]]) -> Timed:
    """The plain loop with GradCache (src/model/gradcache.py called directly): median of the timed steps."""
    from hydra.utils import instantiate

    from src.model.gradcache import backward_through_chunks, embed_without_graph

    enc, loss_fn = s.encoder, instantiate(s.cfg.loss)
    params = [p for p in enc.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=s.cfg.optim.lr, weight_decay=s.cfg.optim.weight_decay)
    times = []
    for i, batch in enumerate(batches):
        t0 = time.perf_counter()
        sides = [embed_without_graph(enc, batch[side], plan.chunk) for side in ("query", "passage")]
        q, p = (side.embeddings for side in sides)
        n = batch["n_pos"]
        loss = loss_fn(q, p[:n], p[n:] if p.shape[0] > n else None)
        loss.backward()
        backward_through_chunks(enc, sides)
        torch.nn.utils.clip_grad_norm_(params, s.cfg.trainer.gradient_clip_val)
        opt.step()
        opt.zero_grad(set_to_none=True)
        if i >= plan.warmup:
            times.append(time.perf_counter() - t0)
    return Timed(statistics.median(times), {"loss": float(loss.detach())})


def plain_arm(s: train_step.Setup, plan: Plan, batches: list[dict[str, Any]], cached: bool, device: str
              ) -> Callable[[], Timed]:
    """The reference loop on `device` under its autocast (plain_steps' own autocast is the CPU's)."""
    size = train_step.Size(models=(), warmup=plan.warmup, steps=plan.steps, repetitions=1)

    def run() -> Timed:
        s.encoder.to(device)  # Lightning's teardown leaves the model on the CPU
        with torch.autocast(device, dtype=torch.bfloat16):
            if cached:
                return plain_cached_steps(s, plan, batches)
            return train_step.plain_steps(s, size, batches)

    return run


def training(model_dir: Path, pairs: Any, encoder: Any, plan: Plan, device: str) -> list[dict[str, Any]]:
    """Alternate the project and the plain loop at every batch size; one row each."""
    rows = []
    for batch in plan.batches:
        cached = batch in plan.cached_batches
        s = make_setup(compose(model_dir, device, plan, batch, cached), pairs, encoder)
        dm = train_step.datamodule(s)
        batches = [dm.transfer_batch_to_device(b, torch.device(device), 0)
                   for b in train_step.plain_batches(s, plan.warmup + plan.steps)]
        label = f"batch {batch}{f', GradCache chunk {plan.chunk}' if cached else ''}"
        print(f"training: {label}, {plan.steps} timed steps x {plan.repetitions}")
        res = alternate({"project": with_peak_memory(lambda s=s, c=cached: lightning_steps(s, plan, c)),
                         "plain loop": with_peak_memory(plain_arm(s, plan, batches, cached, device))},
                        baseline="plain loop", repetitions=plan.repetitions, warmup=0)
        project, plain = res.arms["project"].median_s, res.arms["plain loop"].median_s
        ratio = res.ratios["project"]
        rows.append({
            "section": "training", "batch": batch, "gradcache": cached, "precision": PRECISION,
            "project_steps_per_s": 1 / project, "plain_steps_per_s": 1 / plain,
            "project_pairs_per_s": batch / project, "ratio": ratio,
            "cuda_peak_mib": {arm: r["cuda_peak_mib"] for arm, r in res.last_results.items()},
            "goal": f"ratio <= {TRAIN_GOAL_RATIO}" if batch == GOAL_BATCH else None,
            "met": ratio["median"] <= TRAIN_GOAL_RATIO if batch == GOAL_BATCH else None,
            "details": res.to_json(),
        })
        print(f"  {label}: project {1 / project:.2f} steps/s, plain {1 / plain:.2f} steps/s, "
              f"ratio {ratio['median']:.3f}")
        del batches
    return rows


# ------------------------------------------------------------------------------------------------ encoding
def plain_encode(enc: Any, texts: common.Texts, batch_size: int, dtype: torch.dtype | None) -> np.ndarray:
    """A plain loop: tokenizer call per batch in input order, forward, mean pooling, L2 normalisation."""
    device = next(enc.parameters()).device
    out = []
    with torch.inference_mode(), torch.autocast(device.type, dtype=dtype or torch.bfloat16,
                                                enabled=dtype is not None):
        for side, side_texts in (("query", texts.queries), ("passage", texts.passages)):
            prefix = enc.prefixes[side]
            for i in range(0, len(side_texts), batch_size):
                tok = enc.tokenizer([prefix + t for t in side_texts[i:i + batch_size]], padding=True,
                                    truncation=True, max_length=enc.max_lengths[side], return_tensors="pt")
                mask = tok["attention_mask"].to(device)
                hidden = enc.model(input_ids=tok["input_ids"].to(device), attention_mask=mask).last_hidden_state
                m = mask.unsqueeze(-1).to(hidden.dtype)
                emb = ((hidden * m).sum(1) / m.sum(1).clamp_min(1.0)).float()
                out.append(torch.nn.functional.normalize(emb, dim=-1))
    return torch.cat(out).cpu().numpy()


def encoding_rows(encoder: Any, texts: common.Texts, plan: Plan) -> list[dict[str, Any]]:
    """Project vs plain encoding of the same texts, bf16 then fp32."""
    rows = []
    encoder.eval()
    for label, dtype in (("bf16", torch.bfloat16), ("fp32", None)):
        print(f"encoding: {len(texts)} XQuAD-R texts, {label}, batch {plan.encode_batch}")
        res = alternate(
            {"project": with_peak_memory(lambda d=dtype: encoding.project_encode(encoder, texts, plan.encode_batch, d)),
             "plain loop": with_peak_memory(lambda d=dtype: plain_encode(encoder, texts, plan.encode_batch, d))},
            baseline="plain loop", repetitions=plan.encode_repetitions, warmup=1,
        )
        cosine = encoding.min_cosine(res.last_results["project"]["value"], res.last_results["plain loop"]["value"])
        texts_per_s = len(texts) / res.arms["project"].median_s
        goal = label == "bf16"
        rows.append({
            "section": "encoding", "precision": label, "texts": len(texts), "batch": plan.encode_batch,
            "project_texts_per_s": texts_per_s, "plain_texts_per_s": len(texts) / res.arms["plain loop"].median_s,
            "ratio": res.ratios["project"], "min_cosine": cosine,
            "cuda_peak_mib": {arm: r["cuda_peak_mib"] for arm, r in res.last_results.items()},
            "goal": f">= {ENCODE_GOAL_TEXTS_PER_S:.0f} texts/s" if goal else None,
            "met": texts_per_s >= ENCODE_GOAL_TEXTS_PER_S if goal else None,
            "details": res.to_json(),
        })
        print(f"  {label}: project {texts_per_s:,.0f} texts/s, plain {rows[-1]['plain_texts_per_s']:,.0f} texts/s, "
              f"min cosine {cosine:.5f}")
    return rows


# ---------------------------------------------------------------------------------------------------- main
def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """Plan, device, tokenizer, sections and where the JSON goes."""
    ap = argparse.ArgumentParser(prog="python -m bench.gpu", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dry-run", action="store_true", help="tiny shape and sizes (on the CPU unless --device)")
    ap.add_argument("--device", choices=("cuda", "cpu"), default=None,
                    help="default: cuda, or cpu with --dry-run")
    ap.add_argument("--tokenizer", type=Path, default=os.environ.get("XLIR_GPU_TOKENIZER") or None,
                    help="a tokenizer folder for the mE5 shape (default $XLIR_GPU_TOKENIZER; else a trained WordPiece)")
    ap.add_argument("--sections", default="encoding,training", help="comma list of: encoding, training")
    ap.add_argument("--threads", type=int, default=None,
                    help="torch intra-op threads (default: torch's choice; 1 with --dry-run, where 2 threads on a\n"
                         "shared small machine are several times slower)")
    ap.add_argument("--results-dir", type=Path, default=Path(os.environ.get("OUT") or REPO / "gpu-check-out"))
    args = ap.parse_args(argv)
    args.device = args.device or ("cpu" if args.dry_run else "cuda")
    if args.device == "cuda" and not torch.cuda.is_available():
        ap.error("no CUDA device here: use --dry-run (CPU, tiny sizes) or --device cpu")
    args.sections = [s for s in args.sections.split(",") if s]
    if not set(args.sections) <= {"encoding", "training"}:
        ap.error(f"--sections: expected encoding and/or training, got {args.sections}")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Build the random model, run the sections, write `gpu.json` after each; print the goals."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    args = parse_args(argv)
    plan = DRY_PLAN if args.dry_run else GPU_PLAN
    threads = args.threads or (1 if args.dry_run else None)
    if threads:
        torch.set_num_threads(threads)
    from src.data.sets import load_training_pairs
    from src.model.encoder import build_encoder

    t0 = time.perf_counter()
    cfg = common.compose(language_overrides(plan.languages))
    pairs = load_training_pairs(cfg.data.train, cfg.seed)
    model_dir = build_model(plan.shape, Path(tempfile.mkdtemp(prefix="xlir-gpu-model-")) / "model",
                            pairs.queries + pairs.passages, args.tokenizer)
    model = compose(model_dir, args.device, plan).model
    encoder = build_encoder(model, pretrained=str(model_dir)).to(args.device)
    n_params = sum(p.numel() for p in encoder.parameters())
    device_name = torch.cuda.get_device_name() if args.device == "cuda" else "cpu"
    print(f"model: random {plan.shape} ({n_params / 1e6:.1f}M parameters), tokenizer "
          f"{args.tokenizer or 'WordPiece trained here'}, on {device_name}; set-up {time.perf_counter() - t0:.1f} s")
    payload: dict[str, Any] = {"dry_run": args.dry_run, "device": device_name, "plan": dataclasses.asdict(plan),
                               "parameters": n_params, "tokenizer": str(args.tokenizer or "wordpiece"),
                               "rows": []}
    for section in args.sections:
        if section == "encoding":
            texts = common.dataset_texts(common.xquad_r(plan.languages or None), plan.encode_stride)
            payload["rows"] += encoding_rows(encoder, texts, plan)
        else:
            encoder.train()
            payload["rows"] += training(model_dir, pairs, encoder, plan, args.device)
        path = write_result("gpu", payload, args.results_dir)
    goals = [r for r in payload["rows"] if r["goal"]]
    for r in goals:
        what = f"encoding {r['precision']}" if r["section"] == "encoding" else f"training batch {r['batch']}"
        print(f"goal {what}: {r['goal']} -> {'met' if r['met'] else 'NOT MET'}")
    print(f"results: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
