"""LAReQA-format files (SQuAD v1.1 + `sentences`/`sentence_breaks`) -> validated, typed records."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


class DataFormatError(ValueError):
    """A data file does not have the LAReQA layout; the message names the file and the field."""


@dataclass(frozen=True)
class Question:
    """One question in one language, linked to its parallel versions by `xling_id`."""

    qid: str  # "{lang}:{xling_id}"
    xling_id: str
    lang: str
    text: str
    relevant_uid: str  # uid of the candidate sentence that holds the answer


@dataclass(frozen=True)
class Candidate:
    """One retrieval candidate: a sentence of a paragraph, with its paragraph as context."""

    uid: str  # "{lang}:{article}-{paragraph}-{sentence}"
    lang: str
    sentence: str
    context: str
    paragraph: str  # "{lang}:{article}-{paragraph}", groups sentences for hard negatives


@dataclass
class LanguageSplit:
    """All questions and candidates of one language file."""

    questions: list[Question] = field(default_factory=list)
    candidates: list[Candidate] = field(default_factory=list)


@dataclass
class LareqaDataset:
    """A LAReQA retrieval set: per language, its questions and candidate sentences."""

    name: str
    by_lang: dict[str, LanguageSplit]

    @property
    def languages(self) -> tuple[str, ...]:
        """Languages in load order."""
        return tuple(self.by_lang)

    @property
    def num_questions(self) -> int:
        """Questions over all languages."""
        return sum(len(s.questions) for s in self.by_lang.values())

    @property
    def num_candidates(self) -> int:
        """Candidate sentences over all languages."""
        return sum(len(s.candidates) for s in self.by_lang.values())

    def query_ids(self, lang: str) -> list[str]:
        """The qids of `lang`'s questions in record order (the per-query files' row order)."""
        return [q.qid for q in self.by_lang[lang].questions]

    def labels(self, lang: str) -> list[str] | None:
        """Per-question labels for breakdowns: LAReQA sets have none."""
        return None

    def clusters(self, lang: str) -> list[str] | None:
        """Randomisation units other than the question id (`xling_id`): none for LAReQA sets."""
        return None


def _require(obj: Any, key: str, kind: type, where: str, path: Path) -> Any:
    """Return obj[key] if it exists with the expected type, else raise naming file, place and key."""
    if not isinstance(obj, dict) or key not in obj:
        raise DataFormatError(f"{path}: {where} has no '{key}' field (expected LAReQA/SQuAD v1.1 layout)")
    value = obj[key]
    if not isinstance(value, kind):
        raise DataFormatError(
            f"{path}: {where}.{key} is {type(value).__name__}, expected {kind.__name__}"
        )
    return value


def load_language_file(path: Path, lang: str) -> LanguageSplit:
    """Parse and validate one LAReQA language file."""
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise DataFormatError(f"{path}: not valid JSON ({err}); the file may be truncated") from err
    articles = _require(raw, "data", list, "top level", path)
    split = LanguageSplit()
    seen_ids: set[str] = set()
    for a_idx, article in enumerate(articles):
        paragraphs = _require(article, "paragraphs", list, f"data[{a_idx}]", path)
        for p_idx, para in enumerate(paragraphs):
            where = f"data[{a_idx}].paragraphs[{p_idx}]"
            context = _require(para, "context", str, where, path)
            sentences = _require(para, "sentences", list, where, path)
            breaks = _require(para, "sentence_breaks", list, where, path)
            qas = _require(para, "qas", list, where, path)
            if len(sentences) != len(breaks):
                raise DataFormatError(
                    f"{path}: {where} has {len(sentences)} sentences but {len(breaks)} sentence_breaks"
                )
            for s_idx, brk in enumerate(breaks):
                ok = (
                    isinstance(brk, list)
                    and len(brk) == 2
                    and all(isinstance(x, int) for x in brk)
                    and 0 <= brk[0] <= brk[1] <= len(context)
                )
                if not ok:
                    raise DataFormatError(
                        f"{path}: {where}.sentence_breaks[{s_idx}]={brk!r} is not a [start, end] "
                        f"range inside the context (length {len(context)})"
                    )
            para_key = f"{lang}:{a_idx}-{p_idx}"
            uids = [f"{para_key}-{s_idx}" for s_idx in range(len(sentences))]
            split.candidates.extend(
                Candidate(uid=u, lang=lang, sentence=str(s), context=context, paragraph=para_key)
                for u, s in zip(uids, sentences)
            )
            for q_idx, qa in enumerate(qas):
                q_where = f"{where}.qas[{q_idx}]"
                qid = _require(qa, "id", str, q_where, path)
                text = _require(qa, "question", str, q_where, path)
                answers = _require(qa, "answers", list, q_where, path)
                if not text.strip():
                    raise DataFormatError(f"{path}: {q_where} (id {qid}) has an empty question")
                if qid in seen_ids:
                    raise DataFormatError(f"{path}: question id {qid} appears twice ({q_where})")
                seen_ids.add(qid)
                if not answers:
                    raise DataFormatError(f"{path}: {q_where} (id {qid}) has no answers")
                start = _require(answers[0], "answer_start", int, f"{q_where}.answers[0]", path)
                hits = [i for i, (b, e) in enumerate(breaks) if b <= start < e]
                if not hits:
                    raise DataFormatError(
                        f"{path}: {q_where} (id {qid}) answer_start={start} lies outside every sentence "
                        f"of its paragraph"
                    )
                split.questions.append(
                    Question(qid=f"{lang}:{qid}", xling_id=qid, lang=lang, text=text, relevant_uid=uids[hits[0]])
                )
    return split


def load_lareqa(path: str | Path, languages: Sequence[str], name: str | None = None) -> LareqaDataset:
    """Load `{path}/{lang}.json` for every language; a missing file is an error naming it."""
    root = Path(path)
    if not root.is_dir():
        raise FileNotFoundError(
            f"data folder {root} does not exist; run `make data` (links ../shared/data/lareqa or "
            f"downloads the pinned upstream files) or set XLIR_DATA_DIR / paths.data_dir"
        )
    if len(set(languages)) != len(languages) or not languages:
        raise ValueError(f"languages for {root} must be a non-empty list without repeats, got {list(languages)}")
    by_lang: dict[str, LanguageSplit] = {}
    for lang in languages:
        file = root / f"{lang}.json"
        if not file.is_file():
            have = sorted(p.stem for p in root.glob("*.json"))
            raise FileNotFoundError(
                f"language '{lang}' has no file {file} (languages with files here: {', '.join(have) or 'none'})"
            )
        by_lang[lang] = load_language_file(file, lang)
    return LareqaDataset(name=name or root.name, by_lang=by_lang)
