"""A tiny, randomly initialised BERT with a WordPiece vocabulary trained on the given texts.

Used by fast tests and smoke runs of the pipeline: it builds in about a second on CPU, is fully
deterministic for the same texts and seed, and loads with ``AutoModel`` / ``AutoTokenizer`` like any
Hugging Face checkpoint.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
from collections.abc import Iterable
from pathlib import Path

import tokenizers
from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers

from src.utils.files import replace_dir

SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")
MANIFEST_NAME = "xlir_manifest.json"


def _normalizer_and_pre_tokenizer() -> tuple[normalizers.Normalizer, pre_tokenizers.PreTokenizer]:
    """Return the BERT normaliser (cased, accents kept, CJK split) and pre-tokenizer."""
    normalizer = normalizers.BertNormalizer(
        clean_text=True, handle_chinese_chars=True, strip_accents=False, lowercase=False
    )
    return normalizer, pre_tokenizers.BertPreTokenizer()


def _continuation_alphabet(
    texts: list[str], normalizer: normalizers.Normalizer, pre_tokenizer: pre_tokenizers.PreTokenizer
) -> list[str]:
    """Return every character that occurs inside a word (not at its start), sorted."""
    # Normalising the joined corpus once is equivalent to per-text normalisation (it is per
    # character), and pre-tokenising only the distinct whitespace chunks keeps this fast.
    chunks = set(normalizer.normalize_str("\n".join(texts)).split())
    inner: set[str] = set()
    for word, _ in pre_tokenizer.pre_tokenize_str(" ".join(sorted(chunks))):
        inner.update(word[1:])
    return sorted(inner)


def train_wordpiece(texts: list[str], vocab_size: int) -> Tokenizer:
    """Train a cased WordPiece ``tokenizers.Tokenizer`` on ``texts`` (deterministic across processes)."""
    normalizer, pre_tokenizer = _normalizer_and_pre_tokenizer()
    trainer_tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    trainer_tok.normalizer = normalizer
    trainer_tok.pre_tokenizer = pre_tokenizer
    # tokenizers' BPE/WordPiece trainer gives the "##x" continuation pieces ids in hash-map order,
    # and those ids break ties between equally frequent merges, so two runs on the same corpus can
    # learn different vocabularies (huggingface/tokenizers#1794). Registering every "##x" up front,
    # in sorted order, fixes their ids and makes training reproducible.
    seeded = [f"##{c}" for c in _continuation_alphabet(texts, normalizer, pre_tokenizer)]
    trainer = trainers.WordPieceTrainer(
        vocab_size=vocab_size,
        special_tokens=[*SPECIAL_TOKENS, *seeded],
        continuing_subword_prefix="##",
        show_progress=False,
    )
    trainer_tok.train_from_iterator(texts, trainer=trainer)

    # Rebuild from the learned vocabulary so that only the five real specials are "added tokens"
    # (the seeded "##x" pieces must stay ordinary vocabulary entries).
    vocab = trainer_tok.get_vocab()
    tokenizer = Tokenizer(models.WordPiece(vocab=vocab, unk_token="[UNK]", continuing_subword_prefix="##"))
    tokenizer.normalizer = normalizer
    tokenizer.pre_tokenizer = pre_tokenizer
    tokenizer.add_special_tokens(list(SPECIAL_TOKENS))
    cls_id, sep_id = vocab["[CLS]"], vocab["[SEP]"]
    tokenizer.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", cls_id), ("[SEP]", sep_id)],
    )
    tokenizer.decoder = decoders.WordPiece(prefix="##")
    return tokenizer


def build_tiny_model(
    texts: Iterable[str],
    out_dir: Path,
    vocab_size: int = 4000,
    hidden_size: int = 64,
    num_layers: int = 2,
    num_heads: int = 2,
    intermediate_size: int = 128,
    max_position_embeddings: int = 256,
    seed: int = 0,
) -> Path:
    """Train a WordPiece vocab on ``texts``, build a random BertModel and save both to ``out_dir``."""
    import torch
    import transformers
    from transformers import BertConfig, BertModel, BertTokenizerFast

    texts = list(texts)
    if not texts or not all(isinstance(t, str) for t in texts) or not any(t.strip() for t in texts):
        raise ValueError("build_tiny_model needs a non-empty iterable of strings with some text in it")
    if vocab_size <= len(SPECIAL_TOKENS):
        raise ValueError(f"vocab_size must exceed the {len(SPECIAL_TOKENS)} special tokens, got {vocab_size}")
    if hidden_size % num_heads:
        raise ValueError(f"hidden_size ({hidden_size}) must be divisible by num_heads ({num_heads})")

    raw_tokenizer = train_wordpiece(texts, vocab_size)
    tokenizer = BertTokenizerFast(
        tokenizer_object=raw_tokenizer,
        unk_token="[UNK]",
        sep_token="[SEP]",
        pad_token="[PAD]",
        cls_token="[CLS]",
        mask_token="[MASK]",
        # Must mirror the normaliser above, or BertTokenizer would rebuild it lower-casing.
        do_lower_case=False,
        strip_accents=False,
        tokenize_chinese_chars=True,
        model_max_length=max_position_embeddings,
    )
    config = BertConfig(
        vocab_size=raw_tokenizer.get_vocab_size(),
        hidden_size=hidden_size,
        num_hidden_layers=num_layers,
        num_attention_heads=num_heads,
        intermediate_size=intermediate_size,
        max_position_embeddings=max_position_embeddings,
        type_vocab_size=2,
        pad_token_id=tokenizer.pad_token_id,
        tokenizer_class="BertTokenizer",
    )
    # fork_rng: seeding must not disturb the caller's global torch RNG stream.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = BertModel(config)

    target = Path(out_dir)
    target.parent.mkdir(parents=True, exist_ok=True)
    # Written next to the target and renamed, so a crash never leaves a half-written folder.
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    try:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        digest = hashlib.sha256()
        for text in texts:
            digest.update(text.encode("utf-8"))
            digest.update(b"\0")
        manifest = {
            "kind": "tiny-bert",
            "seed": seed,
            "num_texts": len(texts),
            "texts_sha256": digest.hexdigest(),
            "requested_vocab_size": vocab_size,
            "vocab_size": config.vocab_size,
            "parameters": sum(p.numel() for p in model.parameters()),
            "tokenizers_version": tokenizers.__version__,
            "transformers_version": transformers.__version__,
        }
        (tmp / MANIFEST_NAME).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
        # mkdtemp (and safetensors) create owner-only modes; the model should be readable like any file.
        tmp.chmod(0o755)
        for child in tmp.iterdir():
            child.chmod(0o644)
        replace_dir(tmp, target, lambda folder: (folder / MANIFEST_NAME).is_file())
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target
