"""Train a multilingual bi-encoder with X-X / X-Y / hybrid batches, evaluate zero-shot, log to MLflow.

    python -m src.run sampling=hybrid model=labse
    python -m src.run -m sampling=xx,xy,hybrid seed=1,2,3
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import hydra
from omegaconf import DictConfig

from src.config import ConfigError, ConfigSchema, validate

if TYPE_CHECKING:
    from src.tracking.lifecycle import TrackedRun


def train(cfg: DictConfig) -> dict[str, Any]:
    """The whole recipe, top to bottom: validate, load, build, fit, evaluate, export, close the run."""
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")  # before a tokenizer loads (DataLoader forks)
    import lightning.pytorch as pl
    from hydra.utils import instantiate

    from src.data.datamodule import PairDataModule, pair_sampler
    from src.data.sets import load_eval_sets, load_training_data
    from src.evaluation import provenance
    from src.evaluation.guard import zero_shot_tag
    from src.model.encoder import build_encoder
    from src.model.module import RetrievalModule
    from src.runtime import setup_runtime
    from src.runtime.console import apply_console
    from src.tracking import mlflow as tracking
    from src.tracking.lifecycle import tracked_run
    from src.tracking.sweep import resume_job, sweep_child
    from src.training import resume
    from src.training.launch import inherited_run_id, slurm_plugins

    # 1. Config and data first: every bad input fails here, before a model loads or a run opens. Objects with a
    # `_target_` are instantiated from `cfg` (its ${paths.output_dir} resolves to the run folder chosen below);
    # plain values come from the validated, typed sections of `settings`.
    settings = validate(cfg)
    apply_console(settings.console)
    if settings.data.train is None:
        raise ConfigError("data.train is null: pick a data preset with a training set, e.g. data=mlqa_r_to_xquad_r")
    # trainer.precision=auto and threads=null resolved for this machine; threads applied before any torch work.
    runtime = setup_runtime(settings.trainer, settings.threads)
    # ckpt_path=last / resume=true / a SLURM requeue: which checkpoint, run folder and MLflow run to continue;
    # in a re-run sweep, the job's earlier attempt decides: skip it (FINISHED), resume it, or run it again.
    plan = resume_job(cfg, resume.prepare(cfg))
    if plan.done is not None:
        print(f"Sweep job {plan.run_dir}: FINISHED earlier with this config (MLflow run "
              f"{plan.previous.mlflow_run_id if plan.previous else '?'}); skipped")
        return json.loads(plan.done.read_text())
    if plan.run_dir != str(cfg.paths.output_dir):  # continued in its predecessor's folder, exports included
        cfg.paths.output_dir = plan.run_dir
    run_dir = Path(plan.run_dir)
    train_set, seed = settings.data.train, settings.seed
    pl.seed_everything(seed, workers=True)
    eval_sets = load_eval_sets(settings.data.eval)
    data = load_training_data(train_set, seed)  # training pairs + the validation split (selection only)
    pairs = data.pairs
    # Hashes of the training texts (validation split included: it chooses the model): the zero-shot check now,
    # then saved with every checkpoint and the export so `src.evaluate` runs the same check (provenance.py).
    trained_on = provenance.TrainingFingerprint.from_texts(
        train_set.name, train_set.languages, data.texts(), settings.eval.overlap_min_chars)
    overlap = trained_on.check(eval_sets, settings.eval.allow_overlap, settings.eval.overlap_min_chars)

    # 2. The trainer knows this process's rank; the batch sampler is built once, for that rank, and checks the
    # batch size against its pools now (the MLflow run is attached to the trainer when it opens, in step 4).
    callbacks = build_callbacks(cfg.callbacks, eval_sets, data.val_set)
    if cfg.console.progress_bar is not None:
        callbacks.append(instantiate(cfg.console.progress_bar))
    trainer = instantiate(cfg.trainer, precision=runtime.precision, logger=False, callbacks=callbacks,
                          **slurm_plugins(settings.slurm_auto_requeue))
    sampler = pair_sampler(instantiate(cfg.sampling.sampler), pairs, settings.data.batch_size, seed,
                           trainer.world_size, trainer.global_rank)

    # 3. Model: build offline weights if the model config says how, then the encoder and the module.
    model = settings.model
    encoder = build_encoder(model, texts=pairs.queries + pairs.passages)
    module = RetrievalModule(
        encoder=encoder,
        loss=instantiate(cfg.loss),
        optimizer=instantiate(cfg.optim.optimizer),
        warmup_ratio=settings.optim.warmup_ratio,
        name=model.name,
        on_nonfinite=settings.on_nonfinite,
        gather_negatives=model.gather_negatives,
        cached_negatives=model.cached_negatives,
        cache_chunk_size=model.cache_chunk_size,
        checkpoint_extras={provenance.KEY: trained_on.to_checkpoint()},
    )
    datamodule = PairDataModule(
        pairs, encoder, sampler, settings.data.batch_size, cache_dir=Path(settings.paths.cache_dir) / "tokenized",
        num_workers=settings.data.num_workers, length_buckets=model.length_buckets, val_pairs=data.val_pairs,
    )

    # 4. Tracking: inside a multirun the run is a child of the sweep's parent run; a resumed run reopens its own,
    # DDP child ranks adopt rank 0's (src/training/launch.py) and never open one.
    child = sweep_child(cfg)
    sampling, log = settings.sampling, settings.logger
    name = log.run_name or (child.name if child else tracking.run_name(model.name, sampling.name, sampling.alpha, seed))
    run_tags = {**tracking.run_tags("train", model.name, seed, settings.data.eval, sampling=sampling.name,
                                    train_data=train_set.name,
                                    # tagged only where it applies, so a reader never parses "None"
                                    **({} if sampling.alpha is None else {"alpha": str(sampling.alpha)})),
                **runtime.params(), "zero_shot_check": zero_shot_tag(overlap.total), **(child.tags if child else {})}
    previous = plan.previous
    evaluator = next((c for c in callbacks if hasattr(c, "last_metrics")), None)
    with tracked_run(log, name, run_tags, run_dir, run_id=previous.mlflow_run_id if previous else inherited_run_id(),
                     journal=True, owner=trainer.is_global_zero) as run:
        trainer.logger = run.logger
        if run.owner:
            resume.RunRecord(str(run_dir), plan.fingerprint, run.run_id, tracking.resolve_tracking_uri(
                log.tracking_uri), log.experiment_name).write()
        if previous is None:  # a resumed run already has its params
            run.log_config(cfg, runtime.params())
        else:
            run.set_tag("resumed_from", plan.checkpoint)

        # 5. Fit (the callback evaluates at the end), export, record.
        trainer.fit(module, datamodule=datamodule, ckpt_path=plan.checkpoint)
        result: dict[str, Any] = dict(evaluator.last_metrics) if evaluator else {}
        if run.owner:
            result.update(export(settings, run, trainer, module, trained_on, result, getattr(evaluator, "selected", None)))
            run.write_metrics(result)
            run.set_tag("checkpoint", result["checkpoint"])
    if trainer.is_global_zero:
        print(f"MLflow run: {run.url()}")
        print(f"Run folder: {run_dir}  (checkpoint: {result.get('checkpoint')}, model: {result.get('exported_model')})")
    return result


def build_callbacks(configs: DictConfig | None, eval_sets: dict[str, Any], val_set: Any) -> list[Any]:
    """The `callbacks` section's callbacks; the evaluation ones get their sets, validation ones need a split."""
    from hydra.utils import instantiate

    from src.evaluation import keys

    callbacks = []
    for key, cb_cfg in (configs or {}).items():
        if cb_cfg is None:  # switched off (e.g. early_stopping: null)
            continue
        if val_set is None and (key == "val_retrieval" or keys.is_validation(str(cb_cfg.get("monitor", "")))):
            print(f"callbacks.{key}: off, there is no validation split (data.train.val_fraction=0 or a hub set); "
                  "the last weights are evaluated")
            continue
        cb = instantiate(cb_cfg)
        callbacks.append(cb(datasets=eval_sets) if key == "retrieval_eval" else
                         cb(dataset=val_set) if key == "val_retrieval" else cb)
    return callbacks


