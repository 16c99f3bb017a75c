"""plan_run decides how a run starts and returns its folder and config; the composed config is left unchanged."""

from __future__ import annotations

from pathlib import Path

from omegaconf import OmegaConf

from src.runs.plan import job_action, plan_run
from src.runs.record import RunRecord, config_fingerprint
from tests.core.test_config import make_cfg


def _fingerprint(cfg) -> str:
    return config_fingerprint(OmegaConf.to_container(cfg, resolve=True), str(cfg.paths.output_dir))


def test_a_fresh_run_writes_where_it_was_configured(tmp_path: Path) -> None:
    cfg = make_cfg(f"paths.output_dir={tmp_path / 'new'}", f"paths.root_dir={tmp_path}")
    plan = plan_run(cfg)
    assert (plan.action, plan.run_dir, plan.checkpoint, plan.previous) == ("fresh", str(tmp_path / "new"), None, None)
    assert plan.config is cfg and plan.fingerprint == _fingerprint(cfg)


def test_resume_returns_the_earlier_folder_and_leaves_the_composed_config_alone(tmp_path: Path) -> None:
    earlier = tmp_path / "outputs" / "earlier"
    cfg = make_cfg(f"paths.output_dir={tmp_path / 'outputs' / 'new'}", f"paths.root_dir={tmp_path}", "ckpt_path=last")
    RunRecord(str(earlier), _fingerprint(cfg), "run-1", "sqlite:///x.db", "xlir").write()
    (earlier / "checkpoints").mkdir()
    (earlier / "checkpoints" / "last.ckpt").write_bytes(b"ckpt")
    before = OmegaConf.to_yaml(cfg)

    plan = plan_run(cfg)

    assert plan.action == "resume" and plan.previous is not None and plan.previous.mlflow_run_id == "run-1"
    assert plan.checkpoint == str(earlier / "checkpoints" / "last.ckpt") and plan.run_dir == str(earlier)
    # What the run instantiates from writes into the earlier folder; the composed config is as Hydra made it.
    assert plan.config.paths.output_dir == str(earlier)
    assert plan.config.callbacks.model_checkpoint.dirpath == f"{earlier}/checkpoints"
    assert OmegaConf.to_yaml(cfg) == before and cfg.paths.output_dir == str(tmp_path / "outputs" / "new")


def test_job_action() -> None:
    assert job_action("FINISHED", has_metrics=True, has_checkpoint=True) == "skip"
    assert job_action("KILLED", has_metrics=False, has_checkpoint=True) == "resume"
    assert job_action("FAILED", has_metrics=False, has_checkpoint=True) == "rerun"
