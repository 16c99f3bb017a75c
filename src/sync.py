"""Upload what a run could not log while its tracking server was away.

    python -m src.sync RUN_FOLDER [--tracking-uri URI]

Replays the pending calls of RUN_FOLDER/tracking_journal.jsonl (metrics, params, tags, artifacts, the final
status) in their original order against the run's tracking URI (from xlir_run.json; MLFLOW_TRACKING_URI or
--tracking-uri override it). Safe to run twice: uploaded calls are marked done in the journal.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from src.runs.record import RunRecord
from src.tracking.resilient import JOURNAL_FILE, Journal, replay


def sync(run_dir: str | Path, tracking_uri: str | None = None) -> tuple[int, int]:
    """Replay the pending journal entries of a run folder; returns (uploaded, still pending)."""
    from mlflow.tracking import MlflowClient

    run_dir = Path(run_dir)
    journal_path = run_dir / JOURNAL_FILE
    if not journal_path.is_file():
        raise FileNotFoundError(f"{journal_path}: no tracking journal (expected a run folder of `python -m src.run`)")
    record = RunRecord.read(run_dir)
    uri = tracking_uri or os.environ.get("MLFLOW_TRACKING_URI") or (record.tracking_uri if record else None)
    if not uri:
        raise ValueError(f"{run_dir}: no xlir_run.json with the tracking URI; pass --tracking-uri")
    return replay(Journal(journal_path), MlflowClient(tracking_uri=uri))


def main(argv: list[str] | None = None) -> int:
    """CLI: exit 0 when nothing is left pending."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--tracking-uri", default=None)
    args = parser.parse_args(argv)
    uploaded, left = sync(args.run_dir, args.tracking_uri)
    print(f"{args.run_dir}: uploaded {uploaded} pending tracking calls, {left} still pending")
    return 0 if left == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
