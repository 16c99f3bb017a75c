"""Tests for the tiny test BERT builder (src/model/weights/tiny.py)."""

from __future__ import annotations

import hashlib
import json
import os
import random
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoConfig, AutoModel, AutoTokenizer

from src.model.weights.tiny import MANIFEST_NAME, SPECIAL_TOKENS, build_tiny_model, train_wordpiece

# Space-separated vocabulary per language (Chinese pre-split into words).
WORDS = {
    "en": "how much protein should a woman eat per day the capital city of Germany is Berlin",
    "de": "wie viel Eiweiß sollte eine Frau pro Tag essen die Hauptstadt Übersetzung Straße",
    "zh": "北京 是 中国 的 首都 蛋白质 每天 女性 应该 吃 多少",
    "ar": "كم من البروتين يجب أن تأكل المرأة في اليوم عاصمة ألمانيا هي برلين",
    "hi": "एक महिला को प्रतिदिन कितना प्रोटीन खाना चाहिए",
    "ru": "Сколько белка должна съедать женщина в день",
}


def make_corpus(n: int, seed: int = 0) -> list[str]:
    """Short synthetic sentences, each in one language, with digits and punctuation."""
    rng = random.Random(seed)
    langs = sorted(WORDS)
    texts = []
    for i in range(n):
        words = WORDS[langs[i % len(langs)]].split()
        sentence = " ".join(rng.choice(words) for _ in range(rng.randint(3, 12)))
        texts.append(f"{sentence}{rng.choice(['.', '?', '!', ''])} {rng.randint(0, 9999)}")
    return texts


CORPUS = make_corpus(3000)


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_model(CORPUS, tmp_path_factory.mktemp("tiny") / "model")


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_loads_with_auto_classes(tiny_dir: Path) -> None:
    config = AutoConfig.from_pretrained(tiny_dir)
    tokenizer = AutoTokenizer.from_pretrained(tiny_dir)
    model = AutoModel.from_pretrained(tiny_dir)
    assert config.model_type == "bert"
    assert type(model).__name__ == "BertModel"
    assert (config.hidden_size, config.num_hidden_layers, config.num_attention_heads) == (64, 2, 2)
    assert (config.intermediate_size, config.max_position_embeddings) == (128, 256)
    assert "Bert" in type(tokenizer).__name__
    assert tokenizer.model_max_length == 256
    # The vocabulary really was learned: specials first, then far more than the bare alphabet.
    assert tokenizer.convert_ids_to_tokens(list(range(5))) == list(SPECIAL_TOKENS)
    assert 500 < len(tokenizer) <= 4000
    assert config.vocab_size == len(tokenizer) == model.embeddings.word_embeddings.num_embeddings
    assert config.pad_token_id == tokenizer.pad_token_id == 0
    assert {"protein", "Berlin"} <= set(tokenizer.get_vocab())
    manifest = json.loads((tiny_dir / MANIFEST_NAME).read_text())
    assert manifest["num_texts"] == len(CORPUS)
    assert manifest["vocab_size"] == config.vocab_size


def test_saved_tokenizer_matches_trained_one(tiny_dir: Path) -> None:
    raw = train_wordpiece(CORPUS, 4000)
    tokenizer = AutoTokenizer.from_pretrained(tiny_dir)
    samples = [*CORPUS[:20], "Hello World", "ÜBERSETZUNG straße", "北京是中国的首都。"]
    for text in samples:
        assert tokenizer(text)["input_ids"] == raw.encode(text).ids, text
    pair = tokenizer("wie viel", "how much")
    assert pair["input_ids"] == raw.encode("wie viel", "how much").ids
    assert pair["token_type_ids"] == [0, 0, 0, 0, 1, 1, 1]
    ids = tokenizer("how much protein")["input_ids"]
    assert ids[0] == tokenizer.cls_token_id
    assert ids[-1] == tokenizer.sep_token_id


def test_tokenizer_is_cased_and_keeps_accents(tiny_dir: Path) -> None:
    tokenizer = AutoTokenizer.from_pretrained(tiny_dir)
    assert tokenizer.tokenize("Berlin") == ["Berlin"]
    assert tokenizer.tokenize("Berlin") != tokenizer.tokenize("berlin")
    assert "Übersetzung" in tokenizer.tokenize("Übersetzung")


def test_trained_scripts_are_not_unknown(tiny_dir: Path) -> None:
    tokenizer = AutoTokenizer.from_pretrained(tiny_dir)
    unk = tokenizer.unk_token_id
    for text in ["北京是中国的首都", "عاصمة ألمانيا هي برلين", "कितना प्रोटीन", "Сколько белка"]:
        ids = tokenizer(text, add_special_tokens=False)["input_ids"]
        assert ids, text
        assert unk not in ids, (text, tokenizer.convert_ids_to_tokens(ids))
    # Chinese is split per character (handle_chinese_chars=True).
    assert tokenizer.tokenize("北京") == ["北", "京"]
    # Scripts absent from the training texts have no pieces at all.
    assert tokenizer("ภาษาไทย 한국어", add_special_tokens=False)["input_ids"] == [unk, unk]


