"""Evaluate an encoder zero-shot on the configured sets, without training; logs its own MLflow run.

    python -m src.evaluate model=me5_small_bundled data=xquad_r
    python -m src.evaluate ckpt_path=outputs/train/.../checkpoints/last.ckpt
    python -m src.evaluate model.pretrained=outputs/train/.../model
"""

from __future__ import annotations

import json
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


def zero_shot_tags(cfg: DictConfig, eval_sets: dict[str, Any], corpus_sets: dict[str, Any]) -> dict[str, str]:
    """Run training's zero-shot check against the training sets the model records; raises on overlap.

    Returns the `zero_shot_check` tag (and `trained_on` when known) in the wording training uses.
    """
    from src.evaluation.guard import zero_shot_tag
    from src.evaluation.provenance import recorded_training_sets

    trained_on = recorded_training_sets(cfg.ckpt_path, str(cfg.model.pretrained))
    if not trained_on:
        return {"zero_shot_check": zero_shot_tag(None)}
    overlapping = sum(fp.check(eval_sets, cfg.eval.allow_overlap, cfg.eval.overlap_min_chars).total
                      for fp in trained_on)
    # The guard reads LAReQA questions and sentences; corpus kinds (BEIR, MIRACL) are not hashed.
    unchecked = f" (corpus sets not checked: {', '.join(corpus_sets)})" if corpus_sets else ""
    return {"zero_shot_check": zero_shot_tag(overlapping) + unchecked,
            "trained_on": ",".join(f"{fp.name}:{fp.digest[:12]}" for fp in trained_on)}


def evaluate(cfg: DictConfig) -> dict[str, Any]:
    """Validate, load the sets, build the encoder, evaluate every set, log, close the run."""
    from hydra.utils import instantiate
    from rich.console import Console

    from src.config import CORPUS_KINDS
    from src.data.sets import build_encoder, load_eval_sets, tags
    from src.evaluation.callback import evaluate_sets, summary_table
    from src.evaluation.exports import export_all
    from src.evaluation.retrieval import evaluate_corpus_sets, load_sets
    from src.runtime import setup_runtime
    from src.tracking import mlflow as tracking

    validate(cfg)
    runtime = setup_runtime(cfg.trainer, cfg.threads)
    if not cfg.data.eval:
        raise ValueError("data.eval is empty: choose evaluation sets, e.g. data=xquad_r")
    # Dispatch by kind: lareqa sets run the language grid, corpus kinds (beir, miracl) an index search.
    eval_sets = load_eval_sets(cfg)
    corpus_sets = {n: load_sets(n, d, cfg.paths.cache_dir) for n, d in cfg.data.eval.items() if d.kind in CORPUS_KINDS}
    # Before the model loads or a run opens: a set the model was trained on is refused like in training.
    zero_shot = zero_shot_tags(cfg, eval_sets, corpus_sets)
    encoder = build_encoder(cfg)
    if cfg.ckpt_path:
        load_checkpoint_weights(encoder, cfg.ckpt_path)
    if runtime.device == "cuda":
        encoder.cuda()
    out_dir = Path(cfg.paths.output_dir)
    # Corpus encoding goes through Lightning's predict loop (trainer=ddp: one disjoint shard set per rank).
    predict = instantiate(cfg.trainer, precision=runtime.precision, logger=False, callbacks=[], enable_checkpointing=False,
                          enable_progress_bar=False) if corpus_sets else None
    if predict is not None and not predict.is_global_zero:  # DDP workers encode, rank 0 does the rest
        evaluate_corpus_sets(cfg, encoder, predict, corpus_sets, runtime.precision)
        return {}
    name = cfg.logger.run_name or f"{cfg.model.name}-eval-{'-'.join(cfg.data.eval)}"
    logger = tracking.build_logger(cfg.logger.experiment_name, cfg.logger.tracking_uri, name,
                                   {**tags(cfg, "evaluate"), **runtime.params(), **zero_shot})
    status = "FAILED"
    try:
        tracking.log_config(logger, cfg, out_dir)
        logger.log_hyperparams(runtime.params())
        metrics, results, embeddings = evaluate_sets(
            encoder, eval_sets, cfg.eval.batch_size, cfg.eval.candidate_text, runtime.precision
        )
        corpus_metrics, corpus_runs = (evaluate_corpus_sets(cfg, encoder, predict, corpus_sets, runtime.precision)
                                       if predict else ({}, {}))
        metrics.update(corpus_metrics)
        logger.log_metrics(metrics, step=0)
        if cfg.eval.exports:
            for set_name, by_lang in corpus_runs.items():
                for lang, run in by_lang.items():
                    trec = run.write_trec(out_dir / "eval" / set_name / (lang or "") / "run.trec")
                    if cfg.eval.log_large_artifacts:  # like the LAReQA TREC files: large, kept in the run folder
                        tracking.log_artifact(logger, trec, f"eval/{set_name}/{lang or ''}".rstrip("/"))
            for set_name, res in results.items():
                folder = export_all(
                    eval_sets[set_name], embeddings[set_name], res, out_dir / "eval" / set_name,
                    trec_depth=cfg.eval.trec_depth, save_embeddings=cfg.eval.save_embeddings,
                )
                large = () if cfg.eval.log_large_artifacts else ("trec", "embeddings")
                tracking.log_artifact(logger, folder, f"eval/{set_name}", skip=large)
        metrics_file = out_dir / "metrics.json"
        metrics_file.write_text(json.dumps(metrics, indent=2, sort_keys=True))
        tracking.log_artifact(logger, metrics_file)
        status = "FINISHED"
    except KeyboardInterrupt:
        status = "KILLED"
        raise
    finally:
        tracking.close_run(logger, status)
    if eval_sets:
        Console().print(summary_table(metrics, list(eval_sets)))
    for set_name in corpus_sets:
        print("  ".join([set_name] + [f"{k.split('/', 2)[2]}={v:.4f}" for k, v in sorted(metrics.items())
                                      if k.startswith(f"{set_name}/mono/") and k.count("/") == 2]))
    for set_name in eval_sets:
        print(f"{set_name}: encoding {metrics[f'{set_name}/time/encode_s']:.1f}s, "
              f"scoring {metrics[f'{set_name}/time/score_s']:.1f}s")
    print(f"MLflow run: {tracking.run_url(logger)}\nRun folder: {out_dir}")
    return metrics


@hydra.main(version_base="1.3", config_path="../conf", config_name="evaluate")
def main(cfg: DictConfig) -> None:
    """Hydra entry point."""
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    evaluate(cfg)


if __name__ == "__main__":
    main()
