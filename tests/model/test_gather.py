"""Global negatives under DDP: 2 gloo processes give the loss and gradients of one process on the whole batch.

Each rank holds a shard of queries/positives and a different number of hard negatives (padding path).
The model is wrapped in real `DistributedDataParallel`, so DDP's gradient averaging is part of what is
checked; the GradCache variant also checks the re-armed all-reduce across chunks of unequal count.
"""

from __future__ import annotations

import math
import tempfile
import time
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn

from src.model.distributed import gather_rows, world
from src.model.gradcache import backward_through_chunks, embed_without_graph
from src.model.loss import InfoNCELoss, info_nce

WORLD = 2
DIM_IN, DIM_OUT = 8, 4
N_QUERIES = 6  # 3 per rank
N_NEGATIVES = (2, 1)  # hard negatives held by rank 0 and rank 1


def make_model() -> nn.Module:
    """Same weights in every process."""
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(DIM_IN, 16), nn.Tanh(), nn.Linear(16, DIM_OUT))


def make_data() -> tuple[torch.Tensor, torch.Tensor, list[torch.Tensor]]:
    """Global queries, positives (row-aligned) and each rank's hard negatives."""
    g = torch.Generator().manual_seed(1)
    q = torch.randn(N_QUERIES, DIM_IN, generator=g)
    p = q + 0.5 * torch.randn(N_QUERIES, DIM_IN, generator=g)  # correlated, so the loss is informative
    negs = [torch.randn(k, DIM_IN, generator=g) for k in N_NEGATIVES]
    return q, p, negs


class Embed(nn.Module):
    """Encoder stand-in with the bi-encoder's output contract: float32, L2-normalised."""

    def __init__(self) -> None:
        super().__init__()
        self.net = make_model()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.normalize(self.net(x).float(), dim=-1)


class Step(nn.Module):
    """What Lightning's DDP wrapper runs in forward: the training step, returning the loss."""

    def __init__(self, in_batch_positives: bool, gather: bool, chunk: int | None) -> None:
        super().__init__()
        self.embed = Embed()
        self.loss = InfoNCELoss(0.1, in_batch_positives)
        self.gather, self.chunk = gather, chunk
        self.sides: list = []

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.embed(x)

    def forward(self, q: torch.Tensor, p: torch.Tensor, n: torch.Tensor) -> torch.Tensor:
        if self.chunk is None:
            eq, ep, en = self.embed(q), self.embed(p), self.embed(n)
        else:
            self.sides = [embed_without_graph(self.encode, {"x": t}, self.chunk) for t in (q, torch.cat([p, n]))]
            eq, epn = (s.embeddings for s in self.sides)
            ep, en = epn[: len(p)], epn[len(p):]
        return self.loss(eq, ep, en, gather=self.gather)


SCENARIOS = {  # name: (in_batch_positives, gather, GradCache chunk rows, bf16 autocast)
    "fp32": (True, True, None, False),
    "fp32_own_positive_only": (False, True, None, False),
    "gradcache": (True, True, 2, False),
    "bf16": (True, True, None, True),
    "no_gather": (True, False, None, False),
}


def _run_scenario(rank: int, in_batch_positives: bool, gather: bool, chunk: int | None, bf16: bool) -> dict:
    """Forward this rank's shard through DDP, backward; return its loss and (DDP-averaged) gradients."""
    step = Step(in_batch_positives, gather, chunk)
    ddp = nn.parallel.DistributedDataParallel(step)
    q, p, negs = make_data()
    half = N_QUERIES // WORLD
    rows = slice(rank * half, (rank + 1) * half)
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        loss = ddp(q[rows], p[rows], negs[rank])
        loss.backward()
        if chunk is not None:  # GradCache pass 2, re-arming DDP's all-reduce as RetrievalModule does
            from lightning.pytorch.overrides.distributed import prepare_for_backward

            backward_through_chunks(step.encode, step.sides, before_last=lambda out: prepare_for_backward(ddp, out))
    return {"loss": loss.detach(), "grads": {k: v.grad for k, v in step.named_parameters()}}


def _worker(rank: int, init_file: str, out_dir: str) -> None:
    """One DDP rank: every scenario in turn, results saved for the test process."""
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=WORLD)
    try:
        out = {name: _run_scenario(rank, *args) for name, args in SCENARIOS.items()}
        torch.save(out, Path(out_dir) / f"rank{rank}.pt")
    finally:
        dist.destroy_process_group()


