"""Evaluate every finished job of a sweep on more sets, into the job's own MLflow run (`src.evaluate jobs=...`).

    python -m src.evaluate jobs=multirun/study data=domain_shift 'eval.debias=[center]'
    python -m src.evaluate jobs=<parent run id> data=sib200 logger.tracking_uri=sqlite:///other.db
    python -m src.evaluate jobs=study data=tatoeba                 # every training run of experiment `study`

Each job's selected model (the best-validation weights it exported to `<job>/model`) is scored on the sets of
`data.eval` it does not have yet; a set it has with the same fingerprint is skipped, so a killed pass resumes.
Everything is checked before the first model loads: the sweep and its runs, every job's model folder, the sets'
files, and the zero-shot guard against each job's recorded training sets. Exports go to `<job>/eval/{set}`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from src.core.config import CORPUS_KINDS, ConfigError, ConfigSchema
from src.recipes.steps import evaluate_grid, export_grid, validated

FINISHED = "FINISHED"


def _plan(settings: ConfigSchema, eval_sets: dict[str, Any], fingerprints: dict[str, str],
          params: dict[str, dict[str, str]]) -> list[tuple[Any, list[str], dict[str, str]]]:
    """(job, sets it lacks, zero-shot tags) per finished job; raises before any work on a bad job or set."""
    from src.evaluation.guard import zero_shot_tags
    from src.evaluation.provenance import recorded_training_sets
    from src.runs.jobs import JobsError, find_jobs, pending_sets

    jobs = find_jobs(str(settings.jobs), settings.logger.tracking_uri)
    plan = []
    for job in jobs:
        if job.status != FINISHED:
            print(f"{job.name}: {job.status}, not evaluated (only finished jobs have a selected model)")
            continue
        if not (job.model_dir / "config.json").is_file():
            raise JobsError(f"{job.name}: no exported model in {job.model_dir} (a job trained with "
                            "export_model=false has no selected weights to evaluate)")
        todo = pending_sets(job, fingerprints, params)
        trained_on = recorded_training_sets(None, str(job.model_dir))
        if not trained_on:
            raise JobsError(f"{job.name}: {job.model_dir} records no training sets, so the zero-shot guard "
                            "cannot check the new sets against them")
        tags = zero_shot_tags(trained_on, settings.eval, {n: eval_sets[n] for n in todo}, {}) if todo else {}
        plan.append((job, todo, tags))
    return plan


def _fingerprints(settings: ConfigSchema, eval_sets: dict[str, Any]) -> dict[str, str]:
    """Each set's fingerprint: its texts plus the evaluation settings that change its numbers."""
    from src.evaluation.kinds import set_fingerprint

    ev = settings.eval
    extra = (f"debias={','.join(ev.debias)}", f"debias_k={ev.debias_k}", f"candidate_text={ev.candidate_text}")
    return {name: set_fingerprint(ds, extra) for name, ds in eval_sets.items()}


class EvaluateJobsRecipe:
    """`src.evaluate jobs=...`: validate everything, then per job load its model, evaluate, add to its run."""

    def __init__(self, cfg: DictConfig) -> None:
        self.cfg = cfg

    def run(self) -> dict[str, Any]:
        """The whole pass; returns {job name: the sets added to it}."""
        self.validate()
        self.load_sets()
        plan = _plan(self.settings, self.eval_sets, self.fingerprints, self.params)
        from src.runtime import setup_runtime

        self.runtime = setup_runtime(self.settings.trainer, self.settings.threads)
        added: dict[str, Any] = {}
        for job, todo, tags in plan:
            if not todo:
                print(f"{job.name}: has every set already, skipped")
                continue
            self.evaluate_job(job, todo, tags)
            added[job.name] = sorted(todo)
            print(f"{job.name}: added {', '.join(todo)} to run {job.run_id} ({job.run_dir})")
        return added

    def validate(self) -> None:
        """The config, and only grid kinds (a corpus kind has no place in a job's grid metrics)."""
        self.settings = settings = validated(self.cfg)
        corpus = [n for n, d in settings.data.eval.items() if d.kind in CORPUS_KINDS]
        if corpus:
            raise ConfigError(f"jobs={settings.jobs}: data.eval.{corpus[0]} is a corpus kind; adding sets to a "
                              "sweep's jobs covers the grid kinds (lareqa, bitext)")
        if not settings.data.eval:
            raise ConfigError("data.eval is empty: choose the sets to add, e.g. data=domain_shift")

    def load_sets(self) -> None:
        """The sets, their fingerprints and the params each job's run gets for them."""
        from src.data.sets import load_eval_sets
        from src.runs.jobs import set_params

        self.eval_sets = load_eval_sets(self.settings.data.eval)
        self.fingerprints = _fingerprints(self.settings, self.eval_sets)
        self.params = {name: set_params(self.cfg.data.eval[name]) for name in self.eval_sets}

    def evaluate_job(self, job: Any, todo: list[str], tags: dict[str, str]) -> None:
        """One job: its selected model on the sets it lacks; metrics, params, tags, exports into its run."""
        from src.model.encoder import build_encoder
        from src.runs.jobs import record_sets

        settings, ev = self.settings, self.settings.eval
        encoder = build_encoder(settings.model, pretrained=str(job.model_dir))
        if self.runtime.device == "cuda":
            encoder.cuda()
        sets = {n: self.eval_sets[n] for n in todo}
        metrics, results, embeddings = evaluate_grid(encoder, sets, ev, self.runtime.precision)
        folders: dict[str, Path] = {}
        if ev.exports:
            folders = export_grid(sets, results, embeddings, job.run_dir / "eval", ev)
        extra_tags = {f"{k}.{n}": v for k, v in tags.items() for n in todo}
        record_sets(job, settings.logger.tracking_uri, metrics, todo, self.fingerprints, self.params, folders,
                    ev.artifacts_kept_local(), extra_tags)
