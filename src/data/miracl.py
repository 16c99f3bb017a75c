"""MIRACL (16 languages, Wikipedia passages): per language, the topics + qrels of a split and its corpus.

The data live in two hub datasets, and a local folder uses their file layout unchanged:

    miracl/miracl          miracl-v1.0-{lang}/topics/topics.miracl-v1.0-{lang}-{split}.tsv   qid <TAB> query
                           miracl-v1.0-{lang}/qrels/qrels.miracl-v1.0-{lang}-{split}.tsv     qid Q0 docid rel
    miracl/miracl-corpus   miracl-corpus-v1.0-{lang}/docs-*.jsonl[.gz]                       docid, title, text

`data.eval.<name>.path` points at a folder holding both (e.g. two `huggingface-cli download` targets merged);
with `path: null` the files of the chosen languages are downloaded from `hub_topics` / `hub_corpus` into
`${paths.cache_dir}/miracl` first. Either way the corpus is read by `datasets` into a memory-mapped Arrow
table. (The hub datasets' own loading scripts cannot run under `datasets` >= 4, hence the raw files.)
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from src.data.beir import Qrels, RetrievalSet, build_set, load_corpus

DEV_LANGUAGES = ("ar", "bn", "en", "es", "fa", "fi", "fr", "hi", "id", "ja", "ko", "ru", "sw", "te", "th", "zh")


def topics_file(root: Path, lang: str, split: str) -> Path:
    """Where the topics TSV of a language and split lives in the miracl/miracl layout."""
    return root / f"miracl-v1.0-{lang}" / "topics" / f"topics.miracl-v1.0-{lang}-{split}.tsv"


def qrels_file(root: Path, lang: str, split: str) -> Path:
    """Where the TREC qrels of a language and split live in the miracl/miracl layout."""
    return root / f"miracl-v1.0-{lang}" / "qrels" / f"qrels.miracl-v1.0-{lang}-{split}.tsv"


def corpus_files(root: Path, lang: str) -> list[Path]:
    """The corpus shards of a language in the miracl/miracl-corpus layout (sorted, .jsonl or .jsonl.gz)."""
    folder = root / f"miracl-corpus-v1.0-{lang}"
    return sorted([*folder.glob("docs-*.jsonl"), *folder.glob("docs-*.jsonl.gz")])


def read_topics(path: Path) -> dict[str, str]:
    """MIRACL topics TSV (no header): query id <TAB> query text."""
    out: dict[str, str] = {}
    with open(path, encoding="utf-8") as fh:
        for n, line in enumerate(fh, 1):
            if not line.strip():
                continue
            parts = line.rstrip("\n").split("\t")
            if len(parts) < 2 or not parts[1].strip():
                raise ValueError(f"{path}:{n}: expected query-id<TAB>query, got {line.strip()!r}")
            out[parts[0]] = parts[1]
    return out


def read_trec_qrels(path: Path) -> Qrels:
    """TREC qrels (`qid Q0 docid rel`, whitespace separated) -> {query id: {doc id: grade}}."""
    qrels: Qrels = {}
    with open(path, encoding="utf-8") as fh:
        for n, line in enumerate(fh, 1):
            parts = line.split()
            if not parts:
                continue
            if len(parts) != 4 or not parts[3].lstrip("-").isdigit():
                raise ValueError(f"{path}:{n}: expected `qid Q0 docid rel`, got {line.strip()!r}")
            qrels.setdefault(parts[0], {})[parts[2]] = int(parts[3])
    return qrels


def download(languages: Sequence[str], split: str, hub_topics: str, hub_corpus: str, target: Path) -> Path:
    """Fetch the topics/qrels and corpus files of these languages from the hub into `target` (same layout)."""
    if os.environ.get("HF_HUB_OFFLINE", "0") not in ("0", "", "false"):
        raise RuntimeError(
            "MIRACL with data.eval.<name>.path=null downloads from the hub, but HF_HUB_OFFLINE is set; "
            "download miracl/miracl and miracl/miracl-corpus once and set data.eval.<name>.path to that folder"
        )
    from huggingface_hub import snapshot_download

    topic_patterns = [f"miracl-v1.0-{x}/{kind}/*-{split}.tsv" for x in languages for kind in ("topics", "qrels")]
    snapshot_download(hub_topics, repo_type="dataset", local_dir=target, allow_patterns=topic_patterns)
    snapshot_download(hub_corpus, repo_type="dataset", local_dir=target,
                      allow_patterns=[f"miracl-corpus-v1.0-{x}/*" for x in languages])
    return target


def load_miracl_language(root: str | Path, lang: str, split: str = "dev", name: str = "miracl",
                         max_queries: int | None = None, cache_dir: str | Path | None = None) -> RetrievalSet:
    """One language: its topics and qrels of `split`, and its corpus, from a folder in the hub layout."""
    base = Path(root)
    topics, qrels = topics_file(base, lang, split), qrels_file(base, lang, split)
    docs = corpus_files(base, lang)
    for f in (topics, qrels):
        if not f.is_file():
            raise FileNotFoundError(f"data.eval.{name} ({lang}): {f} not found (miracl/miracl layout expected)")
    if not docs:
        raise FileNotFoundError(f"data.eval.{name} ({lang}): no docs-*.jsonl[.gz] in "
                                f"{base / f'miracl-corpus-v1.0-{lang}'} (miracl/miracl-corpus layout expected)")
    corpus = load_corpus(docs, id_field="docid", cache_dir=cache_dir)
    return build_set(name, lang, corpus, read_topics(topics), read_trec_qrels(qrels), str(qrels), max_queries)


def load_miracl(path: str | Path | None, languages: Sequence[str], split: str = "dev", name: str = "miracl",
                max_queries: int | None = None, cache_dir: str | Path = ".cache",
                hub_topics: str = "miracl/miracl", hub_corpus: str = "miracl/miracl-corpus") -> dict[str, RetrievalSet]:
    """Every requested language of MIRACL, from a local folder or (path=None) the hub."""
    unknown = [x for x in languages if x not in DEV_LANGUAGES]
    if unknown:
        raise ValueError(f"data.eval.{name}.languages: {unknown} are not MIRACL languages {list(DEV_LANGUAGES)}")
    root = Path(path) if path is not None else download(languages, split, hub_topics, hub_corpus,
                                                         Path(cache_dir) / "miracl")
    if not root.is_dir():
        raise FileNotFoundError(f"data.eval.{name}.path={path}: folder does not exist")
    return {x: load_miracl_language(root, x, split, name, max_queries, Path(cache_dir) / "datasets")
            for x in languages}
