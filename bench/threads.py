"""Comparison 6: intra-op threads and the OpenMP wait policy, on an idle machine and beside a busy process.

torch's OpenMP workers spin after each parallel region before they sleep (libgomp's default spin count):
on a machine where another process holds a core, a spinning worker takes that core's time slices from the
thread it waits for. Each arm is a fresh interpreter (the policy is read when OpenMP loads) timing plain
training steps of the bundled mE5-small (bench.train_step's loop, the precision `auto` picks) with a
given thread count and `OMP_WAIT_POLICY`; with `competitor`, a single-threaded busy loop runs beside it
for the whole arm. Arms alternate over repetitions. What is kept in the product follows from this table
(docs/hardware.md).
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import Any

from bench.common import REPO


@dataclass(frozen=True)
class Size:
    """Steps per arm and repetitions of every arm."""

    warmup: int
    steps: int
    repetitions: int


QUICK = Size(warmup=1, steps=1, repetitions=1)
FULL = Size(warmup=1, steps=4, repetitions=2)
POLICIES = (None, "PASSIVE")  # None: libgomp's default (spin, then sleep)
BUSY_LOOP = "while True: pass"

# Runs inside the arm's interpreter: N plain steps, median printed as JSON on the last line.
_ARM = """
import json, statistics, sys
from bench import train_step
from src.runtime import apply_threads
apply_threads(int(sys.argv[1]))
s = train_step.setup("me5_small_bundled")
size = train_step.Size(models=(), warmup=int(sys.argv[2]), steps=int(sys.argv[3]), repetitions=1)
batches = train_step.plain_batches(s, size.warmup + size.steps)
print(json.dumps({"step_s": train_step.plain_steps(s, size, batches).seconds, "precision": s.precision}))
"""


def arm(threads: int, policy: str | None, competitor: bool, size: Size) -> dict[str, Any]:
    """One fresh process timing training steps; a busy loop beside it when `competitor`."""
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    if policy:
        env["OMP_WAIT_POLICY"] = policy
    busy = subprocess.Popen([sys.executable, "-c", BUSY_LOOP]) if competitor else None
    try:
        t0 = time.perf_counter()
        out = subprocess.run([sys.executable, "-c", _ARM, str(threads), str(size.warmup), str(size.steps)],
                             cwd=REPO, env=env, capture_output=True, text=True, check=True)
        wall = time.perf_counter() - t0
    finally:
        if busy is not None:
            busy.kill()
            busy.wait()
    return {**json.loads(out.stdout.strip().splitlines()[-1]), "process_s": wall}


def run(quick: bool = False, size: Size | None = None) -> dict[str, Any]:
    """Every (threads, policy) arm idle and beside a busy process, alternated; one row per condition."""
    size = size or (QUICK if quick else FULL)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    arms = [(t, p) for t in sorted({cores, 1}, reverse=True) for p in POLICIES]
    rows, details = [], {}
    for competitor in (False, True):
        times: dict[str, list[float]] = {f"{t} threads, {p or 'default'}": [] for t, p in arms}
        for rep in range(size.repetitions):
            order = arms[rep % len(arms):] + arms[:rep % len(arms)]
            for t, p in order:
                res = arm(t, p, competitor, size)
                times[f"{t} threads, {p or 'default'}"].append(res["step_s"])
                print(f"  {'busy' if competitor else 'idle'} rep {rep + 1} {t} threads {p or 'default':<8} "
                      f"{res['step_s']:.3f} s/step ({res['precision']})")
        medians = {k: statistics.median(v) for k, v in times.items()}
        base = f"{cores} threads, default"
        best = min(medians, key=medians.__getitem__)
        condition = "beside one busy process" if competitor else "idle"
        details[condition] = {"seconds": times, "medians": medians}
        rows.append({
            "comparison": "6 threads", "setting": f"mE5-small train step, {condition}: best = {best}",
            "project_s": medians[best], "reference_s": medians[base],
            "ratio": {"median": medians[best] / medians[base], "min": medians[best] / medians[base],
                      "max": medians[best] / medians[base]},
            "goal": "recorded (keep what helps)", "met": None,
            "extra": "; ".join(f"{k} {v:.2f}s" for k, v in medians.items()),
        })
    return {"size": size.__dict__, "rows": rows, "details": details}
