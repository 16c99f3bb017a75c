"""Tracking that loses nothing: every MLflow write is journaled in the run folder, retried with backoff, and
left pending (not raised) when the server stays away; `python -m src.sync RUN_FOLDER` uploads what is pending.

Only write calls go through the journal (`JOURNALED`); reads go straight to the client.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from unittest.mock import patch

log = logging.getLogger(__name__)

JOURNAL_FILE = "tracking_journal.jsonl"
JOURNALED = ("log_batch", "log_param", "log_metric", "set_tag", "log_artifact", "log_text", "set_terminated",
             "update_run")
# MLflow's own HTTP retries (7, backoff factor 2) would block a training step for minutes; ours are short and
# the journal keeps what still failed.
FAST_HTTP_ENV = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0", "MLFLOW_HTTP_REQUEST_TIMEOUT": "5"}


@contextmanager
def fast_http() -> Iterator[None]:
    """Temporarily make MLflow's HTTP client fail fast (one try, short timeout)."""
    with patch.dict(os.environ, FAST_HTTP_ENV):  # restores the previous values (or their absence) on exit
        yield


def encode(value: Any) -> Any:
    """MLflow entities (Metric, Param, RunTag) and containers as JSON-able data."""
    if isinstance(value, (list, tuple)):
        return [encode(v) for v in value]
    if isinstance(value, dict):
        return {k: encode(v) for k, v in value.items()}
    if hasattr(value, "to_dictionary") and type(value).__name__ in ("Metric", "Param", "RunTag"):
        return {"__entity__": type(value).__name__, **value.to_dictionary()}
    return value


def decode(value: Any) -> Any:
    """Inverse of `encode`."""
    from mlflow.entities import Metric, Param, RunTag

    if isinstance(value, list):
        return [decode(v) for v in value]
    if isinstance(value, dict):
        kind = value.get("__entity__")
        fields = {k: v for k, v in value.items() if k != "__entity__"}
        if kind == "Metric":
            return Metric(fields["key"], fields["value"], fields["timestamp"], fields["step"])
        if kind in ("Param", "RunTag"):
            return (Param if kind == "Param" else RunTag)(fields["key"], fields["value"])
        return {k: decode(v) for k, v in value.items()}
    return value


class Journal:
    """Append-only JSON lines: each write call with an id and whether it reached the server."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._next = sum(1 for _ in self.entries())

    def entries(self) -> list[dict[str, Any]]:
        """All lines (a half-written last line after a kill is ignored)."""
        if not self.path.is_file():
            return []
        out = []
        for line in self.path.read_text().splitlines():
            try:
                out.append(json.loads(line))
            except ValueError:
                continue
        return out

    def append(self, entry: dict[str, Any]) -> int:
        """Write one line (flushed to disk: the journal must survive a crash) and return its id."""
        with self._lock:
            entry = {"id": self._next, **entry}
            self._next += 1
            with self.path.open("a") as f:
                f.write(json.dumps(entry, default=str) + "\n")
                f.flush()
                os.fsync(f.fileno())
            return entry["id"]

    def pending(self) -> list[dict[str, Any]]:
        """Calls that never reached the server, in the order they were made."""
        entries = self.entries()
        done = {e["done"] for e in entries if "done" in e}
        return [e for e in entries if "call" in e and not e["ok"] and e["id"] not in done]


def transient_errors() -> tuple[type[BaseException], ...]:
    """What an unreachable server or a locked sqlite store raises (MLflow wraps store errors)."""
    from mlflow.exceptions import MlflowException

    return (MlflowException, OSError)  # requests' ConnectionError/Timeout are OSErrors


def call_with_retries(fn: Callable[[], Any], attempts: int = 3, backoff_s: float = 0.5) -> Any:
    """fn() retried with exponential backoff (0.5 s, 1 s, ...) on transient errors; the last one propagates."""
    errors = transient_errors()
    for i in range(attempts):
        try:
            return fn()
        except errors:
            if i == attempts - 1:
                raise
            time.sleep(backoff_s * 2**i)
    return None


class ResilientClient:
    """MlflowClient proxy: write calls are journaled, retried and, when the server stays away, left pending.

    After a failure the server is considered down for `cooldown_s`: calls in that window go to the journal at
    once, so an outage costs training a few seconds, not minutes per step.
    """

    def __init__(self, client: Any, journal: Journal, attempts: int = 3, backoff_s: float = 0.5,
                 cooldown_s: float = 30.0) -> None:
        self._client, self._journal = client, journal
        self._attempts, self._backoff_s, self._cooldown_s = attempts, backoff_s, cooldown_s
        self._down_until = 0.0

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._client, name)
        if name not in JOURNALED:
            return attr
        return lambda *args, **kwargs: self._call(name, attr, args, kwargs)

    def _call(self, name: str, fn: Callable[..., Any], args: tuple, kwargs: dict[str, Any]) -> Any:
        """Try the call (unless the server is known down), then journal it with its outcome."""
        if name == "log_artifact" and len(args) > 1:
            args = (args[0], str(Path(args[1]).resolve()), *args[2:])  # sync may run from another folder
        ok, result = False, None
        if time.monotonic() >= self._down_until:
            try:
                with fast_http():
                    result = call_with_retries(lambda: fn(*args, **kwargs), self._attempts, self._backoff_s)
                ok = True
            except transient_errors() as err:  # the journal keeps the call; `python -m src.sync` uploads it later
                self._down_until = time.monotonic() + self._cooldown_s
                log.warning("MLflow %s failed (%s); kept in %s for `python -m src.sync`", name, err,
                            self._journal.path)
        self._journal.append({"call": name, "args": encode(list(args)), "kwargs": encode(kwargs), "ok": ok,
                              "time": time.time()})
        return result


def replay(journal: Journal, client: Any) -> tuple[int, int]:
    """Upload the pending calls in order; returns (uploaded, still pending). Stops at the first failure."""
    pending = journal.pending()
    for n, entry in enumerate(pending):
        try:
            getattr(client, entry["call"])(*decode(entry["args"]), **decode(entry["kwargs"]))
        except transient_errors() as err:
            log.error("sync stopped at journal entry %s (%s): %s", entry["id"], entry["call"], err)
            return n, len(pending) - n
        journal.append({"done": entry["id"], "time": time.time()})
    return len(pending), 0


def metric_journal(journal: Journal) -> dict[tuple[str, int], float]:
    """Every metric the run logged, as (key, step) -> value (latest wins), whether uploaded or pending."""
    out: dict[tuple[str, int], float] = {}
    for e in journal.entries():
        if e.get("call") == "log_batch":
            for m in e["kwargs"].get("metrics") or []:
                out[(m["key"], m["step"])] = m["value"]
    return out
