"""A run resumed from any step's checkpoint continues exactly like the uninterrupted run: the same batches from
each language sampler and the same losses (dropout draws from torch's global RNG) at the same logged steps.

In process and without a model: the real `LanguageBatchSampler` and `PairDataModule.state_dict` /
`load_state_dict`, `ResumeStateCallback`, and a module whose loss goes through dropout. Validation every
VAL_EVERY steps and an epoch of BATCHES_PER_EPOCH batches, so checkpoints land before a validation, at an
epoch's last batch and in between.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
from lightning.pytorch import LightningDataModule, LightningModule, Trainer
from lightning.pytorch.callbacks import ModelCheckpoint
from torch.utils.data import DataLoader

from src.data.datamodule import PairDataModule
from src.data.samplers import LanguageBatchSampler
from src.training.checkpoints import VALIDATION_OWED_KEY, ResumeStateCallback
from tests.data.test_samplers import TABLE, structure

pytestmark = pytest.mark.reliability

STEPS, VAL_EVERY, BATCHES_PER_EPOCH = 12, 4, 5
# Checkpoint steps: before a validation (owed), an epoch's last batch, a plain step.
RESUME_AT = {"validation": 4, "epoch_end": 5, "plain": 6}


class _SamplerData(PairDataModule):
    """`PairDataModule` (its train loader and sampler state) over pair indices, without texts or tokenizer."""

    def __init__(self, sampler: LanguageBatchSampler) -> None:
        LightningDataModule.__init__(self)
        self.batch_sampler, self.pairs, self.num_workers = sampler, range(len(TABLE[0])), 0

    def setup(self, stage: str | None = None) -> None:
        pass

    def collate(self, indices: list[int]) -> torch.Tensor:
        return torch.as_tensor(indices)

    def transfer_batch_to_device(self, batch: Any, device: torch.device, dataloader_idx: int) -> Any:
        return batch.to(device)

    def val_dataloader(self) -> DataLoader:
        # Like the real validation loader: a fresh DataLoader iterator at every validation
        return DataLoader(torch.arange(32), batch_size=8)


class _DropoutModule(LightningModule):
    """Embeds the batch's pair indices through dropout; records each step's batch, loss and logging step."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.embed = torch.nn.Embedding(len(TABLE[0]), 8)
        self.dropout = torch.nn.Dropout(0.5)
        self.head = torch.nn.Linear(8, 1)
        self.steps: dict[int, tuple[list[int], float, int]] = {}

    def training_step(self, batch: torch.Tensor, batch_idx: int) -> torch.Tensor:
        loss = self.head(self.dropout(self.embed(batch))).pow(2).mean()
        # the step a logger records this step's metrics under (train/loss in MLflow)
        logged_at = self.trainer.fit_loop.epoch_loop._batches_that_stepped
        self.steps[self.global_step] = (batch.tolist(), loss.item(), logged_at)
        return loss

    def validation_step(self, batch: torch.Tensor, batch_idx: int) -> None:
        self.log("val/loss", self.head(self.embed(batch)).pow(2).mean())

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.1)


def _fit(folder: Path, kind: str, ckpt: str | None = None) -> _DropoutModule:
    """STEPS steps with a checkpoint after every step (`step=N.ckpt`), from `ckpt` if given."""
    q, p, x = TABLE
    sampler = LanguageBatchSampler(structure(kind), q, p, x, batch_size=4, seed=7,
                                   batches_per_epoch=BATCHES_PER_EPOCH)
    module = _DropoutModule()
    every_step = ModelCheckpoint(dirpath=folder, filename="{step}", save_top_k=-1, every_n_train_steps=1)
    trainer = Trainer(max_steps=STEPS, val_check_interval=VAL_EVERY, check_val_every_n_epoch=None, logger=False,
                      callbacks=[every_step, ResumeStateCallback()], use_distributed_sampler=False,
                      enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=0,
                      accelerator="cpu", devices=1)
    trainer.fit(module, datamodule=_SamplerData(sampler), ckpt_path=ckpt)
    assert trainer.global_step == STEPS
    return module


@pytest.fixture(scope="module", params=["xx", "xy", "hybrid"])
def reference(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path, Any]:
    """(sampler, checkpoint folder, steps) of one uninterrupted run per sampler."""
    folder = tmp_path_factory.mktemp(f"ref-{request.param}")
    return request.param, folder, _fit(folder, request.param).steps


@pytest.mark.parametrize("where", list(RESUME_AT))
def test_resume_from_any_step_continues_the_uninterrupted_run(reference: tuple[str, Path, Any], where: str,
                                                               tmp_path: Path) -> None:
    kind, folder, steps = reference
    k = RESUME_AT[where]
    assert sorted(steps) == list(range(STEPS))
    assert len({loss for _, loss, _ in steps.values()}) == STEPS  # dropout makes every loss its own
    ckpt = folder / f"step={k}.ckpt"
    saved = torch.load(ckpt, map_location="cpu", weights_only=False)
    assert saved[_SamplerData.__qualname__]["sampler"]["batches_yielded"] == (k - 1) % BATCHES_PER_EPOCH + 1
    assert (saved.get(VALIDATION_OWED_KEY) == k) == (where == "validation")
    resumed = _fit(tmp_path, kind, ckpt=str(ckpt)).steps
    assert resumed == {s: steps[s] for s in range(k, STEPS)}
