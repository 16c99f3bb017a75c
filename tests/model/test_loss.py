"""InfoNCE against a hand-computed example."""

from __future__ import annotations

import math

import pytest
import torch

from src.core.config import ConfigError, validate
from src.model.loss import InfoNCELoss, info_nce
from tests.core.test_config import make_cfg


def test_info_nce_hand_computed() -> None:
    q = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    p = torch.tensor([[1.0, 0.0], [0.6, 0.8]])
    n = torch.tensor([[0.0, -1.0]])
    t = 0.5
    # query 0 scores: p0=1, p1=0.6, n=0 ; query 1: p0=0, p1=0.8, n=-1
    l0 = -math.log(math.exp(1 / t) / (math.exp(1 / t) + math.exp(0.6 / t) + math.exp(0 / t)))
    l1 = -math.log(math.exp(0.8 / t) / (math.exp(0 / t) + math.exp(0.8 / t) + math.exp(-1 / t)))
    assert info_nce(q, p, n, t).item() == pytest.approx((l0 + l1) / 2, rel=1e-6)
    # paper's equation: own positive + every hard negative only
    m0 = -math.log(math.exp(1 / t) / (math.exp(1 / t) + math.exp(0 / t)))
    m1 = -math.log(math.exp(0.8 / t) / (math.exp(0.8 / t) + math.exp(-1 / t)))
    assert info_nce(q, p, n, t, in_batch_positives=False).item() == pytest.approx((m0 + m1) / 2, rel=1e-6)
    # without hard negatives
    k0 = -math.log(math.exp(1 / t) / (math.exp(1 / t) + math.exp(0.6 / t)))
    k1 = -math.log(math.exp(0.8 / t) / (math.exp(0 / t) + math.exp(0.8 / t)))
    assert InfoNCELoss(t)(q, p).item() == pytest.approx((k0 + k1) / 2, rel=1e-6)


@pytest.mark.parametrize("temperature", ["0", "-0.05", "nan"])
def test_temperature_must_be_positive(temperature: str) -> None:
    # Checked once, by the config schema, naming the key (InfoNCELoss trusts its validated argument).
    with pytest.raises(ConfigError, match=rf"loss\.temperature={temperature}"):
        validate(make_cfg(f"loss.temperature={temperature}"))
