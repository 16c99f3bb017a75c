"""No host synchronisation inside a bf16-mixed training step on CUDA beyond the known, documented ones.

`torch.cuda.set_sync_debug_mode("warn")` reports every call that makes the CPU wait for the GPU (`.item()`,
`bool(tensor)`, blocking copies); each report's Python stack is recorded and keyed by its innermost frame.
Every site found, with counts and a stack, goes to `gpu_syncs.json` (the check's $OUT). 16-mixed is not
checked: GradScaler reads its inf/NaN flag every step by design.
"""

from __future__ import annotations

import fcntl
import json
import traceback
import warnings
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import torch

from src.model.encoder import BiEncoder
from src.model.loss import InfoNCELoss
from src.model.module import RetrievalModule
from tests.gpu import GPU, artifacts_dir
from tests.model.test_gradcache import CHUNK, PASSAGES, make_batch

pytestmark = GPU

REPO = Path(__file__).resolve().parents[2]
STEPS = 3  # checked steps, after one warm-up step (lazy cuBLAS/optimizer initialisation is not a step's cost)
KNOWN_SYNCS = {
    "src/model/module.py:training_step":
        "the non-finite loss guard reads one bool per step, to stop or skip the batch before backward",
    "transformers/masking_utils.py:_ignore_bidirectional_mask_sdpa":
        "transformers reads the padding mask to decide whether SDPA may drop it: one read per encoder forward",
}
LIBRARY_SYNCS = {site for site in KNOWN_SYNCS if not site.startswith("src/")}


def frame_site(frame: traceback.FrameSummary) -> str:
    """`path:function` of a frame: repo-relative, or relative to site-packages for libraries."""
    path = Path(frame.filename)
    try:
        rel = path.resolve().relative_to(REPO).as_posix()
    except ValueError:
        parts = path.parts
        cut = max((i for i, p in enumerate(parts) if p in ("site-packages", "dist-packages")), default=len(parts) - 2)
        rel = "/".join(parts[cut + 1:])
    return f"{rel}:{frame.name}"


@contextmanager
def recorded_syncs() -> Iterator[list[list[str]]]:
    """Inside: the stack (sites, innermost last) of every synchronizing CUDA call is appended to the yielded list."""
    stacks: list[list[str]] = []
    with warnings.catch_warnings():  # restores showwarning and the filters on exit
        warnings.simplefilter("always")
        original = warnings.showwarning

        def show(message: Any, category: Any, filename: str, lineno: int, file: Any = None, line: Any = None) -> None:
            if "synchronizing CUDA operation" not in str(message):
                original(message, category, filename, lineno, file, line)
                return
            frames = [f for f in traceback.extract_stack()[:-1] if not f.filename.endswith("warnings.py")]
            stacks.append([frame_site(f) for f in frames[-10:]])

        warnings.showwarning = show
        torch.cuda.set_sync_debug_mode("warn")
        try:
            yield stacks
        finally:
            torch.cuda.set_sync_debug_mode(0)


def report(name: str, stacks: list[list[str]], steps: int, fallback: Path) -> dict[str, int]:
    """Sync counts per innermost site, also written (with one stack each) to gpu_syncs.json under `name`."""
    counts = Counter(s[-1] for s in stacks)
    path = artifacts_dir(fallback) / "gpu_syncs.json"
    with path.open("a+") as f:  # pytest-xdist workers share the file: read-modify-write under a lock
        fcntl.flock(f, fcntl.LOCK_EX)
        f.seek(0)
        text = f.read()
        saved = json.loads(text) if text.strip() else {}
        saved[name] = {"steps": steps, "sites": [
            {"site": site, "count": n, "known": KNOWN_SYNCS.get(site), "stack": next(s for s in stacks if s[-1] == site)}
            for site, n in counts.most_common()]}
        f.seek(0)
        f.truncate()
        f.write(json.dumps(saved, indent=1) + "\n")
    return dict(counts)


def cuda_module(tiny_dir: Path, cached: bool) -> tuple[RetrievalModule, dict[str, Any]]:
    """A training-mode module on the tiny BERT and one batch in the DataModule's layout (on the CPU)."""
    enc = BiEncoder(str(tiny_dir), freeze_embeddings=True)
    enc.train()
    q, p = make_batch(enc)
    n = len(PASSAGES)
    batch = {"query": q, "passage": p, "n_pos": n, "q_lang": ["en"] * n, "p_lang": ["en"] * n,
             "xling_id": [str(i) for i in range(n)]}
    module = RetrievalModule(enc, InfoNCELoss(0.05), torch.optim.AdamW, cached_negatives=cached, cache_chunk_size=CHUNK)
    return module, batch


@pytest.mark.parametrize("cached", [False, True], ids=["plain", "gradcache"])
def test_compute_path_has_no_sync(tiny_dir: Path, tmp_path: Path, cached: bool) -> None:
    """Forward, InfoNCE, backward (GradCache's two passes), clipping, AdamW: no sync of the project's own."""
    module, batch = cuda_module(tiny_dir, cached)
    module.cuda()
    q, p = ({k: v.cuda() for k, v in batch[side].items()} for side in ("query", "passage"))
    params = [x for x in module.parameters() if x.requires_grad]
    opt = torch.optim.AdamW(params, lr=1e-5)

    def step() -> None:
        with torch.autocast("cuda", dtype=torch.bfloat16):
            loss = module.contrastive_loss(q, p, batch["n_pos"])
        module.backward(loss)  # outside autocast, as Lightning calls it
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)

    step()
    with recorded_syncs() as stacks:
        for _ in range(STEPS):
            step()
    torch.cuda.synchronize()
    counts = report(f"compute_path[{'gradcache' if cached else 'plain'}]", stacks, STEPS, tmp_path)
    unexpected = {site: n for site, n in counts.items() if site not in LIBRARY_SYNCS}
    assert not unexpected, f"host syncs in the compute path (see gpu_syncs.json): {unexpected}"


def test_lightning_step_syncs_only_where_known(tiny_dir: Path, tmp_path: Path) -> None:
    """The whole Lightning step (batch on the GPU to batch end): only the known syncs, the guard once a step."""
    from lightning.pytorch import Callback, Trainer
    from torch.utils.data import DataLoader

    module, batch = cuda_module(tiny_dir, cached=False)

    class Probe(Callback):
        """Records from batch start (the batch is already on the GPU) to batch end, after the first step."""

        def __init__(self) -> None:
            self.stacks: list[list[str]] = []
            self._ctx: Any = None

        def on_train_batch_start(self, trainer: Trainer, *args: Any) -> None:
            if trainer.global_step >= 1:
                self._ctx = recorded_syncs()
                self._live = self._ctx.__enter__()

        def on_train_batch_end(self, trainer: Trainer, *args: Any) -> None:
            if self._ctx is not None:
                self._ctx.__exit__(None, None, None)
                self.stacks += self._live
                self._ctx = None

    probe = Probe()
    trainer = Trainer(accelerator="gpu", devices=1, precision="bf16-mixed", max_steps=1 + STEPS, gradient_clip_val=1.0,
                      logger=False, enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                      callbacks=[probe], default_root_dir=tmp_path)
    trainer.fit(module, DataLoader([batch] * (2 + STEPS), batch_size=None))
    counts = report("lightning_step", probe.stacks, STEPS, tmp_path)
    unexpected = {site: n for site, n in counts.items() if site not in KNOWN_SYNCS}
    assert not unexpected, f"unexpected host syncs in a Lightning step (see gpu_syncs.json): {unexpected}"
    assert counts.get("src/model/module.py:training_step", 0) <= STEPS
