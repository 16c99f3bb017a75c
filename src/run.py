"""Train a multilingual bi-encoder with X-X / X-Y / hybrid batches, evaluate zero-shot, log to MLflow.

    python -m src.run sampling=hybrid model=labse
    python -m src.run -m sampling=xx,xy,hybrid seed=1,2,3

The steps are the methods of src/recipes/train.py's TrainRecipe; this module is the command line.
"""

from __future__ import annotations

from typing import Any

import hydra
from omegaconf import DictConfig

from src.recipes.train import TrainRecipe


def train(cfg: DictConfig) -> dict[str, Any]:
    """One training run of the composed config; returns its final metrics."""
    return TrainRecipe(cfg).run()


# Hydra composes conf/config.yaml with the command line's overrides and calls `train`.
main = hydra.main(version_base="1.3", config_path="../conf", config_name="config")(train)


if __name__ == "__main__":
    main()
