"""The training recipe of `python -m src.run`: plan, load data, build trainer and model, fit, export, close.

Each step is one method and `run` calls them in order, so the recipe reads top to bottom. Every bad input
fails in the first two steps, before a model loads or an MLflow run opens. Objects with a `_target_` are built
from the run's config (`self.cfg`: the composed config with ${paths.output_dir} pointing at the run folder the
plan chose); plain values come from the validated, typed sections in `self.settings`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from src.core import keys
from src.core.config import ConfigError, ConfigSchema
from src.recipes.steps import validated
from src.runs.lifecycle import TrackedRun
from src.runs.plan import RunPlan


class TrainRecipe:
    """Fine-tune a bi-encoder with the configured batch sampler, evaluate zero-shot, export, track."""

    def __init__(self, cfg: DictConfig) -> None:
        self.cfg = cfg
        self.settings: ConfigSchema
        self.plan: RunPlan

    def run(self) -> dict[str, Any]:
        """The whole recipe; returns the final metrics (what `metrics.json` holds)."""
        if self.validate_and_plan():
            return self.skipped()
        self.load_data()
        self.build_trainer()
        self.build_model()
        with self.open_run() as run:
            self.fit(run)
            result = self.export(run)
        self.close(run, result)
        return result

    # 1. -------------------------------------------------------------------------------------- plan
    def validate_and_plan(self) -> bool:
        """Check the config, resolve the runtime, decide fresh/resume/skip/re-run; True when nothing is to do."""
        from src.runs.plan import plan_run
        from src.runtime import setup_runtime

        self.settings = validated(self.cfg)
        if self.settings.data.train is None:
            raise ConfigError("data.train is null: pick a data preset with a training set, e.g. data=mlqa_r_to_xquad_r")
        # trainer.precision=auto and threads=null resolved for this machine; threads applied before any torch work.
        self.runtime = setup_runtime(self.settings.trainer, self.settings.threads)
        # ckpt_path=last / resume=true / a SLURM requeue / a re-run sweep job: which checkpoint, folder and run.
        self.plan = plan_run(self.cfg)
        self.cfg = self.plan.config  # ${paths.output_dir} = the run folder the plan chose
        self.run_dir = Path(self.plan.run_dir)
        return self.plan.action == "skip"

    def skipped(self) -> dict[str, Any]:
        """A re-run sweep job that FINISHED earlier with this config: its metrics, nothing trained again."""
        previous = self.plan.previous
        print(f"Sweep job {self.plan.run_dir}: FINISHED earlier with this config (MLflow run "
              f"{previous.mlflow_run_id if previous else '?'}); skipped")
        assert self.plan.done is not None
        return json.loads(self.plan.done.read_text())

    # 2. -------------------------------------------------------------------------------------- data
    def load_data(self) -> None:
        """Evaluation sets, training pairs + validation split, and the zero-shot check between them."""
        import lightning.pytorch as pl

        from src.data.sets import load_eval_sets, load_training_data
        from src.evaluation import provenance

        train_set, ev = self.settings.data.train, self.settings.eval
        assert train_set is not None
        pl.seed_everything(self.settings.seed, workers=True)
        self.eval_sets = load_eval_sets(self.settings.data.eval)
        self.data = load_training_data(train_set, self.settings.seed)  # pairs + the validation split (selection)
        # Hashes of the training texts (validation split included: it chooses the model): the zero-shot check now,
        # then saved with every checkpoint and the export so `src.evaluate` runs the same check (provenance.py).
        self.trained_on = provenance.TrainingFingerprint.from_texts(
            train_set.name, train_set.languages, self.data.texts(), ev.overlap_min_chars)
        self.overlap = self.trained_on.check(self.eval_sets, ev.allow_overlap, ev.overlap_min_chars)

    # 3. ----------------------------------------------------------------------------------- trainer
    def build_trainer(self) -> None:
        """Callbacks and trainer; the batch sampler built once, for this process's rank (checks the batch size)."""
        from hydra.utils import instantiate

        from src.data.datamodule import pair_sampler
        from src.training.launch import slurm_plugins

        cfg, settings = self.cfg, self.settings
        self.callbacks = build_callbacks(cfg.callbacks, {"eval_sets": self.eval_sets, "val_set": self.data.val_set})
        if cfg.console.progress_bar is not None:
            self.callbacks.append(instantiate(cfg.console.progress_bar))
        # The MLflow run is attached to the trainer when it opens (open_run).
        self.trainer = instantiate(cfg.trainer, precision=self.runtime.precision, logger=False,
                                   callbacks=self.callbacks, **slurm_plugins(settings.slurm_auto_requeue))
        self.sampler = pair_sampler(instantiate(cfg.sampling.sampler), self.data.pairs, settings.data.batch_size,
                                    settings.seed, self.trainer.world_size, self.trainer.global_rank)

    # 4. ------------------------------------------------------------------------------------- model
    def build_model(self) -> None:
        """Offline weights if the model config says how, then the encoder, the module and the data module."""
        from hydra.utils import instantiate

        from src.data.datamodule import PairDataModule
        from src.evaluation import provenance
        from src.model.encoder import build_encoder
        from src.model.module import RetrievalModule

        cfg, settings, pairs = self.cfg, self.settings, self.data.pairs
        model = settings.model
        encoder = build_encoder(model, texts=pairs.queries + pairs.passages)
        self.module = RetrievalModule(
            encoder=encoder,
            loss=instantiate(cfg.loss),
            optimizer=instantiate(cfg.optim.optimizer),
            warmup_ratio=settings.optim.warmup_ratio,
            name=model.name,
            on_nonfinite=settings.on_nonfinite,
            gather_negatives=model.gather_negatives,
            cached_negatives=model.cached_negatives,
            cache_chunk_size=model.cache_chunk_size,
            checkpoint_extras={provenance.KEY: self.trained_on.to_checkpoint()},
        )
        self.datamodule = PairDataModule(
            pairs, encoder, self.sampler, settings.data.batch_size,
            cache_dir=Path(settings.paths.cache_dir) / "tokenized", num_workers=settings.data.num_workers,
            length_buckets=model.length_buckets, val_pairs=self.data.val_pairs,
        )

    # 5. ---------------------------------------------------------------------------------- tracking
    def open_run(self) -> AbstractContextManager[TrackedRun]:
        """The MLflow run: a child of the sweep's parent in a multirun, the same run again when resumed.

        DDP child ranks adopt rank 0's run (src/training/launch.py) and never open one.
        """
        from src.evaluation.guard import zero_shot_tag
        from src.runs.lifecycle import tracked_run
        from src.tracking import mlflow as tracking
        from src.tracking.sweep import sweep_child
        from src.training.launch import inherited_run_id

        settings, previous = self.settings, self.plan.previous
        child = sweep_child(self.cfg)
        model, sampling, log = settings.model, settings.sampling, settings.logger
        assert settings.data.train is not None
        name = log.run_name or (child.name if child else
                                tracking.run_name(model.name, sampling.name, sampling.alpha, settings.seed))
        tags = {**tracking.run_tags("train", model.name, settings.seed, settings.data.eval, sampling=sampling.name,
                                    train_data=settings.data.train.name,
                                    # tagged only where it applies, so a reader never parses "None"
                                    **({} if sampling.alpha is None else {"alpha": str(sampling.alpha)})),
                **self.runtime.params(), "zero_shot_check": zero_shot_tag(self.overlap.total),
                **(child.tags if child else {})}
        return tracked_run(log, name, tags, self.run_dir,
                           run_id=previous.mlflow_run_id if previous else inherited_run_id(),
                           journal=True, owner=self.trainer.is_global_zero)

    # 6. --------------------------------------------------------------------------------------- fit
    def fit(self, run: TrackedRun) -> None:
        """Record the run, log the config of a new run, train (the evaluation callback runs at the end)."""
        from src.runs.record import RunRecord
        from src.tracking import mlflow as tracking

        log = self.settings.logger
        self.trainer.logger = run.logger
        if run.owner:
            RunRecord(str(self.run_dir), self.plan.fingerprint, run.run_id,
                      tracking.resolve_tracking_uri(log.tracking_uri), log.experiment_name).write()
        if self.plan.previous is None:  # a resumed run already has its params
            run.log_config(self.cfg, self.runtime.params())
        else:
            run.set_tag("resumed_from", self.plan.checkpoint)
        self.trainer.fit(self.module, datamodule=self.datamodule, ckpt_path=self.plan.checkpoint)

    # 7. ------------------------------------------------------------------------------------ export
    def export(self, run: TrackedRun) -> dict[str, Any]:
        """On rank 0: the last checkpoint, the selected weights, the exported model, the eval artifacts, metrics.json.

        Returns the final metrics plus what metrics.json adds (checkpoint, selection, exported model folder).
        """
        from src.evaluation.callback import load_weights
        from src.model.card import ModelCard
        from src.tracking import mlflow as tracking
        from src.tracking.model import try_log_encoder_model

        evaluator = next((c for c in self.callbacks if hasattr(c, "last_metrics")), None)
        result: dict[str, Any] = dict(evaluator.last_metrics) if evaluator else {}
        if not run.owner:
            return result
        settings, trainer, module = self.settings, self.trainer, self.module
        selected = getattr(evaluator, "selected", None)
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
            self.trained_on.save(out_dir / "model")
            steps = selected["step"] if selected is not None else trainer.global_step
            ModelCard.of_training(settings.model, settings.sampling, settings.data, settings.seed,
                                  {**result, **added}, steps, run.run_id).write(out_dir / "model")
            if settings.logger.log_model:
                try_log_encoder_model(tracking.resolve_tracking_uri(settings.logger.tracking_uri), run.run_id,
                                      out_dir / "model", settings.logger.registered_model_name)
        if (out_dir / "eval").is_dir():
            run.log_artifact(out_dir / "eval", "eval", skip=settings.eval.artifacts_kept_local())
        result.update(added)
        run.write_metrics(result)
        run.set_tag("checkpoint", result["checkpoint"])
        return result

    # 8. ------------------------------------------------------------------------------------- close
    def close(self, run: TrackedRun, result: Mapping[str, Any]) -> None:
        """Where everything is (the run's status was set when its block closed)."""
        if self.trainer.is_global_zero:
            print(f"MLflow run: {run.url()}")
            print(f"Run folder: {self.run_dir}  (checkpoint: {result.get('checkpoint')}, "
                  f"model: {result.get('exported_model')})")


