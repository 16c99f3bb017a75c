"""Encoding progress with an ETA: a live bar on a terminal, throttled plain lines in non-interactive logs."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TextIO

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

LOG_INTERVAL_S = 30.0  # one line per this many seconds in a log file or a pipe (nohup, SLURM, CI)


def duration(seconds: float) -> str:
    """`42s`, `3m07s`, `1h02m`: short enough for a progress line."""
    s = round(seconds)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{s % 3600 // 60:02d}m"


def progress_line(label: str, done: int, total: int, elapsed_s: float) -> str:
    """`encoding xquad_r: 3,200/26,104 (12%) · 41s elapsed · ETA 4m53s` (ETA from the mean rate so far)."""
    share = done / total if total else 1.0
    eta = "—" if done == 0 else duration(elapsed_s * (total - done) / done)
    return f"{label}: {done:,}/{total:,} ({share:.0%}) · {duration(elapsed_s)} elapsed · ETA {eta}"


class LogProgress:
    """Prints a progress line at most every `interval_s` seconds, and once at the end."""

    def __init__(self, label: str, total: int, interval_s: float = LOG_INTERVAL_S, out: TextIO | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.label, self.total, self.interval_s = label, total, interval_s
        self.out = out if out is not None else sys.stderr
        self.clock = clock
        self.done = 0
        self.start = self._last = clock()

    def advance(self, n: int) -> None:
        """Count n more texts; print when the interval has passed since the last line."""
        self.done += n
        now = self.clock()
        if now - self._last >= self.interval_s and self.done < self.total:
            self._last = now
            self._print(now)

    def close(self) -> None:
        """The final line: how many texts in how long."""
        self._print(self.clock())

    def _print(self, now: float) -> None:
        print(progress_line(self.label, self.done, self.total, now - self.start), file=self.out, flush=True)


@contextmanager
def progress(label: str, total: int, console: Console | None = None) -> Iterator[Callable[[int], None]]:
    """Yield `advance(n)`: a rich bar with ETA on a terminal, else LogProgress lines."""
    console = console or Console(stderr=True)
    if not console.is_terminal:
        log = LogProgress(label, total)
        yield log.advance
        log.close()
        return
    columns = (TextColumn(f"[bold]{label}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
               TextColumn("ETA"), TimeRemainingColumn())
    with Progress(*columns, console=console, transient=True) as bar:
        task = bar.add_task(label, total=total)
        yield lambda n: bar.advance(task, n)
