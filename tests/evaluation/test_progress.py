"""Encoding progress: the ETA line is exact, and log lines are throttled to one per interval."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from src.evaluation.progress import LogProgress, duration, progress, progress_line


def test_duration() -> None:
    assert [duration(s) for s in (0, 41.6, 60, 187, 3725)] == ["0s", "42s", "1m00s", "3m07s", "1h02m"]


def test_progress_line_eta_from_mean_rate() -> None:
    # 3,200 of 26,104 in 40 s: 80 texts/s, 22,904 left -> 286.3 s
    assert progress_line("encoding xquad_r", 3200, 26104, 40.0) == \
        "encoding xquad_r: 3,200/26,104 (12%) · 40s elapsed · ETA 4m46s"
    assert progress_line("x", 0, 10, 0.0).endswith("ETA —")


def test_log_progress_is_throttled() -> None:
    now = [0.0]
    out = io.StringIO()
    log = LogProgress("enc", total=1000, interval_s=30.0, out=out, clock=lambda: now[0])
    for _ in range(100):  # 10 texts per second for 100 s: lines at 30, 60, 90 s, then the final one
        now[0] += 1.0
        log.advance(10)
    log.close()
    lines = out.getvalue().splitlines()
    assert lines == [
        "enc: 300/1,000 (30%) · 30s elapsed · ETA 1m10s",
        "enc: 600/1,000 (60%) · 1m00s elapsed · ETA 40s",
        "enc: 900/1,000 (90%) · 1m30s elapsed · ETA 10s",
        "enc: 1,000/1,000 (100%) · 1m40s elapsed · ETA 0s",
    ]


def test_non_terminal_console_gets_log_lines(capsys: pytest.CaptureFixture[str]) -> None:
    with progress("encoding t", 5, Console(file=io.StringIO(), force_terminal=False)) as advance:
        advance(5)
    assert "encoding t: 5/5 (100%)" in capsys.readouterr().err
