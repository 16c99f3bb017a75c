"""XQuAD-R-pooled and MLQA-R-pooled: LAReQA's multilingual (pooled) setting as MTEB retrieval tasks.

MTEB has no pooled LAReQA task. Here every query language is one subset whose questions search the candidate
sentences of *all* the task's languages, and every parallel answer sentence is relevant: the project's
`{set}/multi/*` setting (src/evaluation/grid.py). The data come from the local LAReQA files, so it runs offline.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from mteb.abstasks.retrieval import AbsTaskRetrieval
from mteb.abstasks.task_metadata import TaskMetadata

# mteb's own ISO 639-1 -> language-script table of XQuAD (a superset of MLQA-R's languages).
from mteb.tasks.retrieval.multilingual.x_qu_ad_retrieval import _LANGUAGES as LANG_SCRIPTS

from src.data.fetch import UPSTREAM
from src.data.lareqa import LareqaDataset, load_lareqa
from src.evaluation.grid import relevance

SPLIT = "test"
LAREQA_CITATION = r"""
@inproceedings{roy2020lareqa,
  author = {Roy, Uma and Constant, Noah and Al-Rfou, Rami and Barua, Aditya and Phillips, Aaron and Yang, Yinfei},
  booktitle = {Proceedings of EMNLP 2020},
  title = {LAReQA: Language-Agnostic Answer Retrieval from a Multilingual Pool},
  year = {2020},
}
"""


def default_data_dir() -> Path:
    """`$XLIR_DATA_DIR` or ./data, as conf/paths/default.yaml resolves `paths.data_dir`."""
    return Path(os.environ.get("XLIR_DATA_DIR", "data"))


def metadata(name: str, folder: str, languages: Sequence[str], license_: str, date: tuple[str, str],
             description: str) -> TaskMetadata:
    """Task metadata of a pooled LAReQA set; the dataset is pinned to the upstream commit `make data` uses."""
    return TaskMetadata(
        name=name,
        description=description + " Pooled setting: each language's questions search the sentences of all "
        "languages; every parallel answer sentence is relevant.",
        reference="https://arxiv.org/abs/2004.05484",
        dataset={"path": "google-research-datasets/lareqa",
                 "revision": UPSTREAM[folder].split("/lareqa/")[1].split("/")[0]},
        type="Retrieval", category="t2t", modalities=["text"], eval_splits=[SPLIT],
        eval_langs={lang: LANG_SCRIPTS[lang] for lang in languages},
        main_score="map_at_1000", date=date, domains=["Encyclopaedic", "Written"],
        task_subtypes=["Question answering"], license=license_, annotations_creators="human-annotated",
        dialect=[], sample_creation="found", bibtex_citation=LAREQA_CITATION,
    )


class LareqaPooledTask(AbsTaskRetrieval):
    """One LAReQA set in the pooled setting; `languages` narrows both the query subsets and the pool."""

    folder: str  # the set's folder under {data_dir}/lareqa
    # 1000 is MTEB's deepest cut-off (map_at_1000, the main score); deeper would keep a huge run per query.
    k_values = (1, 3, 5, 10, 100, 1000)

    def __init__(self, languages: Sequence[str] | None = None, data_dir: str | Path | None = None,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        known = list(self.metadata.eval_langs)
        self.lareqa_languages = list(languages) if languages else known
        unknown = sorted(set(self.lareqa_languages) - set(known))
        if unknown:
            raise ValueError(f"{self.metadata.name} has no language(s) {unknown}; it has {known}")
        self.hf_subsets = self.lareqa_languages
        self.data_dir = Path(data_dir) if data_dir is not None else default_data_dir()

    def load_lareqa(self) -> LareqaDataset:
        """The validated LAReQA records of the chosen languages (src/data/lareqa.py)."""
        return load_lareqa(self.data_dir / "lareqa" / self.folder, self.lareqa_languages, self.metadata.name)

    def load_data(self, num_proc: int | None = None, **kwargs: Any) -> None:
        """Queries per language, one shared pool of candidates, every parallel answer relevant (grade 1)."""
        if self.data_loaded:
            return
        from datasets import Dataset

        ds = self.load_lareqa()
        candidates = [c for x in self.lareqa_languages for c in ds.by_lang[x].candidates]
        corpus = Dataset.from_dict({"id": [c.uid for c in candidates], "text": [c.sentence for c in candidates]})
        self.dataset = {}
        for x in self.lareqa_languages:
            questions = ds.by_lang[x].questions
            rel = relevance(ds, x, self.lareqa_languages)  # indices into the pool, -1 where a language lacks the id
            qrels = {q.qid: {candidates[j].uid: 1 for j in row if j >= 0} for q, row in zip(questions, rel)}
            queries = Dataset.from_dict({"id": [q.qid for q in questions], "text": [q.text for q in questions]})
            self.dataset[x] = {SPLIT: {"corpus": corpus, "queries": queries, "relevant_docs": qrels,
                                       "top_ranked": None}}
        self.data_loaded = True


class XQuADRPooled(LareqaPooledTask):
    """XQuAD-R (11 languages, 1,190 parallel questions each), pooled."""

    folder = "xquad-r"
    metadata = metadata(
        "XQuAD-R-pooled", folder, ["ar", "de", "el", "en", "es", "hi", "ru", "th", "tr", "vi", "zh"],
        "cc-by-sa-4.0", ("2019-10-01", "2020-04-30"),
        "XQuAD-R (LAReQA): XQuAD's questions and answer sentences in 11 languages, 13,014 candidate sentences.",
    )


class MLQARPooled(LareqaPooledTask):
    """MLQA-R (7 languages, 4,199 question ids, not all in every language), pooled."""

    folder = "mlqa-r"
    metadata = metadata(
        "MLQA-R-pooled", folder, ["ar", "de", "en", "es", "hi", "vi", "zh"], "cc-by-nc-4.0",
        ("2019-10-01", "2020-04-30"),
        "MLQA-R (LAReQA): MLQA's questions and answer sentences in 7 languages, 20,534 candidate sentences.",
    )


TASKS: dict[str, type[LareqaPooledTask]] = {t.metadata.name: t for t in (XQuADRPooled, MLQARPooled)}
