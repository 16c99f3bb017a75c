"""GradCache on the tiny BERT: same loss and gradients as the uncached computation, dropout on or off."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from src.core.config import ConfigError, validate
from src.model.encoder import BiEncoder
from src.model.gradcache import backward_through_chunks, chunk_slices, embed_without_graph
from src.model.loss import InfoNCELoss
from src.model.module import RetrievalModule
from src.model.weights.tiny import build_tiny_model
from tests.core.test_config import make_cfg

QUERIES = [f"where is city number {i} in country {i % 3}?" for i in range(10)]
PASSAGES = [f"city number {i} lies in the north of country {i % 3}." for i in range(10)]
NEGATIVES = [f"the river {i} flows south." for i in range(3)]
CHUNK = 4


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny BERT (dropout 0.1) built once for this module."""
    return build_tiny_model(QUERIES + PASSAGES + NEGATIVES, tmp_path_factory.mktemp("tiny") / "m", vocab_size=200)


def make_batch(enc: BiEncoder) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """Padded queries and passages (10 positives, then 3 hard negatives)."""
    return enc.pad(enc.tokenize(QUERIES, "query")), enc.pad(enc.tokenize(PASSAGES + NEGATIVES, "passage"))


def grads(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    """A copy of every parameter gradient (None for frozen ones), then zeroed."""
    out = {k: None if p.grad is None else p.grad.clone() for k, p in module.named_parameters()}
    module.zero_grad(set_to_none=True)
    return out


def assert_same_grads(a: dict, b: dict, rtol: float = 1e-4, atol: float = 1e-6) -> None:
    """Equal gradients, parameter by parameter (frozen parameters have none on both sides)."""
    assert a.keys() == b.keys()
    assert sum(g is not None for g in a.values()) > 10  # the model really trained
    for k, g in a.items():
        assert (g is None) == (b[k] is None), k
        if g is not None:
            torch.testing.assert_close(g, b[k], rtol=rtol, atol=atol, msg=lambda m, k=k: f"{k}: {m}")


def test_chunk_slices() -> None:
    assert chunk_slices(10, 4) == [slice(0, 4), slice(4, 8), slice(8, 10)]
    assert chunk_slices(0, 4) == []
    with pytest.raises(ValueError, match="chunk size must be >= 1, got 0"):
        chunk_slices(3, 0)


def test_gradcache_matches_chunked_graph_with_dropout(tiny_dir: Path) -> None:
    """Dropout on: pass 2 replays pass 1's masks, so the result equals forwarding the same chunks with graph."""
    enc = BiEncoder(str(tiny_dir), freeze_embeddings=True)
    enc.train()
    q_batch, p_batch = make_batch(enc)
    loss_fn = InfoNCELoss(0.05)
    n_pos = len(PASSAGES)

    torch.manual_seed(7)
    q = torch.cat([enc(**{k: v[s] for k, v in q_batch.items()}) for s in chunk_slices(len(QUERIES), CHUNK)])
    p = torch.cat([enc(**{k: v[s] for k, v in p_batch.items()}) for s in chunk_slices(n_pos + 3, CHUNK)])
    ref_loss = loss_fn(q, p[:n_pos], p[n_pos:])
    ref_loss.backward()
    ref = grads(enc)

    torch.manual_seed(7)
    sides = [embed_without_graph(enc, b, CHUNK) for b in (q_batch, p_batch)]
    cq, cp = (s.embeddings for s in sides)
    loss = loss_fn(cq, cp[:n_pos], cp[n_pos:])
    loss.backward()
    torch.manual_seed(12345)  # pass 2 must not depend on the global RNG stream
    backward_through_chunks(enc, sides)
    assert loss.item() == pytest.approx(ref_loss.item(), rel=1e-6)
    assert_same_grads(grads(enc), ref)

    # Control: dropout is really active, so without the RNG replay pass 2 would see other masks.
    chunk = {k: v[:CHUNK] for k, v in q_batch.items()}
    with torch.no_grad():
        assert not torch.allclose(enc(**chunk), enc(**chunk))


@pytest.mark.parametrize("bf16", [False, True])
def test_cached_module_step_matches_uncached_step(tiny_dir: Path, bf16: bool) -> None:
    """Dropout off: RetrievalModule's cached step (chunks of 4) equals its one-forward uncached step."""
    enc = BiEncoder(str(tiny_dir))
    enc.eval()  # no dropout: the chunking itself must not change anything
    q_batch, p_batch = make_batch(enc)
    results = []
    for cached in (False, True):
        module = RetrievalModule(enc, InfoNCELoss(0.05), torch.optim.AdamW, cached_negatives=cached,
                                 cache_chunk_size=CHUNK)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss = module.contrastive_loss(q_batch, p_batch, len(PASSAGES))
        module.backward(loss)
        results.append((loss.item(), grads(enc)))
    (ref_loss, ref), (loss, got) = results
    if bf16:  # different matmul shapes round differently in bf16
        assert loss == pytest.approx(ref_loss, rel=2e-2)
        # Compared as one vector: some tensors' true gradient is ~0 (attention key biases) and pure noise.
        keys = [k for k, g in ref.items() if g is not None]
        g_ref, g_got = (torch.cat([d[k].flatten() for k in keys]) for d in (ref, got))
        assert ((g_got - g_ref).norm() / g_ref.norm()).item() < 3e-2
    else:
        assert loss == pytest.approx(ref_loss, rel=1e-5)
        assert_same_grads(got, ref)


@pytest.mark.parametrize("size", ["0", "-4"])
def test_bad_chunk_size_names_the_key(size: str) -> None:
    # Checked once, by the config schema (RetrievalModule trusts its validated argument).
    with pytest.raises(ConfigError, match=rf"model\.cache_chunk_size={size}: expected >= 1"):
        validate(make_cfg("model.cached_negatives=true", f"model.cache_chunk_size={size}"))


def test_gradient_checkpointing_with_frozen_embeddings(tiny_dir: Path) -> None:
    """Non-reentrant checkpointing still yields gradients when the embedding output needs none."""
    plain = BiEncoder(str(tiny_dir), freeze_embeddings=True)
    ckpt = BiEncoder(str(tiny_dir), freeze_embeddings=True, gradient_checkpointing=True)
    assert ckpt.model.is_gradient_checkpointing
    out = []
    for enc in (plain, ckpt):
        enc.eval()
        q_batch, p_batch = make_batch(enc)
        InfoNCELoss(0.05)(enc(**q_batch), enc(**p_batch)[: len(PASSAGES)]).backward()
        out.append(grads(enc))
    assert_same_grads(out[1], out[0])


def test_pass_two_reenters_pass_one_autocast(tiny_dir: Path) -> None:
    """Lightning calls `backward` outside the step's autocast: pass 2 must still run under pass 1's (bf16)."""
    enc = BiEncoder(str(tiny_dir))
    enc.eval()
    q_batch, _ = make_batch(enc)
    seen: list[tuple[bool, bool]] = []

    def encode(**batch: torch.Tensor) -> torch.Tensor:
        seen.append((torch.is_grad_enabled(), torch.is_autocast_enabled("cpu")))
        return enc(**batch)

    with torch.autocast("cpu", dtype=torch.bfloat16):
        side = embed_without_graph(encode, q_batch, CHUNK)
    weights = torch.linspace(-1.0, 1.0, side.embeddings.numel()).reshape(side.embeddings.shape)
    (side.embeddings * weights).sum().backward()  # outside autocast, as Lightning's backward is
    backward_through_chunks(encode, [side])
    assert seen == [(False, True)] * 3 + [(True, True)] * 3  # 10 queries in chunks of 4
    got = grads(enc)

    # The same chunks with graph under bf16; without the weight-cast cache, as pass 2 re-enters autocast per
    # chunk (a shared cast would sum the chunks' weight gradients in bf16 before widening them).
    with torch.autocast("cpu", dtype=torch.bfloat16, cache_enabled=False):
        emb = torch.cat([enc(**{k: v[s] for k, v in q_batch.items()}) for s in chunk_slices(len(QUERIES), CHUNK)])
    (emb * weights).sum().backward()
    assert_same_grads(got, grads(enc))
