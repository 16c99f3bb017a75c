"""MTEB on an xlir model; the scores go to MLflow as `mteb/{task}/{metric}` (and `.../{subset}`).

    python -m src.mteb outputs/train/.../model                          # exported folder -> a new MLflow run
    python -m src.mteb <run id> --tasks XQuAD-R-pooled MLQA-R-pooled    # the run's logged model -> that run
    python -m src.mteb outputs/train/.../checkpoints/last.ckpt --languages en de zh
    python -m src.mteb <folder> --tasks MIRACLRetrieval BelebeleRetrieval   # MTEB hub tasks (internet)
"""

from __future__ import annotations

import argparse
import math
import os
import re
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from src.core import keys

DEFAULT_TASKS = ("XQuAD-R-pooled",)
DEFAULT_TRACKING_URI = "sqlite:///mlflow.db"
# Logged as the mean over subsets (MTEB reports ~100 metrics a task; all of them stay in the JSON artifact).
LOGGED_FAMILIES = ("main_score", "map_at_", "ndcg_at_", "recall_at_", "mrr_at_")
# Also logged per subset (query language).
SUBSET_METRICS = ("main_score", "map_at_1000", "ndcg_at_10", "recall_at_10", "mrr_at_10")
RUN_ID = re.compile(r"[0-9a-f]{32}")


@dataclass
class Source:
    """The model to evaluate and the MLflow run it belongs to (None: a new run is opened for the scores)."""

    model: Any  # a SentenceTransformer
    label: str
    run_id: str | None = None


def from_checkpoint(ckpt: Path, workdir: Path) -> Any:
    """A training checkpoint as a SentenceTransformer: the run folder's config.yaml builds the encoder."""
    from omegaconf import OmegaConf
    from sentence_transformers import SentenceTransformer

    from src.data.sets import load_training_pairs
    from src.model.encoder import build_encoder, load_checkpoint_weights
    from src.tracking.mlflow import CONFIG_FILE

    config = ckpt.resolve().parent.parent / CONFIG_FILE  # {run folder}/checkpoints/last.ckpt
    if not config.is_file():
        raise FileNotFoundError(f"{ckpt}: no {config} next to its checkpoints folder (written by src.run)")
    cfg = OmegaConf.load(config)
    texts = None
    if cfg.model.prepare is not None and not (Path(cfg.model.pretrained) / "config.json").is_file():
        pairs = load_training_pairs(cfg.data.train, cfg.seed)  # model=tiny: its vocabulary comes from the training texts
        texts = pairs.queries + pairs.passages
    encoder = build_encoder(cfg.model, texts=texts)
    load_checkpoint_weights(encoder, str(ckpt))
    return SentenceTransformer(str(encoder.save(workdir / "model")), device="cpu")


def from_folder(folder: Path, workdir: Path) -> Any:
    """An exported folder (sentence-transformers), an MLflow model folder, or a plain Hugging Face folder."""
    from sentence_transformers import SentenceTransformer

    if (folder / "MLmodel").is_file():
        import mlflow

        return mlflow.sentence_transformers.load_model(str(folder))
    if (folder / "modules.json").is_file():
        return SentenceTransformer(str(folder), device="cpu")
    # A folder exported before sentence-transformers support (or any HF folder): export it as src.run would.
    import json

    from src.model.encoder import ENCODER_FILE, BiEncoder

    settings = json.loads((folder / ENCODER_FILE).read_text()) if (folder / ENCODER_FILE).is_file() else {}
    return SentenceTransformer(str(BiEncoder(str(folder), **settings).save(workdir / "model")), device="cpu")


def from_run(run_id: str, tracking_uri: str, workdir: Path) -> Any:
    """The run's logged MLflow model (`runs:/<id>/model`), else the checkpoint its `checkpoint` tag names."""
    import mlflow

    from src.tracking.model import MODEL_NAME, pointed_at

    run = mlflow.MlflowClient(tracking_uri).get_run(run_id)
    try:
        with pointed_at(tracking_uri, run.info.experiment_id):
            return mlflow.sentence_transformers.load_model(f"runs:/{run_id}/{MODEL_NAME}")
    except (mlflow.exceptions.MlflowException, OSError):  # logged with logger.log_model=false, or before it existed
        pass
    ckpt = run.data.tags.get("checkpoint")
    if not ckpt or not Path(ckpt).is_file():
        raise FileNotFoundError(f"run {run_id} has no logged model and no checkpoint file on this machine ({ckpt})")
    return from_checkpoint(Path(ckpt), workdir)


