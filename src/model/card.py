"""The model card (README.md) of an exported encoder: where it came from, how it scored, how to load it."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from src.core.config import DataSchema, ModelSchema, SamplingSchema

from src.core import keys

CARD_FILE = "README.md"
CARD_METRICS = tuple(keys.logged_name(m) for m in keys.GRID_METRICS)  # the grid's macro metrics, as logged
POOLING_TEXT = {"mean": "mean of the token states", "cls": "the [CLS] state", "pooler": "[CLS] + dense + tanh (pooler)"}


def prompt(text: str) -> str:
    """A prefix as the card shows it: quoted, so its trailing space is visible, or `none`."""
    return f'`"{text}"`' if text else "none"


@dataclass
class ModelCard:
    """What a user of the exported folder needs to know about the run that made it."""

    base_model: str  # the model config's name, e.g. me5_small_bundled
    pretrained: str  # the weights it started from (hub id or local folder)
    pooling: str
    query_prefix: str
    passage_prefix: str
    sampler: str
    alpha: float | None
    seed: int
    train_data: str
    train_languages: Sequence[str]
    steps: int
    batch_size: int
    metrics: Mapping[str, float] = field(default_factory=dict)
    eval_sets: Sequence[str] = ()
    run_id: str | None = None

    @classmethod
    def of_training(cls, model: ModelSchema, sampling: SamplingSchema, data: DataSchema, seed: int,
                    metrics: Mapping[str, float], steps: int, run_id: str | None = None) -> ModelCard:
        """The card of a `src.run` training run: its config sections, final metrics and optimizer steps."""
        from src.core.config import GRID_KINDS

        return cls(
            base_model=model.name, pretrained=str(model.pretrained), pooling=model.pooling,
            query_prefix=model.query_prefix, passage_prefix=model.passage_prefix,
            sampler=sampling.name, alpha=sampling.alpha, seed=seed,
            train_data=data.train.name, train_languages=list(data.train.languages or []),
            steps=int(steps), batch_size=data.batch_size, metrics=dict(metrics),
            eval_sets=[n for n, d in (data.eval or {}).items() if d.kind in GRID_KINDS], run_id=run_id,
        )

    def metric_table(self) -> str:
        """Zero-shot results as markdown: one row per evaluation set and setting (empty without metrics)."""
        from src.utils.markdown import markdown

        rows = []
        for name, setting, values, bias in keys.summary_rows(self.metrics, self.eval_sets, skip_absent=True):
            if all(math.isnan(v) for v in values):
                continue
            rows.append([f"{name} / {setting}", *(f"{v:.4f}" for v in values),
                         "" if bias is None else f"{bias:.1f}"])
        return markdown(["set / setting", *CARD_METRICS, "rank distance"], rows) if rows else ""

    def render(self) -> str:
        """The README.md text, with a Hugging Face front matter."""
        alpha = f", α = {self.alpha:g}" if self.alpha is not None else ""
        languages = ", ".join(self.train_languages)
        table = self.metric_table() or "_No zero-shot evaluation was recorded for this run._\n"
        mlflow = (f'- MLflow: `mlflow.sentence_transformers.load_model("runs:/{self.run_id}/model")`\n'
                  if self.run_id else "")
        front = ["---", "library_name: sentence-transformers", "pipeline_tag: sentence-similarity",
                 "tags: [sentence-transformers, feature-extraction, xlir, multilingual-retrieval]",
                 *([f"language: [{languages}]"] if languages else []), "---", ""]
        return "\n".join(front) + f"""# {self.base_model} fine-tuned with {self.sampler} batches

A bi-encoder for multilingual question -> answer-sentence retrieval, fine-tuned by
[xlir](https://arxiv.org/abs/2408.10536) with contrastive (InfoNCE) training on parallel question-passage pairs.

| | |
|---|---|
| base model | `{self.base_model}` (`{self.pretrained}`) |
| batch sampler | `{self.sampler}`{alpha} |
| seed | {self.seed} |
| training set | {self.train_data} ({languages}) |
| steps × batch size | {self.steps} × {self.batch_size} |
| pooling | {POOLING_TEXT.get(self.pooling, self.pooling)}, L2-normalised |
| prompts | query {prompt(self.query_prefix)}, passage {prompt(self.passage_prefix)} |
| MLflow run | {f"`{self.run_id}`" if self.run_id else "-"} |

## Zero-shot retrieval (evaluation sets never seen in training)

mono = X->X, cross = X->Y, multi = X -> the pooled candidates of all languages; mAP over the full ranking,
R@k, MRR, nDCG@10, and the language bias (rank distance, lower is better).

{table}
## How to load it

```python
from sentence_transformers import SentenceTransformer

model = SentenceTransformer("path/to/this/folder")
q = model.encode_query(["Where is Berlin?"])                 # prompt "query", query max length
p = model.encode_document(["Berlin is the capital of Germany."])  # prompt "passage"
scores = model.similarity(q, p)                              # cosine
```

- the bare transformer: `transformers.AutoModel.from_pretrained("path/to/this/folder")` (no pooling);
{mlflow}- xlir: `python -m src.evaluate model.pretrained=path/to/this/folder` (pooling, prompts and lengths come
  from `xlir_encoder.json`);
- MTEB: `python -m src.mteb path/to/this/folder --tasks XQuAD-R-pooled`.
"""

    def write(self, model_dir: str | Path) -> Path:
        """Write (or replace) `README.md` in the exported model folder."""
        path = Path(model_dir) / CARD_FILE
        path.write_text(self.render(), encoding="utf-8")
        return path
