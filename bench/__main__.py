"""`python -m bench [encoding grid train_step scaling precision threads] [--quick] [--cap-isa avx2]`: run comparisons."""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from bench.harness import RESULTS_DIR, machine_info, write_result

COMPARISONS = ("encoding", "grid", "train_step", "scaling", "precision", "threads")
# What torch and oneDNN see on an AVX2-only CPU (no AVX-512, no AMX), imposed on a bigger one.
ISA_CAPS = {"avx2": {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2"}}
NEEDS_REFERENCE = {"encoding", "grid"}  # use sentence-transformers


def fmt_ratio(ratio: Mapping[str, float] | None) -> str:
    """`0.93 (0.90–0.97)`: the ratio of medians and the per-repetition min–max."""
    if not ratio:
        return "—"
    return f"{ratio['median']:.3f} ({ratio['min']:.3f}–{ratio['max']:.3f})"


def markdown_table(rows: Sequence[Mapping[str, Any]]) -> str:
    """One line per measured row: setting, medians, ratio A/B with min–max, goal, met or not."""
    out = ["| comparison | setting | project (A) s | reference (B) s | A/B median (min–max) | goal | met | notes |",
           "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        met = "yes" if r["met"] else "**NOT MET**" if r["met"] is False else "—"
        a = "—" if r.get("project_s") is None else f"{r['project_s']:.3f}"
        b = "—" if r.get("reference_s") is None else f"{r['reference_s']:.3f}"
        out.append(f"| {r['comparison']} | {r['setting']} | {a} | {b} | {fmt_ratio(r.get('ratio'))} | "
                   f"{r['goal']} | {met} | {r.get('extra', '')} |")
    return "\n".join(out)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """Comparisons to run (default all) and the --quick sizes."""
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("comparisons", nargs="*", metavar="comparison",
                        help=f"any of {', '.join(COMPARISONS)} (default: all)")
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke run in about a minute")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch intra-op threads (default: the cores this process may use)")
    parser.add_argument("--results-dir", type=Path, default=None,
                        help="where the JSON files go (default bench/results, bench/results/isa-<cap> when capped)")
    parser.add_argument("--cap-isa", choices=sorted(ISA_CAPS), default=None,
                        help="run as this ISA (ATen + oneDNN capped): an AVX2-only machine on a bigger CPU")
    args = parser.parse_args(argv)
    if args.results_dir is None:
        args.results_dir = RESULTS_DIR / f"isa-{args.cap_isa}" if args.cap_isa else RESULTS_DIR
    unknown = [c for c in args.comparisons if c not in COMPARISONS]
    if unknown:
        parser.error(f"unknown comparison(s) {unknown}; expected any of {list(COMPARISONS)}")
    args.comparisons = args.comparisons or list(COMPARISONS)
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Run the chosen comparisons in this one process; write `<name>.json` each and `summary.md`."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    args = parse_args(argv)
    if args.cap_isa and any(os.environ.get(k) != v for k, v in ISA_CAPS[args.cap_isa].items()):
        # The caps are read when torch loads: re-run this command in a fresh interpreter with them set.
        os.execve(sys.executable, [sys.executable, "-m", "bench", *(sys.argv[1:] if argv is None else argv)],
                  {**os.environ, **ISA_CAPS[args.cap_isa]})
    from bench.common import ST_MISSING, has_sentence_transformers
    from src.runtime import apply_threads
    from src.runtime.hardware import available_cores, resolve_threads

    apply_threads(resolve_threads(args.threads, available_cores()))  # as src.run / src.evaluate do at start-up
    rows: list[dict[str, Any]] = []
    skipped = []
    for name in args.comparisons:
        if name in NEEDS_REFERENCE and not has_sentence_transformers():
            print(f"skipping {name}: {ST_MISSING}", file=sys.stderr)
            skipped.append(name)
            continue
        print(f"== {name}{' (quick)' if args.quick else ''}")
        payload = importlib.import_module(f"bench.{name}").run(quick=args.quick)
        payload["quick"] = args.quick
        path = write_result(name, payload, args.results_dir)
        print(f"   -> {path}")
        rows.extend(payload["rows"])
    table = markdown_table(rows)
    machine = machine_info()
    header = (f"{machine['date_utc']} · {machine['cpu_model']} · {machine['cpus']} CPUs · load avg "
              f"{machine['load_avg_1_5_15']} · torch {machine['torch']} · transformers {machine['transformers']} · "
              f"sentence-transformers {machine['sentence_transformers']}{' · --quick' if args.quick else ''}"
              f"{f' · ISA capped to {args.cap_isa}' if args.cap_isa else ''} · CPU flags {machine['cpu_flags']}")
    summary = f"{header}\n\n{table}\n"
    if skipped:
        summary += f"\nSkipped (no sentence-transformers): {', '.join(skipped)}\n"
    args.results_dir.mkdir(parents=True, exist_ok=True)
    # summary.md is the table of a whole `make bench`; a partial run gets its own file and leaves it alone.
    stem = "summary" if set(args.comparisons) == set(COMPARISONS) else f"summary-{'-'.join(args.comparisons)}"
    (args.results_dir / f"{stem}{'-quick' if args.quick else ''}.md").write_text(summary)
    print(summary)
    print(json.dumps({"rows": len(rows), "skipped": skipped}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