def resolve(spec: str, tracking_uri: str, workdir: Path) -> Source:
    """MODEL_OR_RUN: a folder, a .ckpt file, or a 32-hex MLflow run id."""
    path = Path(spec).expanduser()
    if path.is_file():
        return Source(from_checkpoint(path, workdir), path.parent.parent.name)
    if path.is_dir():
        return Source(from_folder(path, workdir), path.name if path.name != "model" else path.parent.name)
    if RUN_ID.fullmatch(spec):
        return Source(from_run(spec, tracking_uri, workdir), f"run {spec}", spec)
    raise FileNotFoundError(f"{spec}: neither a model folder, a checkpoint file nor an MLflow run id")


def load_tasks(names: Sequence[str], languages: Sequence[str] | None, data_dir: str | None) -> list[Any]:
    """xlir's pooled LAReQA tasks by name (local data), any other name from MTEB's registry (hub data)."""
    import mteb

    from src.mteb.tasks import LANG_SCRIPTS, TASKS

    out = []
    for name in names:
        if name in TASKS:
            out.append(TASKS[name](languages=languages, data_dir=data_dir))
        else:
            codes = [LANG_SCRIPTS[x][0] for x in languages] if languages else None
            out.append(mteb.get_task(name, languages=codes))
    return out


def pool_once_encoder(model: Any) -> Any:
    """MTEB's sentence-transformers wrapper, encoding a corpus it has already seen (the shared pool) only once."""
    from mteb.models.sentence_transformer_wrapper import SentenceTransformerEncoderWrapper
    from mteb.types import PromptType

    class PoolOnce(SentenceTransformerEncoderWrapper):
        """Every query language of a pooled task searches the same candidates: their vectors are reused."""

        last: tuple[tuple[Any, ...], Any] | None = None

        def encode(self, inputs: Any, **kwargs: Any) -> Any:
            """Encode, or return the vectors of the previous identical corpus."""
            texts = inputs.dataset["text"] if "text" in inputs.dataset.column_names else None
            if kwargs.get("prompt_type") != PromptType.document or texts is None:
                return super().encode(inputs, **kwargs)
            key = (kwargs["task_metadata"].name, *texts)
            if self.last is None or self.last[0] != key:
                self.last = (key, super().encode(inputs, **kwargs))
            return self.last[1]

    # MTEB reads every prompt name as a task name and warns about "passage"; "document" is the same prompt.
    model.prompts = {k: v for k, v in model.prompts.items() if k != "passage"}
    return PoolOnce(model)


def evaluate(model: Any, tasks: Sequence[Any], batch_size: int) -> list[Any]:
    """Run MTEB (no result cache on disk: the scores go to MLflow)."""
    import mteb

    result = mteb.evaluate(pool_once_encoder(model), list(tasks), cache=None,
                           encode_kwargs={"batch_size": batch_size}, show_progress_bar=False)
    return list(result.task_results)


def mean_score(rows: Sequence[Mapping[str, Any]], key: str) -> float | None:
    """Mean of a metric over MTEB score rows (subsets x splits) that report it finitely; None if none do."""
    values = [float(row[key]) for row in rows if key in row and math.isfinite(float(row[key]))]
    return sum(values) / len(values) if values else None


def flat_scores(task_results: Sequence[Any]) -> dict[str, float]:
    """`mteb/{task}/{metric}`: mean over subsets and splits; `mteb/{task}/{metric}/{subset}` for SUBSET_METRICS."""
    out: dict[str, float | None] = {}
    for tr in task_results:
        rows = [row for split in tr.scores.values() for row in split]
        for key in sorted({k for row in rows for k in row if k.startswith(LOGGED_FAMILIES)}):
            out[keys.mteb_key(tr.task_name, key)] = mean_score(rows, key)
        subsets = sorted({row["hf_subset"] for row in rows})
        for subset in subsets if len(subsets) > 1 else ():
            for key in SUBSET_METRICS:
                out[keys.mteb_key(tr.task_name, key, subset)] = mean_score(
                    [row for row in rows if row["hf_subset"] == subset], key)
    return {k: v for k, v in out.items() if v is not None}


