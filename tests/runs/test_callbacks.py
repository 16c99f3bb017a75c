"""build_callbacks hands each callback the resources it declares and switches off those that lack them."""

from __future__ import annotations

from lightning.pytorch.callbacks import ModelCheckpoint

from src.evaluation.callback import RetrievalEvalCallback, ValidationRetrieval
from src.recipes.train import build_callbacks
from tests.core.test_config import make_cfg


def test_declared_resources_are_passed() -> None:
    cfg = make_cfg()
    sets, val = {"xquad_r": object()}, object()
    built = build_callbacks(cfg.callbacks, {"eval_sets": sets, "val_set": val})
    by_type = {type(cb): cb for cb in built}
    assert by_type[RetrievalEvalCallback].datasets == sets
    assert by_type[ValidationRetrieval].dataset is val
    assert by_type[RetrievalEvalCallback].batch_size == cfg.eval.batch_size  # the default comes from conf/
    assert RetrievalEvalCallback.NEEDS == {"datasets": "eval_sets"} and ValidationRetrieval.NEEDS == {"dataset": "val_set"}


def test_without_a_validation_split_the_callbacks_that_need_one_are_off(capsys) -> None:
    cfg = make_cfg("callbacks=early_stopping")
    built = build_callbacks(cfg.callbacks, {"eval_sets": {}, "val_set": None})
    kinds = [type(cb).__name__ for cb in built]
    assert "ValidationRetrieval" not in kinds and "EarlyStopping" not in kinds
    assert [cb.monitor for cb in built if isinstance(cb, ModelCheckpoint)] == [None]  # only the periodic one stays
    out = capsys.readouterr().out
    for key in ("val_retrieval", "best_checkpoint", "early_stopping"):
        assert f"callbacks.{key}: off, there is no validation split" in out
    assert "RetrievalEvalCallback" in kinds  # it needs the evaluation sets, which exist (empty is allowed)
