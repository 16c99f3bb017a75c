"""A run folder's record (`xlir_run.json`) and the config fingerprint: what a continued run looks up.

Every training run writes `xlir_run.json` into its run folder: the MLflow run id, tracking URI, experiment and
a fingerprint of the config. `ckpt_path=last` (or `resume=true`) picks the newest `checkpoints/last.ckpt` of a
run with the same fingerprint; the resumed run then writes into that folder and reopens that MLflow run.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

RECORD_FILE = "xlir_run.json"
# Keys that say how or where a run is executed or shown, not what it computes: they may differ on resume.
VOLATILE_KEYS = ("ckpt_path", "resume", "hydra", "console")


@dataclass(frozen=True)
class RunRecord:
    """What a resumed run needs to find its predecessor's folder and MLflow run."""

    run_dir: str
    fingerprint: str
    mlflow_run_id: str
    tracking_uri: str
    experiment_name: str

    def write(self) -> Path:
        """Write next to the checkpoints (atomically: a kill must not leave half a file)."""
        path = Path(self.run_dir) / RECORD_FILE
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(self), indent=2))
        os.replace(tmp, path)
        return path

    @classmethod
    def read(cls, run_dir: str | Path) -> RunRecord | None:
        """The record of a run folder, or None when it has none (or an unreadable one)."""
        path = Path(run_dir) / RECORD_FILE
        try:
            return cls(**json.loads(path.read_text()))
        except (OSError, ValueError, TypeError):
            return None


def normalised_config(config: Any, output_dir: str) -> Any:
    """The resolved config as fingerprints compare it: volatile keys dropped, the run folder's path abstracted."""
    if isinstance(config, Mapping):
        return {k: normalised_config(v, output_dir) for k, v in sorted(config.items()) if k not in VOLATILE_KEYS}
    if isinstance(config, list):
        return [normalised_config(v, output_dir) for v in config]
    if isinstance(config, str) and output_dir:
        return config.replace(output_dir, "${paths.output_dir}")
    return config


def config_fingerprint(config: Mapping[str, Any], output_dir: str) -> str:
    """SHA-256 of the resolved config without volatile keys; the run folder's path is abstracted away."""
    normalised = normalised_config(config, output_dir)
    return hashlib.sha256(json.dumps(normalised, sort_keys=True, default=str).encode()).hexdigest()[:16]


def config_changes(old: Any, new: Any, old_dir: str = "", new_dir: str = "") -> list[str]:
    """Dotted keys whose values differ between two resolved configs as their fingerprints see them, sorted."""
    return _differences(normalised_config(old, old_dir), normalised_config(new, new_dir))


def _differences(old: Any, new: Any, prefix: str = "") -> list[str]:
    """Dotted keys whose values differ between two nested mappings."""
    if isinstance(old, Mapping) and isinstance(new, Mapping):
        found: list[str] = []
        for k in sorted(set(old) | set(new), key=str):
            found += _differences(old.get(k, "<absent>"), new.get(k, "<absent>"), f"{prefix}{k}.")
        return found
    return [] if old == new else [prefix.rstrip(".")]


def last_checkpoint(run_dir: str | Path) -> Path | None:
    """The run's newest resumable checkpoint: `last.ckpt`, a versioned `last-vN.ckpt` or a SLURM `hpc_ckpt_*.ckpt`.

    Lightning writes `last-v1.ckpt` when a `last.ckpt` it did not write is in its way (runs interrupted before
    src.training.checkpoints.claim_last_checkpoint existed): the newest file is the state to resume from.
    """
    root = Path(run_dir)
    candidates = [root / "checkpoints" / "last.ckpt", *(root / "checkpoints").glob("last-v*.ckpt"),
                  *root.glob("hpc_ckpt_*.ckpt")]
    found = [p for p in candidates if p.is_file()]
    return max(found, key=lambda p: p.stat().st_mtime) if found else None


def find_last(fingerprint: str, roots: Iterable[str | Path]) -> tuple[RunRecord, Path] | None:
    """Newest (record, checkpoint) among run folders under `roots` whose config fingerprint matches."""
    best: tuple[float, RunRecord, Path] | None = None
    seen: set[Path] = set()
    for root in roots:
        root = Path(root)
        if not root.is_dir():
            continue
        for path in [root / RECORD_FILE, *root.rglob(RECORD_FILE)]:
            folder = path.parent.resolve()
            if folder in seen or not path.is_file():
                continue
            seen.add(folder)
            record = RunRecord.read(folder)
            ckpt = last_checkpoint(folder) if record and record.fingerprint == fingerprint else None
            if record and ckpt and (best is None or ckpt.stat().st_mtime > best[0]):
                best = (ckpt.stat().st_mtime, record, ckpt)
    return (best[1], best[2]) if best else None


def search_roots(output_dir: str | Path, root_dir: str | Path) -> list[Path]:
    """Where `ckpt_path=last` looks: this run's folder and its parent, then the project's outputs/ and multirun/."""
    out = Path(output_dir)
    return [out, out.parent, Path(root_dir) / "outputs", Path(root_dir) / "multirun"]


def resolve(
    ckpt_path: str | None, resume: bool, fingerprint: str, output_dir: str | Path, root_dir: str | Path
) -> tuple[str | None, RunRecord | None]:
    """(checkpoint for `trainer.fit`, record of the run it continues) from `ckpt_path` / `resume` / a requeue.

    A SLURM requeue (`SLURM_RESTART_COUNT` > 0) reruns the same job in the same folder: it resumes from that
    folder's newest checkpoint by itself. An explicit checkpoint file continues its MLflow run only when its
    run's config fingerprint matches (otherwise it is a warm start and gets a new run).
    """
    from src.core.config import ConfigError

    if ckpt_path == "last" or resume:
        found = find_last(fingerprint, search_roots(output_dir, root_dir))
        if found is None:
            raise ConfigError(
                f"ckpt_path=last: no checkpoints/last.ckpt of a run with this config (fingerprint {fingerprint}) "
                f"under {[str(r) for r in search_roots(output_dir, root_dir)]}; expected an interrupted run of the "
                "same config. Start without ckpt_path/resume, or pass ckpt_path=/path/to/file.ckpt"
            )
        record, ckpt = found
        return str(ckpt), record
    if ckpt_path is None:
        record = RunRecord.read(output_dir)
        requeued = int(os.environ.get("SLURM_RESTART_COUNT", "0") or 0) > 0
        ckpt = last_checkpoint(output_dir) if requeued and record and record.fingerprint == fingerprint else None
        return (str(ckpt), record) if ckpt else (None, None)
    path = Path(ckpt_path)
    if not path.is_file():
        raise ConfigError(f"ckpt_path={ckpt_path!r}: expected an existing checkpoint file or 'last'")
    record = RunRecord.read(path.parent.parent)
    return str(path), record if record and record.fingerprint == fingerprint else None