def log_scores(tracking_uri: str, experiment: str, source: Source, scores: Mapping[str, float],
               task_results: Sequence[Any]) -> str:
    """Log the scores (and MTEB's full results as `mteb/{task}.json`) to the source's run or a new one."""
    import mlflow
    from mlflow.entities import Metric

    from src.tracking.mlflow import experiment_id

    client = mlflow.MlflowClient(tracking_uri)
    run_id = source.run_id
    if run_id is None:
        run_id = client.create_run(experiment_id(client, experiment), run_name=f"mteb-{source.label}",
                                   tags={"task": "mteb", "model": source.label}).info.run_id
    now = int(time.time() * 1000)
    metrics = [Metric(k, v, now, 0) for k, v in sorted(scores.items())]
    for start in range(0, len(metrics), 1000):  # MLflow's log_batch limit
        client.log_batch(run_id, metrics=metrics[start : start + 1000])
    client.set_tag(run_id, "mteb.tasks", ",".join(tr.task_name for tr in task_results))
    for tr in task_results:
        client.log_text(run_id, tr.model_dump_json(indent=2), f"mteb/{tr.task_name}.json")
    if source.run_id is None:
        client.set_terminated(run_id, "FINISHED")
    return run_id


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """Command line: MODEL_OR_RUN, tasks, languages, where the data and the tracking store are."""
    p = argparse.ArgumentParser(prog="python -m src.mteb", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", metavar="MODEL_OR_RUN", help="exported folder, checkpoint (.ckpt) or MLflow run id")
    p.add_argument("--tasks", nargs="+", default=list(DEFAULT_TASKS),
                   help="XQuAD-R-pooled, MLQA-R-pooled (local) or any MTEB task name (needs internet)")
    p.add_argument("--languages", nargs="+", help="ISO 639-1 codes; for pooled tasks also the pool")
    p.add_argument("--data-dir", help="folder holding lareqa/ (default $XLIR_DATA_DIR or ./data)")
    p.add_argument("--tracking-uri", default=None, help=f"default $MLFLOW_TRACKING_URI, else {DEFAULT_TRACKING_URI}")
    p.add_argument("--experiment", default="xlir", help="experiment of the new run (a folder or checkpoint)")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--no-log", action="store_true", help="print the scores only")
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Resolve the model, run the tasks, print and log the scores."""
    from src.mteb.tasks import TASKS
    from src.tracking.mlflow import resolve_tracking_uri

    args = parse_args(argv)
    if all(t in TASKS for t in args.tasks):
        os.environ.setdefault("HF_HUB_OFFLINE", "1")  # local data and a local model: never reach for the hub
    uri = args.tracking_uri or resolve_tracking_uri(DEFAULT_TRACKING_URI)  # a flag wins over MLFLOW_TRACKING_URI
    with tempfile.TemporaryDirectory(prefix="xlir-mteb-model-") as workdir:
        try:
            source = resolve(args.model, uri, Path(workdir))
            tasks = load_tasks(args.tasks, args.languages, args.data_dir)
        except (FileNotFoundError, ValueError, KeyError) as err:
            print(f"error: {err}", file=sys.stderr)
            return 2
        results = evaluate(source.model, tasks, args.batch_size)
    scores = flat_scores(results)
    for tr in results:
        main = scores.get(keys.mteb_key(tr.task_name, "main_score"), math.nan)
        per_subset = keys.mteb_subsets(scores, tr.task_name, "main_score")
        subsets = "  ".join(f"{subset}={v:.4f}" for subset, v in per_subset.items())
        print(f"{tr.task_name}: main score {main:.4f}  {subsets}")
    if not args.no_log:
        run_id = log_scores(uri, args.experiment, source, scores, results)
        print(f"MLflow run: {uri} run={run_id}")
    return 0
