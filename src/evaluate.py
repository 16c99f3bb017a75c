"""Evaluate an encoder zero-shot on the configured sets, without training; logs its own MLflow run.

    python -m src.evaluate model=me5_small_bundled data=xquad_r
    python -m src.evaluate ckpt_path=outputs/train/.../checkpoints/last.ckpt
    python -m src.evaluate model.pretrained=outputs/train/.../model
    python -m src.evaluate jobs=multirun/study data=domain_shift   # add sets to a finished sweep's jobs
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import hydra
from omegaconf import DictConfig

from src.config import validate


def load_checkpoint_weights(encoder: Any, ckpt_path: str) -> None:
    """Load the encoder weights of a training checkpoint (LightningModule keys `encoder.*`)."""
    import torch

    path = Path(ckpt_path)
    if not path.is_file():
        raise FileNotFoundError(f"ckpt_path={ckpt_path}: no such checkpoint file")
    state = torch.load(path, map_location="cpu", weights_only=False)["state_dict"]
    weights = {k.removeprefix("encoder."): v for k, v in state.items() if k.startswith("encoder.")}
    missing, unexpected = encoder.load_state_dict(weights, strict=False)
    if unexpected or [m for m in missing if "pooler" not in m]:
        raise ValueError(
            f"ckpt_path={ckpt_path}: does not match model={encoder.pretrained} "
            f"(missing {missing[:3]}, unexpected {unexpected[:3]})"
        )


def zero_shot_tags(trained_on: list[Any], ev: Any, eval_sets: dict[str, Any], corpus_sets: dict[str, Any]
                   ) -> dict[str, str]:
    """Run training's zero-shot check against the training sets a model records; raises on overlap.

    Returns the `zero_shot_check` tag (and `trained_on` when known) in the wording training uses.
    """
    from src.evaluation.guard import zero_shot_tag

    if not trained_on:
        return {"zero_shot_check": zero_shot_tag(None)}
    overlapping = sum(fp.check(eval_sets, ev.allow_overlap, ev.overlap_min_chars).total for fp in trained_on)
    # The guard reads LAReQA questions and sentences; corpus kinds (BEIR, MIRACL) are not hashed.
    unchecked = f" (corpus sets not checked: {', '.join(corpus_sets)})" if corpus_sets else ""
    return {"zero_shot_check": zero_shot_tag(overlapping) + unchecked,
            "trained_on": ",".join(f"{fp.name}:{fp.digest[:12]}" for fp in trained_on)}


def evaluate(cfg: DictConfig) -> dict[str, Any]:
    """Validate, load the sets, build the encoder, evaluate every set, log, close the run."""
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")  # before a tokenizer loads (DataLoader forks)
    from hydra.utils import instantiate
    from rich.console import Console

    from src.config import CORPUS_KINDS
    from src.data.sets import load_eval_sets
    from src.evaluation import keys
    from src.evaluation.artifacts import export_sets
    from src.evaluation.debias import methods
    from src.evaluation.driver import evaluate_sets, summary_table
    from src.evaluation.provenance import recorded_training_sets
    from src.evaluation.retrieval import evaluate_corpus_sets, load_sets
    from src.model.encoder import build_encoder
    from src.runtime import setup_runtime
    from src.runtime.console import apply_console
    from src.tracking import mlflow as tracking
    from src.tracking.lifecycle import tracked_run

    settings = validate(cfg)
    apply_console(settings.console)
    if settings.jobs is not None:  # a finished sweep's jobs, each into its own run (src/evaluate_jobs.py)
        from src.evaluate_jobs import evaluate_jobs

        return evaluate_jobs(cfg, settings)
    runtime = setup_runtime(settings.trainer, settings.threads)
    ev = settings.eval
    if not settings.data.eval:
        raise ValueError("data.eval is empty: choose evaluation sets, e.g. data=xquad_r")
    # Dispatch by kind (src/evaluation/kinds.py): grid kinds (lareqa, bitext) are encoded here and scored as a
    # language grid, corpus kinds (beir, miracl) search an index.
    eval_sets = load_eval_sets(settings.data.eval)
    corpus_sets = {n: load_sets(n, d, settings.paths.cache_dir) for n, d in settings.data.eval.items()
                   if d.kind in CORPUS_KINDS}
    # Before the model loads or a run opens: a set the model was trained on is refused like in training.
    trained_on = recorded_training_sets(settings.ckpt_path, str(settings.model.pretrained))
    zero_shot = zero_shot_tags(trained_on, ev, eval_sets, corpus_sets)
    encoder = build_encoder(settings.model)
    if settings.ckpt_path:
        load_checkpoint_weights(encoder, settings.ckpt_path)
    if runtime.device == "cuda":
        encoder.cuda()
    out_dir = Path(settings.paths.output_dir)
    # Corpus encoding goes through Lightning's predict loop (trainer=ddp: one disjoint shard set per rank).
    predict = instantiate(cfg.trainer, precision=runtime.precision, logger=False, callbacks=[], enable_checkpointing=False,
                          enable_progress_bar=False) if corpus_sets else None
    if predict is not None and not predict.is_global_zero:  # DDP workers encode, rank 0 does the rest
        evaluate_corpus_sets(cfg, encoder, predict, corpus_sets, runtime.precision)
        return {}
    name = settings.logger.run_name or f"{settings.model.name}-eval-{'-'.join(settings.data.eval)}"
    tags = {**tracking.run_tags("evaluate", settings.model.name, settings.seed, settings.data.eval),
            **runtime.params(), **zero_shot}
    with tracked_run(settings.logger, name, tags, out_dir) as run:
        run.log_config(cfg, runtime.params())
        metrics, results, embeddings = evaluate_sets(encoder, eval_sets, ev.batch_size, ev.candidate_text,
                                                     runtime.precision, debias=methods(ev.debias),
                                                     debias_k=ev.debias_k)
        corpus_metrics, corpus_runs = (evaluate_corpus_sets(cfg, encoder, predict, corpus_sets, runtime.precision)
                                       if predict else ({}, {}))
        metrics.update(corpus_metrics)
        run.logger.log_metrics(metrics, step=0)
        if ev.exports:
            for set_name, by_lang in corpus_runs.items():
                for lang, corpus_run in by_lang.items():
                    trec = corpus_run.write_trec(out_dir / "eval" / set_name / (lang or "") / "run.trec")
                    if ev.log_large_artifacts:  # like the LAReQA TREC files: large, kept in the run folder
                        run.log_artifact(trec, f"eval/{set_name}/{lang or ''}".rstrip("/"))
            folders = export_sets(eval_sets, results, embeddings, out_dir / "eval", trec_depth=ev.trec_depth,
                                  save_embeddings=ev.save_embeddings)
            for set_name, folder in folders.items():
                large = () if ev.log_large_artifacts else ("trec", "embeddings")
                run.log_artifact(folder, f"eval/{set_name}", skip=large)
        run.write_metrics(metrics)
    if eval_sets:
        Console().print(summary_table(metrics, list(results)))
    for set_name in corpus_sets:
        mono = keys.macro_values(metrics, set_name, keys.MONO)
        print("  ".join([set_name] + [f"{m}={v:.4f}" for m, v in mono.items()]))
    for set_name in eval_sets:
        print(f"{set_name}: encoding {metrics[keys.time_key(set_name, 'encode')]:.1f}s, "
              f"scoring {metrics[keys.time_key(set_name, 'score')]:.1f}s")
    print(f"MLflow run: {run.url()}\nRun folder: {out_dir}")
    return metrics


# The command line: Hydra composes conf/evaluate.yaml with its overrides and calls `evaluate`.
main = hydra.main(version_base="1.3", config_path="../conf", config_name="evaluate")(evaluate)


if __name__ == "__main__":
    main()