def test_forward_pass_shapes(tiny_dir: Path) -> None:
    tokenizer = AutoTokenizer.from_pretrained(tiny_dir)
    model = AutoModel.from_pretrained(tiny_dir).eval()
    batch = tokenizer(
        ["how much protein", "北京是中国的首都", "a " * 400],
        padding=True,
        truncation=True,
        return_tensors="pt",
    )
    assert batch["input_ids"].shape[1] == 256  # truncated to max_position_embeddings
    with torch.no_grad():
        out = model(**batch)
    assert out.last_hidden_state.shape == (3, 256, 64)
    assert out.pooler_output.shape == (3, 64)
    assert torch.isfinite(out.last_hidden_state).all()
    # Padding is masked out: a padded short text encodes like the unpadded one.
    alone = tokenizer(["how much protein"], return_tensors="pt")
    with torch.no_grad():
        ref = model(**alone).last_hidden_state[0]
    n = ref.shape[0]
    torch.testing.assert_close(out.last_hidden_state[0, :n], ref, atol=1e-5, rtol=1e-4)


def test_vocabulary_training_is_deterministic() -> None:
    # tokenizers' own trainer assigns "##x" ids in hash order (huggingface/tokenizers#1794); the
    # seeding in train_wordpiece must make repeated trainings identical.
    corpus = make_corpus(1500, seed=3)
    vocabs = {json.dumps(sorted(train_wordpiece(corpus, 600).get_vocab().items())) for _ in range(4)}
    assert len(vocabs) == 1


def test_same_inputs_give_identical_folders(tiny_dir: Path, tmp_path: Path) -> None:
    again = build_tiny_model(CORPUS, tmp_path / "again")
    assert _sha(again / "tokenizer.json") == _sha(tiny_dir / "tokenizer.json")
    first, second = load_file(tiny_dir / "model.safetensors"), load_file(again / "model.safetensors")
    assert first.keys() == second.keys()
    for key in first:
        assert torch.equal(first[key], second[key]), key

    other_seed = load_file(build_tiny_model(CORPUS, tmp_path / "seed1", seed=1) / "model.safetensors")
    assert not torch.equal(
        first["embeddings.word_embeddings.weight"], other_seed["embeddings.word_embeddings.weight"]
    )


def test_caller_rng_is_untouched(tmp_path: Path) -> None:
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    build_tiny_model(CORPUS[:200], tmp_path / "m", vocab_size=300, seed=7)
    torch.testing.assert_close(torch.rand(3), expected)


def test_rebuild_replaces_folder_atomically(tmp_path: Path) -> None:
    target = tmp_path / "m"
    target.mkdir()
    (target / "stale.txt").write_text("left over")
    assert build_tiny_model(CORPUS[:200], target, vocab_size=300, hidden_size=32) == target
    assert not (target / "stale.txt").exists()
    assert AutoConfig.from_pretrained(target).hidden_size == 32
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]  # no temp folders left behind


def test_custom_sizes_and_generators(tmp_path: Path) -> None:
    out = build_tiny_model(
        (t for t in CORPUS[:500]),
        tmp_path / "m",
        vocab_size=300,
        hidden_size=48,
        num_layers=1,
        num_heads=3,
        intermediate_size=96,
        max_position_embeddings=64,
    )
    config = AutoConfig.from_pretrained(out)
    assert (config.hidden_size, config.num_hidden_layers, config.num_attention_heads) == (48, 1, 3)
    assert config.vocab_size <= 300
    assert AutoTokenizer.from_pretrained(out).model_max_length == 64


@pytest.mark.parametrize(
    ("texts", "kwargs", "message"),
    [
        ([], {}, "non-empty"),
        (["", "  "], {}, "non-empty"),
        (["fine text"], {"hidden_size": 65, "num_heads": 2}, "divisible"),
        (["fine text"], {"vocab_size": 5}, "vocab_size"),
    ],
)
def test_rejects_bad_arguments(tmp_path: Path, texts: list[str], kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        build_tiny_model(texts, tmp_path / "m", **kwargs)
    assert not (tmp_path / "m").exists()


def test_twenty_thousand_texts_build_in_seconds(tmp_path: Path) -> None:
    corpus = make_corpus(20_000, seed=1)
    start = time.perf_counter()
    build_tiny_model(corpus, tmp_path / "m")
    elapsed = time.perf_counter() - start
    # ~1 s on a 2-core laptop-class CPU; the bound only catches pathological slowdowns.
    assert elapsed < 20, elapsed
