"""What every comparison needs: the composed project config, XQuAD-R, the encoders, the reference model."""

from __future__ import annotations

import importlib.util
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from src.data.lareqa import LareqaDataset

REPO = Path(__file__).resolve().parent.parent
ST_MISSING = ("sentence-transformers is not installed; it is the reference implementation of this comparison: "
              "pip install -e '.[bench]'")


@dataclass(frozen=True)
class Texts:
    """Questions (query side) and candidate sentences (passage side) to encode."""

    queries: list[str]
    passages: list[str]

    def __len__(self) -> int:
        return len(self.queries) + len(self.passages)


def has_sentence_transformers() -> bool:
    """True when the bench extra (the reference implementation) is installed."""
    return importlib.util.find_spec("sentence_transformers") is not None


def compose(overrides: Sequence[str] = ()) -> DictConfig:
    """The project's Hydra config, composed and validated as `python -m src.run` would see it."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    from src.core.config import validate

    out = tempfile.mkdtemp(prefix="xlir-bench-")
    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        cfg = hydra_compose("config", overrides=[f"paths.output_dir={out}", *overrides])
    validate(cfg)
    return cfg


def eval_sets(overrides: Sequence[str]) -> dict[str, Any]:
    """The grid evaluation sets of a composed config, loaded from its validated `data.eval` (schema defaults)."""
    from src.core.config import validate
    from src.data.sets import load_eval_sets

    return load_eval_sets(validate(compose(overrides)).data.eval)


def xquad_r(languages: Sequence[str] | None = None) -> LareqaDataset:
    """XQuAD-R from the configured data folder (all 11 languages unless restricted)."""
    langs = [f"data.eval.xquad_r.languages=[{','.join(languages)}]"] if languages else []
    return eval_sets(["data=xquad_r", *langs])["xquad_r"]


def dataset_texts(ds: LareqaDataset, stride: int = 1) -> Texts:
    """Every `stride`-th question and candidate sentence of a set, languages in load order."""
    if stride < 1:
        raise ValueError(f"stride must be >= 1, got {stride}")
    queries = [q.text for x in ds.languages for q in ds.by_lang[x].questions]
    passages = [c.sentence for x in ds.languages for c in ds.by_lang[x].candidates]
    return Texts(queries[::stride], passages[::stride])


def encoder(model: str = "me5_small_bundled") -> Any:
    """The project's BiEncoder for a model config, built offline (tiny: vocabulary from MLQA-R training texts)."""
    from src.data.sets import load_training_pairs
    from src.model.encoder import build_encoder

    cfg = compose([f"model={model}"])
    texts = None
    if model == "tiny":
        pairs = load_training_pairs(cfg.data.train, cfg.seed)
        texts = pairs.queries + pairs.passages
    enc = build_encoder(cfg.model, texts=texts)
    enc.eval()
    return enc


def sentence_transformer(enc: Any) -> Any:
    """A SentenceTransformer on the same Hugging Face folder: Transformer + mean Pooling + Normalize.

    The prefixes become its prompts (`query: `/`passage: `), so both sides see the same token ids.
    """
    if not has_sentence_transformers():
        raise ImportError(ST_MISSING)
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Normalize, Pooling, Transformer

    if enc.pooling != "mean":
        raise ValueError(f"the reference stack is built for mean pooling, the encoder uses {enc.pooling!r}")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    transformer = Transformer(enc.pretrained, max_seq_length=enc.max_lengths["passage"])
    modules = [transformer, Pooling(transformer.get_embedding_dimension(), "mean"), Normalize()]
    st = SentenceTransformer(modules=modules, device="cpu",
                             prompts={"query": enc.prefixes["query"], "document": enc.prefixes["passage"]})
    st.eval()
    return st


def st_encode(st: Any, texts: Sequence[str], side: str, max_length: int, batch_size: int) -> Any:
    """Reference encoding of one side: its prompt, its max length, numpy output (as its users call it)."""
    st.max_seq_length = max_length
    prompt_name = "query" if side == "query" else "document"
    return st.encode(list(texts), prompt_name=prompt_name, batch_size=batch_size, convert_to_numpy=True,
                     show_progress_bar=False)


def _article(uid: str) -> int:
    """Article number of a candidate uid `{lang}:{article}-{paragraph}-{sentence}`."""
    return int(uid.split(":", 1)[1].split("-", 1)[0])


def article_subset(ds: LareqaDataset, n_articles: int) -> LareqaDataset:
    """The first n articles of every language: their candidates and the questions answered in them.

    XQuAD-R is parallel, so the subset is a complete, smaller retrieval set with the same structure (every
    question keeps its answer in every language) — unlike dropping random texts, which would orphan queries.
    """
    from src.data.lareqa import LanguageSplit

    if n_articles < 1:
        raise ValueError(f"n_articles must be >= 1, got {n_articles}")
    by_lang = {
        x: LanguageSplit(
            questions=[q for q in split.questions if _article(q.relevant_uid) < n_articles],
            candidates=[c for c in split.candidates if _article(c.uid) < n_articles],
        )
        for x, split in ds.by_lang.items()
    }
    return LareqaDataset(name=ds.name, by_lang=by_lang)


def replicate(ds: LareqaDataset, factor: int) -> LareqaDataset:
    """The set `factor` times over: copy k of language X is language `X{k}` with xling_ids suffixed `~k`.

    Each copy is its own parallel group (a copy-k question is answered only by copy-k candidates), so every
    query keeps the same number of relevant candidates while the pool and the grid grow.
    """
    from dataclasses import replace

    from src.data.lareqa import LanguageSplit

    if factor < 1:
        raise ValueError(f"factor must be >= 1, got {factor}")
    by_lang = dict(ds.by_lang)
    for k in range(1, factor):
        for x, split in ds.by_lang.items():
            code = f"{x}{k}"

            def uid(u: str, code: str = code) -> str:
                return f"{code}:{u.split(':', 1)[1]}"

            by_lang[code] = LanguageSplit(
                questions=[replace(q, qid=f"{code}:{q.xling_id}~{k}", xling_id=f"{q.xling_id}~{k}", lang=code,
                                   relevant_uid=uid(q.relevant_uid)) for q in split.questions],
                candidates=[replace(c, uid=uid(c.uid), lang=code, paragraph=uid(c.paragraph))
                            for c in split.candidates],
            )
    return LareqaDataset(name=ds.name, by_lang=by_lang)
