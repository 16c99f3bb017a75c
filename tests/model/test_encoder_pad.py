"""BiEncoder.pad: the vectorised scatter gives exactly the hand-padded tensors."""

from __future__ import annotations

from types import SimpleNamespace

import torch

from src.model.encoder import BiEncoder


def _pad(features: dict[str, list[list[int]]], pad_id: int = 7, multiple: int = 1) -> dict[str, torch.Tensor]:
    owner = SimpleNamespace(tokenizer=SimpleNamespace(pad_token_id=pad_id), pad_to_multiple_of=multiple)
    return BiEncoder.pad(owner, features)  # type: ignore[arg-type]  # pad only reads the pad id and multiple


def test_rows_of_different_lengths_with_token_types() -> None:
    out = _pad({"input_ids": [[1, 2, 3], [4], [5, 6]], "token_type_ids": [[0, 0, 1], [0], [1, 1]]})
    assert out["input_ids"].tolist() == [[1, 2, 3], [4, 7, 7], [5, 6, 7]]
    assert out["attention_mask"].tolist() == [[1, 1, 1], [1, 0, 0], [1, 1, 0]]
    assert out["token_type_ids"].tolist() == [[0, 0, 1], [0, 0, 0], [1, 1, 0]]
    assert all(t.dtype == torch.long for t in out.values())


def test_no_token_types_and_pad_id_none_falls_back_to_zero() -> None:
    out = _pad({"input_ids": [[9, 9], [3]]}, pad_id=None)  # type: ignore[arg-type]
    assert set(out) == {"input_ids", "attention_mask"}
    assert out["input_ids"].tolist() == [[9, 9], [3, 0]]


def test_empty_rows_and_empty_batch_keep_width_one() -> None:
    out = _pad({"input_ids": [[], [2]]})
    assert out["input_ids"].tolist() == [[7], [2]] and out["attention_mask"].tolist() == [[0], [1]]
    empty = _pad({"input_ids": []})
    assert tuple(empty["input_ids"].shape) == (0, 1)


def test_width_rounded_up_to_the_multiple() -> None:
    out = _pad({"input_ids": [[1, 2, 3], [4]]}, multiple=4)
    assert out["input_ids"].tolist() == [[1, 2, 3, 7], [4, 7, 7, 7]]
    assert out["attention_mask"].tolist() == [[1, 1, 1, 0], [1, 0, 0, 0]]
    assert _pad({"input_ids": [[1] * 8]}, multiple=4)["input_ids"].shape == (1, 8)  # already a multiple
    assert _pad({"input_ids": [[1] * 9]}, multiple=8)["input_ids"].shape == (1, 16)
