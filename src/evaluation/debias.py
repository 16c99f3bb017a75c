"""Post-hoc removal of language identity from embeddings: free baselines for what hybrid batches train in.

Both methods need no labels and no training; they are fitted per language on that language's candidate
embeddings and applied to every vector of that language (its queries too), then rows are renormalised.
The evaluation scores each method listed in `eval.debias` beside the raw embeddings, as its own set
(`xquad_r.center/multi/map`, src/core/keys.py), from the same encoding:

- `center`: subtract the language's mean candidate embedding.
- `lir` (Yang et al., 2021, "A simple and effective method to eliminate the self language bias in
  multilingual representations"): project out the top-k right singular vectors of the language's
  (uncentred) candidate matrix, which carry its language identity.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from src.core.specs import DEBIAS_METHODS
from src.evaluation.grid import Embeddings

Method = Literal["none", "center", "lir"]


def normalise(x: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (zero rows stay zero)."""
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.where(norms > 0, norms, 1.0)


def language_directions(fit: np.ndarray, k: int) -> np.ndarray:
    """The top-`k` right singular vectors (k, dim) of one language's uncentred embedding matrix."""
    if k < 1:
        raise ValueError(f"debias k must be >= 1, got {k}")
    _, _, vt = np.linalg.svd(fit.astype(np.float64), full_matrices=False)
    return vt[: min(k, vt.shape[0])]


def remove_language(x: np.ndarray, fit: np.ndarray, method: Method, k: int = 1) -> np.ndarray:
    """`x` (rows of one language) with that language's component, estimated on `fit`, removed; renormalised."""
    if method == "none":
        return x
    if len(fit) == 0:
        raise ValueError("debias needs at least one candidate of the language to fit on")
    x64 = x.astype(np.float64)
    if method == "center":
        out = x64 - fit.astype(np.float64).mean(axis=0)
    elif method == "lir":
        v = language_directions(fit, k)
        out = x64 - (x64 @ v.T) @ v
    else:
        raise ValueError(f"eval.debias={method!r}: expected one of {', '.join(DEBIAS_METHODS)}")
    return normalise(out).astype(x.dtype)


def debias_embeddings(emb: Embeddings, method: Method, k: int = 1) -> Embeddings:
    """Each language's questions and candidates with its component removed, fitted on its candidates only."""
    questions, candidates = {}, {}
    for lang, q in emb.questions.items():
        c = emb.candidates[lang]
        both = remove_language(np.concatenate([q, c]), c, method, k)  # one fit (an SVD for lir) per language
        questions[lang], candidates[lang] = both[: len(q)], both[len(q):]
    return Embeddings(questions, candidates)
