"""Training pairs from parallel hub datasets (e.g. mMARCO): row i of every language is the same triplet.

mMARCO (`unicamp-dl/mmarco`) publishes one config per language whose rows are translations of the same
(query, positive, negative) triplets, so the row index links parallel versions like LAReQA's question id.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from src.data.pairs import PairTable

Loader = Callable[[str, str, str], Any]


def load_rows(path: str, subset: str, split: str) -> Any:
    """A language's rows: a local `save_to_disk` folder `{path}/{subset}`, else the hub (needs internet)."""
    import datasets

    local = Path(path) / subset
    if local.is_dir():
        return datasets.load_from_disk(str(local))
    try:
        return datasets.load_dataset(path, subset, split=split)
    except Exception as err:
        raise FileNotFoundError(
            f"data.train.path={path}: no local folder {local} and the hub dataset could not be loaded "
            f"({type(err).__name__}: {err}); offline, save each language with datasets' save_to_disk there"
        ) from err


def build_parallel_pairs(
    path: str,
    languages: Sequence[str],
    subsets: Mapping[str, str],
    split: str = "train",
    max_rows: int = 50_000,
    columns: Mapping[str, str] | None = None,
    loader: Loader = load_rows,
) -> PairTable:
    """Pairs for every row and every ordered language pair (X, Y): query in X, positive/negative in Y."""
    cols = {"query": "query", "positive": "positive", "negative": "negative", **(columns or {})}
    missing = [lang for lang in languages if lang not in subsets]
    if missing:
        raise ValueError(f"subsets has no entry for languages {missing} (language -> dataset config)")
    tables = {}
    for lang in languages:
        rows = loader(path, subsets[lang], split)
        absent = [c for c in cols.values() if c is not None and c not in rows.column_names]
        if absent:
            raise ValueError(f"{path} [{subsets[lang]}]: columns {absent} missing (have {rows.column_names})")
        tables[lang] = rows.select(range(min(max_rows, len(rows))))
    n = min(len(t) for t in tables.values())
    queries: list[str] = []
    passages: list[str] = []
    q_off, p_off = {}, {}
    for lang in languages:
        t = tables[lang]
        q_off[lang] = len(queries)
        queries.extend(t[cols["query"]][:n])
        p_off[lang] = len(passages)
        passages.extend(t[cols["positive"]][:n])
        if cols.get("negative"):
            passages.extend(t[cols["negative"]][:n])
    rows_idx = np.arange(n, dtype=np.int64)
    q_idx, p_idx, neg_idx, q_lang, p_lang = [], [], [], [], []
    for x in languages:
        for y in languages:
            q_idx.append(q_off[x] + rows_idx)
            p_idx.append(p_off[y] + rows_idx)
            neg_idx.append(p_off[y] + n + rows_idx if cols.get("negative") else np.full(n, -1, dtype=np.int64))
            q_lang += [x] * n
            p_lang += [y] * n
    xling = [str(i) for i in range(n)] * (len(languages) ** 2)
    return PairTable(
        queries=queries, passages=passages, passage_contexts=None,
        q_idx=np.concatenate(q_idx), p_idx=np.concatenate(p_idx), neg_idx=np.concatenate(neg_idx),
        q_lang=q_lang, p_lang=p_lang, xling_id=xling,
    )