@pytest.fixture(scope="module")
def ddp_results() -> dict[str, list[dict]]:
    """Spawn the 2 gloo ranks once (a deadline turns a hang into a failure); results per scenario."""
    with tempfile.TemporaryDirectory() as tmp:
        ctx = mp.start_processes(_worker, args=(str(Path(tmp) / "pg_init"), tmp), nprocs=WORLD, join=False,
                                 start_method="spawn")
        deadline = time.monotonic() + 300
        while not ctx.join(timeout=5):
            if time.monotonic() > deadline:
                for proc in ctx.processes:
                    proc.kill()
                pytest.fail("the 2-process gloo run did not finish within 300 s")
        ranks = [torch.load(Path(tmp) / f"rank{r}.pt") for r in range(WORLD)]
    return {name: [r[name] for r in ranks] for name in SCENARIOS}


def reference(in_batch_positives: bool = True, bf16: bool = False) -> tuple[torch.Tensor, dict]:
    """One process, the concatenated batch, the plain mean InfoNCE."""
    embed = Embed()
    q, p, negs = make_data()
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        loss = InfoNCELoss(0.1, in_batch_positives)(embed(q), embed(p), embed(torch.cat(negs)))
        loss.backward()
    return loss.detach(), {f"embed.{k}": v.grad for k, v in embed.named_parameters()}


def assert_matches(ranks: list[dict], ref_loss: torch.Tensor, ref_grads: dict, rtol: float, atol: float,
                   bf16: bool = False) -> None:
    """The ranks' mean loss is the global loss; every rank holds the single-process gradients.

    In bf16 the two computations sum different partial products in 8-bit mantissas, so single elements may
    be off by a few bf16 ulps; the gradient tensors are compared by relative norm instead.
    """
    mean_loss = torch.stack([r["loss"] for r in ranks]).mean()
    torch.testing.assert_close(mean_loss, ref_loss, rtol=rtol, atol=atol)
    for r in ranks:
        assert r["grads"].keys() == ref_grads.keys()
        for k, g in ref_grads.items():
            if bf16:
                assert ((r["grads"][k] - g).norm() / g.norm()).item() < rtol, k
            else:
                torch.testing.assert_close(r["grads"][k], g, rtol=rtol, atol=atol, msg=lambda m, k=k: f"{k}: {m}")


@pytest.mark.parametrize("name, in_batch_positives", [("fp32", True), ("fp32_own_positive_only", False)])
def test_gathered_loss_and_gradients_equal_single_process_fp32(
    ddp_results: dict, name: str, in_batch_positives: bool
) -> None:
    assert_matches(ddp_results[name], *reference(in_batch_positives), rtol=1e-5, atol=1e-6)


def test_gathered_with_gradcache_equal_single_process(ddp_results: dict) -> None:
    # chunk 2: rank 0 embeds 3 queries + 5 passages in 2 + 3 chunks, rank 1 3 + 4 in 2 + 2 chunks.
    assert_matches(ddp_results["gradcache"], *reference(), rtol=1e-5, atol=1e-6)


def test_gathered_equal_single_process_bf16_autocast(ddp_results: dict) -> None:
    assert_matches(ddp_results["bf16"], *reference(bf16=True), rtol=2e-2, atol=2e-3, bf16=True)


def test_without_gather_the_gradients_differ(ddp_results: dict) -> None:
    """Control: local negatives only is a different objective, so the comparisons above can fail."""
    _, ref_grads = reference()
    diff = max((ddp_results["no_gather"][0]["grads"][k] - g).abs().max().item() for k, g in ref_grads.items())
    assert diff > 1e-3


def test_single_process_gather_is_identity_and_offset_loss_splits() -> None:
    assert world() == (1, 0)
    x = torch.randn(3, 4)
    got = gather_rows(x)
    assert got.rows is x and got.offset == 0 and got.counts == (3,)
    q, p, n = torch.randn(4, 5), torch.randn(4, 5), torch.randn(2, 5)
    whole = info_nce(q, p, n, 0.1)
    parts = info_nce(q[:1], p, n, 0.1, positive_offset=0, reduction="sum") + info_nce(
        q[1:], p, n, 0.1, positive_offset=1, reduction="sum")
    assert math.isclose(parts.item() / 4, whole.item(), rel_tol=1e-6)
    with pytest.raises(ValueError, match="do not align"):
        info_nce(q[1:], p, n, 0.1, positive_offset=2)
