"""The evaluation recipe of `python -m src.evaluate`: one model on every set of `data.eval`, by kind.

Grid kinds (lareqa, bitext) are encoded once in-process and scored as a language grid; corpus kinds (beir,
miracl) search an index, encoded through Lightning's predict loop (trainer=ddp: one shard set per rank).
Everything that can be wrong (config, set files, the zero-shot guard against the sets the model was trained
on) fails before the model loads or a run opens.
"""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from src.core import keys
from src.core.config import CORPUS_KINDS
from src.recipes.steps import evaluate_grid, export_grid, validated
from src.runs.lifecycle import TrackedRun


class EvaluateRecipe:
    """Evaluate the configured model (or `ckpt_path`) zero-shot and log one MLflow run."""

    def __init__(self, cfg: DictConfig) -> None:
        self.cfg = cfg

    def run(self) -> dict[str, Any]:
        """The whole recipe; returns the metrics (an empty dict on DDP worker ranks)."""
        self.validate()
        self.load_sets()
        self.build_model()
        if self.worker_only():
            return {}
        with self.open_run() as run:
            metrics = self.evaluate(run)
            self.export(run)
            run.write_metrics(metrics)
        self.close(run, metrics)
        return metrics

    def validate(self) -> None:
        """Check the config and resolve the runtime (precision, threads) for this machine."""
        from src.runtime import setup_runtime

        self.settings = validated(self.cfg)
        self.runtime = setup_runtime(self.settings.trainer, self.settings.threads)
        if not self.settings.data.eval:
            raise ValueError("data.eval is empty: choose evaluation sets, e.g. data=xquad_r")

    def load_sets(self) -> None:
        """The sets by kind (src/evaluation/kinds.py), and the zero-shot check against the model's training sets."""
        from src.data.sets import load_eval_sets
        from src.evaluation.guard import zero_shot_tags
        from src.evaluation.provenance import recorded_training_sets
        from src.evaluation.retrieval import load_sets

        settings = self.settings
        self.eval_sets = load_eval_sets(settings.data.eval)
        self.corpus_sets = {n: load_sets(n, d, settings.paths.cache_dir) for n, d in settings.data.eval.items()
                            if d.kind in CORPUS_KINDS}
        # Before the model loads or a run opens: a set the model was trained on is refused like in training.
        trained_on = recorded_training_sets(settings.ckpt_path, str(settings.model.pretrained))
        self.zero_shot = zero_shot_tags(trained_on, settings.eval, self.eval_sets, self.corpus_sets)

    def build_model(self) -> None:
        """The encoder (with a checkpoint's weights) and, for corpus kinds, the predict trainer."""
        from hydra.utils import instantiate

        from src.model.encoder import build_encoder, load_checkpoint_weights

        settings = self.settings
        self.encoder = build_encoder(settings.model)
        if settings.ckpt_path:
            load_checkpoint_weights(self.encoder, settings.ckpt_path)
        if self.runtime.device == "cuda":
            self.encoder.cuda()
        self.predict = instantiate(self.cfg.trainer, precision=self.runtime.precision, logger=False, callbacks=[],
                                   enable_checkpointing=False, enable_progress_bar=False) if self.corpus_sets else None

    def worker_only(self) -> bool:
        """On DDP ranks > 0: encode this rank's corpus shards, nothing else (rank 0 searches and logs)."""
        from src.evaluation.retrieval import evaluate_corpus_sets

        if self.predict is None or self.predict.is_global_zero:
            return False
        evaluate_corpus_sets(self.cfg, self.encoder, self.predict, self.corpus_sets, self.runtime.precision)
        return True

    def open_run(self) -> AbstractContextManager[TrackedRun]:
        """A new MLflow run (task `evaluate`) with the config as params."""
        from src.runs.lifecycle import tracked_run
        from src.tracking import mlflow as tracking

        settings = self.settings
        name = settings.logger.run_name or f"{settings.model.name}-eval-{'-'.join(settings.data.eval)}"
        tags = {**tracking.run_tags("evaluate", settings.model.name, settings.seed, settings.data.eval),
                **self.runtime.params(), **self.zero_shot}
        self.out_dir = Path(settings.paths.output_dir)
        return tracked_run(settings.logger, name, tags, self.out_dir)

    def evaluate(self, run: TrackedRun) -> dict[str, Any]:
        """Score every set (grid kinds, their debias variants, corpus kinds) and log the metrics at step 0."""
        from src.evaluation.retrieval import evaluate_corpus_sets

        ev = self.settings.eval
        run.log_config(self.cfg, self.runtime.params())
        metrics, self.results, self.embeddings = evaluate_grid(self.encoder, self.eval_sets, ev,
                                                               self.runtime.precision)
        corpus_metrics, self.corpus_runs = (evaluate_corpus_sets(self.cfg, self.encoder, self.predict,
                                                                 self.corpus_sets, self.runtime.precision)
                                            if self.predict else ({}, {}))
        metrics.update(corpus_metrics)
        run.logger.log_metrics(metrics, step=0)
        return metrics

    def export(self, run: TrackedRun) -> None:
        """TREC runs of the corpus sets, grid CSVs / heatmaps / TREC / per-query files of the grid sets."""
        ev, out_dir = self.settings.eval, self.out_dir
        if not ev.exports:
            return
        for set_name, by_lang in self.corpus_runs.items():
            for lang, corpus_run in by_lang.items():
                trec = corpus_run.write_trec(out_dir / "eval" / set_name / (lang or "") / "run.trec")
                if ev.log_large_artifacts:  # like the LAReQA TREC files: large, kept in the run folder
                    run.log_artifact(trec, f"eval/{set_name}/{lang or ''}".rstrip("/"))
        folders = export_grid(self.eval_sets, self.results, self.embeddings, out_dir / "eval", ev)
        for set_name, folder in folders.items():
            run.log_artifact(folder, f"eval/{set_name}", skip=ev.artifacts_kept_local())

    def close(self, run: TrackedRun, metrics: Mapping[str, Any]) -> None:
        """The metric table, per-set timings and where the run is."""
        from rich.console import Console

        from src.evaluation.driver import summary_table

        if self.eval_sets:
            Console().print(summary_table(metrics, list(self.results)))
        for set_name in self.corpus_sets:
            mono = keys.macro_values(metrics, set_name, keys.MONO)
            print("  ".join([set_name] + [f"{m}={v:.4f}" for m, v in mono.items()]))
        for set_name in self.eval_sets:
            print(f"{set_name}: encoding {metrics[keys.time_key(set_name, 'encode')]:.1f}s, "
                  f"scoring {metrics[keys.time_key(set_name, 'score')]:.1f}s")
        print(f"MLflow run: {run.url()}\nRun folder: {self.out_dir}")