def build_callbacks(configs: DictConfig | None, resources: Mapping[str, Any]) -> list[Any]:
    """The `callbacks` section's callbacks, each given the resources it declares (`NEEDS`).

    A callback class declares `NEEDS = {constructor argument: resource}` (resources: `eval_sets`, `val_set`) and
    its config is `_partial_`, so it is completed here; one that monitors a validation metric needs the
    validation split too. A callback whose resource is missing (no validation split) is switched off, saying so.
    """
    from hydra.utils import get_object, instantiate

    callbacks = []
    for key, cb_cfg in (configs or {}).items():
        if cb_cfg is None:  # switched off (e.g. early_stopping: null)
            continue
        needs: dict[str, str] = dict(getattr(get_object(cb_cfg._target_), "NEEDS", {}))
        # A monitored validation metric (val/loss, val/multi/map) only exists with a validation split.
        required = {*needs.values(), *(("val_set",) if keys.is_validation(str(cb_cfg.get("monitor", ""))) else ())}
        if "val_set" in required and resources.get("val_set") is None:
            print(f"callbacks.{key}: off, there is no validation split (data.train.val_fraction=0 or a hub set); "
                  "the last weights are evaluated")
            continue
        cb = instantiate(cb_cfg)
        callbacks.append(cb(**{arg: resources[r] for arg, r in needs.items()}) if needs else cb)
    return callbacks