def export(settings: ConfigSchema, run: TrackedRun, trainer: Any, module: Any, trained_on: Any,
           metrics: dict[str, Any], selected: dict[str, Any] | None) -> dict[str, Any]:
    """After fit, on rank 0: the last checkpoint, the selected weights, the exported model, the eval artifacts.

    Returns what metrics.json adds to the final metrics (checkpoint, selection, exported model folder).
    """
    from src.evaluation.callback import load_weights
    from src.model.card import ModelCard
    from src.tracking import mlflow as tracking
    from src.tracking.model import try_log_encoder_model

    out_dir = run.run_dir
    ckpt = out_dir / "checkpoints" / "last.ckpt"
    trainer.save_checkpoint(ckpt)  # the last training state (resume); the export is the selected one
    added: dict[str, Any] = {"checkpoint": str(ckpt)}
    if selected is not None:
        module.load_state_dict(load_weights(selected["checkpoint"]))
        added.update({f"selected_{k}": v for k, v in selected.items()})
        for k, v in selected.items():
            run.set_tag(f"selected_{k}", v)
    if settings.export_model:
        added["exported_model"] = str(module.encoder.save(out_dir / "model"))
        trained_on.save(out_dir / "model")
        steps = selected["step"] if selected is not None else trainer.global_step
        ModelCard.of_training(settings.model, settings.sampling, settings.data, settings.seed, {**metrics, **added},
                              steps, run.run_id).write(out_dir / "model")
        if settings.logger.log_model:
            try_log_encoder_model(tracking.resolve_tracking_uri(settings.logger.tracking_uri), run.run_id,
                                  out_dir / "model", settings.logger.registered_model_name)
    if (out_dir / "eval").is_dir():
        large = () if settings.eval.log_large_artifacts else ("trec", "embeddings")
        run.log_artifact(out_dir / "eval", "eval", skip=large)
    return added


# The command line: Hydra composes conf/config.yaml with its overrides and calls `train`.
main = hydra.main(version_base="1.3", config_path="../conf", config_name="config")(train)


if __name__ == "__main__":
    main()
