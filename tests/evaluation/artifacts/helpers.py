"""Shared by the artifact tests: random (tie-free) embeddings and a TREC run reader."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import numpy as np

from src.data.lareqa import LareqaDataset
from src.evaluation.grid import Embeddings, GridResult

LANGS = ["en", "de", "zh"]


def random_embeddings(ds: LareqaDataset, dim: int = 16, seed: int = 0) -> Embeddings:
    """Gaussian vectors: continuous scores, so (almost surely) no ties in any ranking."""
    rng = np.random.default_rng(seed)
    return Embeddings(
        questions={x: rng.standard_normal((len(s.questions), dim)).astype(np.float32) for x, s in ds.by_lang.items()},
        candidates={x: rng.standard_normal((len(s.candidates), dim)).astype(np.float32)
                    for x, s in ds.by_lang.items()},
    )


def read_run(path: Path) -> dict[str, list[tuple[str, int, float]]]:
    """qid -> [(docid, rank, score)] in file order."""
    out: dict[str, list[tuple[str, int, float]]] = defaultdict(list)
    for line in path.read_text(encoding="utf-8").splitlines():
        qid, q0, doc, rank, score, tag = line.split(" ")
        assert q0 == "Q0" and tag == "xlir"
        out[qid].append((doc, int(rank), float(score)))
    return out


def assert_same_grid(a: GridResult, b: GridResult) -> None:
    """Every per-query array of two grid results equal, NaN included."""
    assert a.pairs.keys() == b.pairs.keys() and a.multi.keys() == b.multi.keys()
    for key in a.pairs:
        for m in a.pairs[key]:
            np.testing.assert_array_equal(a.pairs[key][m], b.pairs[key][m])
    for x in a.multi:
        for m in a.multi[x]:
            np.testing.assert_array_equal(a.multi[x][m], b.multi[x][m])
