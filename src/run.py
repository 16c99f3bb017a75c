"""Train a multilingual bi-encoder with X-X / X-Y / hybrid batches, evaluate zero-shot, log to MLflow.

    python -m src.run sampling=hybrid model=labse
    python -m src.run -m sampling=xx,xy,hybrid seed=1,2,3
"""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path
from typing import Any

import hydra
from omegaconf import DictConfig

from src.config import ConfigError, validate


def train(cfg: DictConfig) -> dict[str, Any]:
    """The whole recipe, top to bottom: validate, load, build, fit, evaluate, export, close the run."""
    import lightning.pytorch as pl
    from hydra.utils import instantiate
    from lightning.pytorch.utilities.exceptions import SIGTERMException

    from src import reliability, resume
    from src.data.datamodule import PairDataModule
    from src.data.sets import build_encoder, load_eval_sets, load_training_data, tags
    from src.evaluation import provenance
    from src.evaluation.callback import load_weights
    from src.evaluation.guard import zero_shot_tag
    from src.model.card import ModelCard
    from src.model.module import RetrievalModule
    from src.runtime import setup_runtime
    from src.tracking import mlflow as tracking
    from src.tracking.model import try_log_encoder_model
    from src.tracking.sweep import sweep_child
    from src.training.launch import inherited_run_id

    # 1. Config and data first: every bad input fails here, before a model loads or a run opens.
    validate(cfg)
    # trainer.precision=auto and threads=null resolved for this machine; threads applied before any torch work.
    runtime = setup_runtime(cfg.trainer, cfg.threads)
    # ckpt_path=last / resume=true / a SLURM requeue: which checkpoint, run folder and MLflow run to continue.
    ckpt_path, previous, fingerprint = resume.prepare(cfg)
    if cfg.data.train is None:
        raise ConfigError("data.train is null: pick a data preset with a training set, e.g. data=mlqa_r_to_xquad_r")
    pl.seed_everything(cfg.seed, workers=True)
    eval_sets = load_eval_sets(cfg)
    data = load_training_data(cfg, cfg.seed)  # training pairs + the validation split (selection only)
    pairs = data.pairs
    # Hashes of the training texts (validation split included: it chooses the model): the zero-shot check now,
    # then saved with every checkpoint and the export so `src.evaluate` runs the same check (provenance.py).
    trained_on = provenance.TrainingFingerprint.from_texts(
        cfg.data.train.name, cfg.data.train.languages, data.texts(), cfg.eval.overlap_min_chars)
    overlap = trained_on.check(eval_sets, cfg.eval.allow_overlap, cfg.eval.overlap_min_chars)
    sampler = instantiate(cfg.sampling.sampler)
    sampler(q_lang=pairs.q_lang, p_lang=pairs.p_lang, xling_id=pairs.xling_id,
            batch_size=cfg.data.batch_size, seed=cfg.seed)  # validates batch size vs. pools now

    # 2. Model: build offline weights if the model config says how, then the encoder and the module.
    encoder = build_encoder(cfg, texts=pairs.queries + pairs.passages)
    module = RetrievalModule(
        encoder=encoder,
        loss=instantiate(cfg.loss),
        optimizer=instantiate(cfg.optim.optimizer),
        warmup_ratio=cfg.optim.warmup_ratio,
        name=cfg.model.name,
        on_nonfinite=cfg.on_nonfinite,
        gather_negatives=cfg.model.gather_negatives,
        cached_negatives=cfg.model.cached_negatives,
        cache_chunk_size=cfg.model.cache_chunk_size,
        checkpoint_extras={provenance.KEY: trained_on.to_checkpoint()},
    )
    out_dir = Path(cfg.paths.output_dir)
    datamodule = PairDataModule(
        pairs, encoder, sampler, cfg.data.batch_size, cfg.seed,
        cache_dir=Path(cfg.paths.cache_dir) / "tokenized", num_workers=cfg.data.num_workers,
        length_buckets=cfg.model.length_buckets, val_pairs=data.val_pairs,
    )

    # 3. Tracking and trainer. Inside a multirun the run is a child of the sweep's parent run.
    child = sweep_child(cfg)
    name = cfg.logger.run_name or (child.name if child else
                                   tracking.run_name(cfg.model.name, cfg.sampling.name, cfg.sampling.alpha, cfg.seed))
    run_tags = {**tags(cfg, "train"), **runtime.params(),
                "zero_shot_check": zero_shot_tag(overlap.total), **(child.tags if child else {})}
    logger = tracking.build_logger(cfg.logger.experiment_name, cfg.logger.tracking_uri, name, run_tags,
                                   # DDP child ranks adopt rank 0's run (src/training/launch.py) and never open one
                                   run_id=previous.mlflow_run_id if previous else inherited_run_id(),
                                   journal_dir=out_dir)
    callbacks = []
    for key, cb_cfg in (cfg.callbacks or {}).items():
        if cb_cfg is None:  # switched off (e.g. early_stopping: null)
            continue
        if data.val_set is None and (key == "val_retrieval" or str(cb_cfg.get("monitor", "")).startswith("val/")):
            print(f"callbacks.{key}: off, there is no validation split (data.train.val_fraction=0 or a hub set); "
                  "the last weights are evaluated")
            continue
        cb = instantiate(cb_cfg)
        callbacks.append(cb(datasets=eval_sets) if key == "retrieval_eval" else
                         cb(dataset=data.val_set) if key == "val_retrieval" else cb)
    callbacks += reliability.debug_callbacks(cfg.debug, out_dir)
    trainer = instantiate(cfg.trainer, precision=runtime.precision, logger=logger, callbacks=callbacks,
                          **reliability.slurm_plugins(cfg.slurm_auto_requeue))
    if trainer.is_global_zero:
        resume.RunRecord(str(out_dir), fingerprint, logger.run_id, tracking.resolve_tracking_uri(
            cfg.logger.tracking_uri), cfg.logger.experiment_name).write()
    evaluator = next((c for c in callbacks if hasattr(c, "last_metrics")), None)

    # 4. Fit (the callback evaluates at the end), export, record, close the run.
    status = "FAILED"
    try:
        if trainer.is_global_zero and previous is None:  # a resumed run already has its params
            tracking.log_config(logger, cfg, out_dir)
            logger.log_hyperparams(runtime.params())
        elif trainer.is_global_zero:
            logger.experiment.set_tag(logger.run_id, "resumed_from", str(ckpt_path))
        trainer.fit(module, datamodule=datamodule, ckpt_path=ckpt_path)
        result: dict[str, Any] = dict(evaluator.last_metrics) if evaluator else {}
        if trainer.is_global_zero:
            ckpt = out_dir / "checkpoints" / "last.ckpt"
            trainer.save_checkpoint(ckpt)  # the last training state (resume); the export is the selected one
            result["checkpoint"] = str(ckpt)
            selected = getattr(evaluator, "selected", None)
            if selected is not None:
                module.load_state_dict(load_weights(selected["checkpoint"]))
                result.update({f"selected_{k}": v for k, v in selected.items()})
                for k, v in selected.items():
                    logger.experiment.set_tag(logger.run_id, f"selected_{k}", str(v))
            if cfg.export_model:
                result["exported_model"] = str(encoder.save(out_dir / "model"))
                trained_on.save(out_dir / "model")
                steps = selected["step"] if selected is not None else trainer.global_step
                ModelCard.from_config(cfg, result, steps, logger.run_id).write(out_dir / "model")
                if cfg.logger.log_model:
                    try_log_encoder_model(tracking.resolve_tracking_uri(cfg.logger.tracking_uri), logger.run_id,
                                          out_dir / "model", cfg.logger.registered_model_name)
            if (out_dir / "eval").is_dir():
                large = () if cfg.eval.log_large_artifacts else ("trec", "embeddings")
                tracking.log_artifact(logger, out_dir / "eval", "eval", skip=large)
            metrics_file = out_dir / "metrics.json"
            metrics_file.write_text(json.dumps(result, indent=2, sort_keys=True))
            tracking.log_artifact(logger, metrics_file)
            logger.experiment.set_tag(logger.run_id, "checkpoint", str(ckpt))
        status = "FINISHED"
    except (KeyboardInterrupt, SIGTERMException) as err:
        status = "KILLED"  # Ctrl-C or the scheduler's SIGTERM; InterruptCheckpoint wrote last.ckpt
        if isinstance(err, SIGTERMException):  # a SystemExit with code 0: exit the way a SIGTERM'd process does
            raise SystemExit(128 + signal.SIGTERM) from err
        raise
    except Exception as err:
        if trainer.is_global_zero:
            tracking.record_error(logger, err)  # the run says why it failed (tag + traceback artifact)
        raise
    finally:
        if trainer.is_global_zero:
            tracking.close_run(logger, status)
    if trainer.is_global_zero:
        print(f"MLflow run: {tracking.run_url(logger)}")
        print(f"Run folder: {out_dir}  (checkpoint: {result.get('checkpoint')}, model: {result.get('exported_model')})")
    return result


@hydra.main(version_base="1.3", config_path="../conf", config_name="config")
def main(cfg: DictConfig) -> None:
    """Hydra entry point."""
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    train(cfg)


if __name__ == "__main__":
    main()
