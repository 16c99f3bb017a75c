"""A run's data sets from their config sections: training pairs (+ validation split), grid evaluation sets."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from src.core.config import GRID_KINDS, ConfigError, DatasetSchema, TrainSetSchema
from src.data.bitext import BitextDataset
from src.data.datamodule import VAL_SEED
from src.data.lareqa import LareqaDataset, load_lareqa
from src.data.pairs import PairTable, build_pairs
from src.data.validation import retrieval_subset, split_by_question


@dataclass
class TrainingData:
    """Training pairs, and the validation split's pairs (loss) and retrieval set (mAP) when there is one."""

    pairs: PairTable
    val_pairs: PairTable | None = None
    val_set: LareqaDataset | None = None

    def texts(self) -> list[str]:
        """Every text the run learns from or selects on (the zero-shot check's training side)."""
        tables = [self.pairs] + ([self.val_pairs] if self.val_pairs else [])
        return [t for table in tables for t in table.queries + table.passages]


def load_training_data(t: TrainSetSchema, seed: int) -> TrainingData:
    """`data.train`: a LAReQA set (every language pair per question id, minus the validation ids) or a hub set."""
    if t.kind == "hub":
        from src.data.hub import build_parallel_pairs

        return TrainingData(build_parallel_pairs(
            t.path, list(t.languages), dict(t.subsets), t.split, t.max_rows,
            dict(t.columns) if t.hard_negatives else {**t.columns, "negative": None}))
    full = load_lareqa(t.path, list(t.languages), t.name)
    if not t.val_fraction:
        return TrainingData(build_pairs(full, t.candidate_text, t.hard_negatives, seed))
    train_set, val_set = split_by_question(full, t.val_fraction)
    if val_set.num_questions == 0:
        raise ConfigError(f"data.train.val_fraction={t.val_fraction}: holds out no question of {t.name} "
                          f"({full.num_questions} questions); raise it, or 0 for no validation split")
    # Validation pairs draw their hard negatives with a fixed seed: the same validation loss for every run.
    return TrainingData(build_pairs(train_set, t.candidate_text, t.hard_negatives, seed),
                        build_pairs(val_set, t.candidate_text, t.hard_negatives, VAL_SEED),
                        retrieval_subset(val_set))


def load_training_pairs(train: TrainSetSchema, seed: int) -> PairTable:
    """The training pairs of `data.train` (validation question ids left out)."""
    return load_training_data(train, seed).pairs


def load_eval_set(name: str, d: DatasetSchema) -> LareqaDataset | BitextDataset:
    """One grid evaluation set in its publisher's format (`kind` + `format`), validated, named `name`."""
    langs = list(d.languages)
    if d.kind == "lareqa" and d.format in (None, "lareqa"):
        return load_lareqa(d.path, langs, name)
    # Imported on use: a run reads only the formats its sets are in.
    if d.format == "ntrex":
        from src.data.ntrex import load_ntrex, ntrex_bitext, ntrex_grid

        corpus = load_ntrex(d.path, langs)
        return ntrex_grid(corpus, str(d.candidates), name) if d.kind == "lareqa" else ntrex_bitext(corpus, name)
    if d.format == "sib200":
        from src.data.sib200 import load_sib200

        return load_sib200(d.path, langs, name)
    if d.format == "tico19":
        from src.data.tico19 import load_tico19

        return load_tico19(d.path, langs, name, None if d.origins is None else list(d.origins))
    if d.format == "tatoeba":
        from src.data.tatoeba import load_tatoeba

        return load_tatoeba(d.path, langs, name)
    raise ConfigError(f"data.eval.{name}: kind={d.kind} format={d.format} is not a grid set (see src/core/config.py FORMATS)")


def load_eval_sets(eval_sets: Mapping[str, DatasetSchema]) -> dict[str, LareqaDataset | BitextDataset]:
    """Every grid evaluation set under `data.eval` (LAReQA grid, translation retrieval), validated, before any
    model loads; corpus kinds load through src.evaluation.retrieval."""
    return {name: load_eval_set(name, d) for name, d in eval_sets.items() if d.kind in GRID_KINDS}
