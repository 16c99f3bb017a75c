"""CUDA against the plain computation: GradCache gradients, and the evaluation grid against the CPU's."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from src.model.encoder import BiEncoder
from src.model.gradcache import backward_through_chunks, chunk_slices, embed_without_graph
from src.model.loss import InfoNCELoss
from src.model.module import RetrievalModule
from tests.gpu import GPU
from tests.model.test_gradcache import CHUNK, PASSAGES, QUERIES, assert_same_grads, grads, make_batch

pytestmark = GPU


def cuda_encoder(tiny_dir: Path, train: bool) -> tuple[BiEncoder, dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """The tiny encoder on CUDA (dropout on when training) and its padded batch there."""
    enc = BiEncoder(str(tiny_dir)).cuda()
    enc.train(train)
    q, p = make_batch(enc)
    return enc, {k: v.cuda() for k, v in q.items()}, {k: v.cuda() for k, v in p.items()}


def test_gradcache_equals_plain_step_fp32(tiny_dir: Path, exact_fp32: None) -> None:
    """Dropout off, float32: the cached step (chunks of 4) gives the uncached step's loss and gradients."""
    enc, q, p = cuda_encoder(tiny_dir, train=False)
    results = []
    for cached in (False, True):
        module = RetrievalModule(enc, InfoNCELoss(0.05), torch.optim.AdamW, cached_negatives=cached,
                                 cache_chunk_size=CHUNK)
        loss = module.contrastive_loss(q, p, len(PASSAGES))
        module.backward(loss)
        results.append((loss.item(), grads(enc)))
    (ref_loss, ref), (loss, got) = results
    assert loss == pytest.approx(ref_loss, rel=1e-5)
    assert_same_grads(got, ref)


def test_gradcache_replays_dropout_and_bf16(tiny_dir: Path) -> None:
    """Dropout on, bf16 autocast, backward outside autocast (as Lightning runs it): equal to the chunks with graph.

    Pass 2 must replay each chunk's CUDA RNG state (dropout masks) and pass 1's autocast.
    """
    enc, q, p = cuda_encoder(tiny_dir, train=True)
    loss_fn, n_pos = InfoNCELoss(0.05), len(PASSAGES)

    torch.manual_seed(7)
    # No weight-cast cache: pass 2 enters autocast per chunk, so the chunks' bf16 gradients are widened one by one.
    with torch.autocast("cuda", dtype=torch.bfloat16, cache_enabled=False):
        embs = [torch.cat([enc(**{k: v[s] for k, v in side.items()})
                           for s in chunk_slices(next(iter(side.values())).shape[0], CHUNK)]) for side in (q, p)]
        ref_loss = loss_fn(embs[0], embs[1][:n_pos], embs[1][n_pos:])
    ref_loss.backward()
    ref = grads(enc)

    torch.manual_seed(7)
    with torch.autocast("cuda", dtype=torch.bfloat16):
        sides = [embed_without_graph(enc, side, CHUNK) for side in (q, p)]
        cq, cp = (s.embeddings for s in sides)
        loss = loss_fn(cq, cp[:n_pos], cp[n_pos:])
    loss.backward()
    torch.manual_seed(12345)  # pass 2 must not depend on the global RNG stream
    backward_through_chunks(enc, sides)
    assert loss.item() == pytest.approx(ref_loss.item(), rel=1e-6)
    assert_same_grads(grads(enc), ref, rtol=1e-3, atol=1e-5)  # float32 sums over chunks in another order
    assert len(QUERIES) > CHUNK  # more than one chunk per side, or there would be nothing to replay


def test_grid_on_cuda_equals_cpu(real_data: Path, exact_fp32: None) -> None:
    """All of XQuAD-R (121 pairs + pooled) encoded on CUDA ranks like on the CPU: every mAP within 1e-4."""
    from bench.common import compose, eval_sets
    from src.data.sets import load_training_pairs
    from src.evaluation.driver import evaluate_sets
    from src.model.encoder import build_encoder

    overrides = ["model=tiny", "data=mlqa_r_to_xquad_r", f"paths.data_dir={real_data.parent}"]
    cfg = compose(overrides)
    pairs = load_training_pairs(cfg.data.train, cfg.seed)
    enc = build_encoder(cfg.model, texts=pairs.queries + pairs.passages)
    sets = eval_sets(overrides)
    cpu, _, _ = evaluate_sets(enc, sets, batch_size=cfg.eval.batch_size, precision="32-true")
    cuda, _, _ = evaluate_sets(enc.cuda(), sets, batch_size=cfg.eval.batch_size, precision="32-true")
    keys = [k for k in cpu if "/map" in k]
    assert len(keys) > 121  # macro, per-language and per-pair values
    worst = max(keys, key=lambda k: abs(cuda[k] - cpu[k]))
    assert abs(cuda[worst] - cpu[worst]) <= 1e-4, (worst, cpu[worst], cuda[worst])
    assert cuda["xquad_r/multi/rank_distance"] == pytest.approx(cpu["xquad_r/multi/rank_distance"], rel=1e-3)
