"""A validation split carved out of the training set by question id: the only data that selects a model.

The zero-shot sets are test sets; choosing a checkpoint or a step count on them would tune on the test.
Which question ids are held out depends only on the id and the fraction (a hash, not a seeded shuffle), so
every sampler and every seed validates on the same questions, in every language they exist in.
"""

from __future__ import annotations

import hashlib

from src.data.lareqa import LanguageSplit, LareqaDataset


def held_out(xling_id: str, fraction: float) -> bool:
    """Whether a question id belongs to the validation split (uniform in [0, 1) from its hash)."""
    if not 0.0 <= fraction < 1.0:
        raise ValueError(f"fraction={fraction}: expected a fraction in [0, 1)")
    digest = hashlib.blake2b(xling_id.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64 < fraction


def split_by_question(ds: LareqaDataset, fraction: float) -> tuple[LareqaDataset, LareqaDataset]:
    """(training, validation): disjoint question ids; every candidate stays in training (passages, negatives)."""
    train, val = {}, {}
    for lang, split in ds.by_lang.items():
        keep = [q for q in split.questions if not held_out(q.xling_id, fraction)]
        hold = [q for q in split.questions if held_out(q.xling_id, fraction)]
        train[lang] = LanguageSplit(questions=keep, candidates=split.candidates)
        val[lang] = LanguageSplit(questions=hold, candidates=split.candidates)
    return LareqaDataset(ds.name, train), LareqaDataset(f"{ds.name}_val", val)


def retrieval_subset(val: LareqaDataset) -> LareqaDataset:
    """The validation questions against the sentences of their answers' paragraphs: small, fast to encode.

    Each language keeps the paragraphs that answer its own validation questions; a question's answers in
    the other languages are answers of its translations (held out too), so the grid (mono, cross, pooled)
    has its full structure, with the other sentences of those paragraphs as distractors.
    """
    out = {}
    for lang, split in val.by_lang.items():
        if not split.questions:
            continue
        paragraph = {c.uid: c.paragraph for c in split.candidates}
        keep = {paragraph[q.relevant_uid] for q in split.questions}
        out[lang] = LanguageSplit(questions=split.questions,
                                  candidates=[c for c in split.candidates if c.paragraph in keep])
    return LareqaDataset(val.name, out)
