"""The exported model's card: the run's settings, its zero-shot table and how to load it."""

from __future__ import annotations

from pathlib import Path

from hydra import compose, initialize_config_dir

from src.core.config import validate
from src.model.card import ModelCard

ROOT = Path(__file__).resolve().parents[2]


def test_card_from_config_lists_the_run_and_its_metrics(tmp_path: Path) -> None:
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = compose("config", overrides=["sampling=hybrid", "sampling.alpha=0.3", "seed=7", "paths.output_dir=."])
    metrics = {"xquad_r/mono/map": 0.8, "xquad_r/cross/map": 0.7, "xquad_r/multi/map": 0.59,
               "xquad_r/multi/r1": 0.5, "xquad_r/multi/rank_distance": 330.25, "train/loss": 1.0}
    s = validate(cfg)  # the typed sections src.run passes
    path = ModelCard.of_training(s.model, s.sampling, s.data, s.seed, metrics, steps=150, run_id="abc123").write(tmp_path)
    text = path.read_text()
    assert path.name == "README.md" and text.startswith("---\nlibrary_name: sentence-transformers\n")
    assert "language: [ar, de, en, es, hi, vi, zh]" in text
    for fact in ("`me5_small_bundled`", "`hybrid`, α = 0.3", "| seed | 7 |", "| training set | mlqa_r (",
                 "150 × 32", '`"query: "`', "runs:/abc123/model"):
        assert fact in text, fact
    assert "| xquad_r / multi | 0.5900 | 0.5000 | nan | nan | nan | 330.2 |" in text
    assert "| xquad_r / mono | 0.8000 |" in text and "train/loss" not in text
    # Without evaluation the card says so instead of an empty table; without a run, no MLflow line.
    bare = ModelCard.of_training(s.model, s.sampling, s.data, s.seed, {}, steps=0).render()
    assert "No zero-shot evaluation" in bare and "runs:/" not in bare
