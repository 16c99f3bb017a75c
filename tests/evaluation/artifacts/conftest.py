"""The three-language LAReQA fixture every artifact test writes files of."""

from __future__ import annotations

from pathlib import Path

import pytest

from src.data.lareqa import LareqaDataset, load_lareqa
from tests.evaluation.artifacts.helpers import LANGS


@pytest.fixture
def ds(lareqa_dir: Path) -> LareqaDataset:
    return load_lareqa(lareqa_dir, LANGS)
