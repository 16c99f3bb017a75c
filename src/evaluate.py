"""Evaluate a model zero-shot on every set of `data.eval` (dispatched by kind), or add sets to a finished sweep.

    python -m src.evaluate model=me5_small_bundled data=xquad_r
    python -m src.evaluate ckpt_path=outputs/.../checkpoints/last.ckpt data=domain_shift
    python -m src.evaluate jobs=multirun/study data=domain_shift    # every finished job, into its own run

The steps are the methods of src/recipes/evaluate.py's EvaluateRecipe (one model) and
src/recipes/evaluate_jobs.py's EvaluateJobsRecipe (`jobs=`); this module is the command line.
"""

from __future__ import annotations

from typing import Any

import hydra
from omegaconf import DictConfig


def evaluate(cfg: DictConfig) -> dict[str, Any]:
    """One evaluation run of the composed config (or, with `jobs=`, one pass over a sweep's jobs)."""
    from src.recipes.evaluate import EvaluateRecipe
    from src.recipes.evaluate_jobs import EvaluateJobsRecipe

    return (EvaluateJobsRecipe(cfg) if cfg.get("jobs") is not None else EvaluateRecipe(cfg)).run()


# Hydra composes conf/evaluate.yaml with the command line's overrides and calls `evaluate`.
main = hydra.main(version_base="1.3", config_path="../conf", config_name="evaluate")(evaluate)


if __name__ == "__main__":
    main()
