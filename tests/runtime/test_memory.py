"""Memory callback: trims on schedule, logs RSS; malloc_trim is a no-op where glibc is missing."""

from __future__ import annotations

import sys

import pytest

from src.core.config import ConfigError, validate
from src.runtime import memory
from src.runtime.memory import MemoryCallback, malloc_trim, proc_status_mib
from tests.core.test_config import make_cfg


def test_proc_status_and_trim() -> None:
    if not sys.platform.startswith("linux"):
        pytest.skip("/proc and glibc are Linux things")
    rss, peak = proc_status_mib("VmRSS"), proc_status_mib("VmHWM")
    assert rss is not None and peak is not None and 0 < rss <= peak
    blob = [bytearray(1 << 16) for _ in range(2000)]  # ~130 MB of small heap blocks, then freed
    del blob
    assert isinstance(malloc_trim(), bool)


def test_trim_schedule(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []
    monkeypatch.setattr(memory, "malloc_trim", lambda: calls.append(1) or True)

    class Trainer:
        global_step = 0
        log_every_n_steps = 1000

    cb = MemoryCallback(trim_every_n_steps=10, log_rss=False)
    for step in range(1, 31):
        Trainer.global_step = step
        cb.on_train_batch_end(Trainer(), None)  # type: ignore[arg-type]
    assert len(calls) == 3  # steps 10, 20, 30
    # The value is checked by the config schema, which names the key.
    with pytest.raises(ConfigError, match=r"callbacks.memory.trim_every_n_steps=0: expected >= 1 or null"):
        validate(make_cfg("callbacks.memory.trim_every_n_steps=0"))
