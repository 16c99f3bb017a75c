#!/usr/bin/env bash
# The GPU check, run ON a lent GPU machine from a bare start, within 8 minutes (docs/hardware.md: "GPU check").
#
#   make gpu-bundle                          # here, first: wheels + data into .whl/ and .gpu_bundle/ (git-ignored)
#   run(command="bash tools/gpu_check.sh", carry=[".whl", ".gpu_bundle"], timeout_s=540)   # the device call
#   bash tools/gpu_check.sh --dry-run        # here: the local .venv, no install; gpu tests skip, bench.gpu --dry-run
#
# Steps: install the carried wheels into /tmp/site, unpack LAReQA and the tokenizer, build the tiny model,
# `pytest -m gpu`, `python -m bench.gpu`. Each step has a time cap and the whole check a deadline, so a hung
# step cannot eat the session's device time. Into $OUT (else ./gpu-check-out): gpu_check.log (everything),
# gpu_check.json (steps, exit codes, seconds, test counts, benchmark goals), gpu_tests.xml (JUnit),
# gpu_syncs.json (host syncs found in a training step) and gpu.json (benchmark results).
set -uo pipefail
cd "$(dirname "$0")/.."
DRY=${GPU_CHECK_DRY_RUN:-0}
[[ "${1:-}" == "--dry-run" ]] && DRY=1
OUT=${OUT:-$PWD/gpu-check-out}
mkdir -p "$OUT"
exec > >(tee "$OUT/gpu_check.log") 2>&1
DEADLINE_S=${GPU_CHECK_DEADLINE_S:-470}
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false MLFLOW_DISABLE_TELEMETRY=true DO_NOT_TRACK=1
export XLIR_GPU_ARTIFACTS=$OUT
WORK=$(mktemp -d /tmp/xlir-gpu-check.XXXXXX)
STEPS_FILE=$WORK/steps.tsv
: >"$STEPS_FILE"

# step NAME CAP_S CMD...: run CMD under the smaller of its cap and the time left; record exit code and seconds.
step() {
    local name=$1 cap=$2 left t0 rc
    shift 2
    left=$((DEADLINE_S - SECONDS))
    if ((left < 15)); then
        echo "== $name: skipped, ${left}s left of ${DEADLINE_S}s"
        printf '%s\t%s\t0\n' "$name" skipped >>"$STEPS_FILE"
        return 1
    fi
    ((cap > left)) && cap=$left
    echo "== $name (at ${SECONDS}s, cap ${cap}s): $*"
    t0=$SECONDS
    timeout --kill-after=15 "$cap" "$@"
    rc=$?
    echo "== $name: exit $rc after $((SECONDS - t0))s"
    printf '%s\t%s\t%s\n' "$name" "$rc" "$((SECONDS - t0))" >>"$STEPS_FILE"
    return $rc
}

summary() {
    "$PY" - "$STEPS_FILE" "$OUT" "$DRY" <<'EOF'
"""Write gpu_check.json: the steps, the test outcome counts, the benchmark goals."""
import json, sys
import xml.etree.ElementTree as ET
from pathlib import Path

steps_file, out, dry = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3] == "1"
steps = [dict(zip(("step", "exit", "seconds"), line.split("\t"))) for line in steps_file.read_text().splitlines()]
result = {"dry_run": dry, "steps": steps, "tests": None, "goals": None}
junit = out / "gpu_tests.xml"
if junit.is_file():
    suite = ET.parse(junit).getroot()
    suite = suite if suite.tag == "testsuite" else suite.find("testsuite")
    cases = suite.findall("testcase")
    outcome = lambda c: next((t.tag for t in c if t.tag in ("failure", "error", "skipped")), "passed")
    result["tests"] = {"counts": {k: sum(outcome(c) == k for c in cases) for k in ("passed", "failure", "error", "skipped")},
                       "not_passed": {f"{c.get('classname')}::{c.get('name')}": outcome(c) for c in cases if outcome(c) != "passed"}}
bench = out / "gpu.json"
if bench.is_file():
    rows = json.loads(bench.read_text())["rows"]
    result["goals"] = [{k: r.get(k) for k in ("section", "precision", "batch", "goal", "met", "ratio",
                                              "project_texts_per_s", "project_steps_per_s")} for r in rows if r["goal"]]
(out / "gpu_check.json").write_text(json.dumps(result, indent=1) + "\n")
print(json.dumps(result, indent=1))
EOF
}

if ((DRY)); then
    PY=$PWD/.venv/bin/python
    export PYTHONPATH=$PWD
else
    PY=python3
    export PYTHONPATH=/tmp/site:$PWD
fi
echo "== GPU check ($([ "$DRY" = 1 ] && echo dry run || echo device)), $(date -u '+%Y-%m-%d %H:%M UTC'), commit $(git rev-parse --short HEAD 2>/dev/null || echo '?')"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null || echo "no nvidia-smi"

if ((DRY)); then
    echo "== install: skipped (dry run uses $PY)"
else
    ls .whl/*.whl >/dev/null 2>&1 || { echo "no .whl/: run \`make gpu-bundle\` here and carry .whl and .gpu_bundle"; exit 2; }
    step install 150 "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target /tmp/site .whl/*.whl || { summary; exit 1; }
fi
step imports 60 "$PY" -c "
import faiss, hydra, lightning, mlflow, omegaconf, sqlalchemy, torch, transformers, datasets
print('torch', torch.__version__, 'cuda', torch.version.cuda, 'available', torch.cuda.is_available(),
      torch.cuda.get_device_name() if torch.cuda.is_available() else '')
print('lightning', lightning.__version__, 'transformers', transformers.__version__, 'mlflow', mlflow.__version__,
      'datasets', datasets.__version__, 'hydra', hydra.__version__, 'faiss', faiss.__version__,
      'faiss GPUs', faiss.get_num_gpus() if hasattr(faiss, 'get_num_gpus') else 0)
" || { summary; exit 1; }

# The data and the tokenizer go to a scratch folder: a local ./data/lareqa (a link in a checkout) stays untouched.
step data 60 bash -c "mkdir -p '$WORK/data' && tar -xJf .gpu_bundle/lareqa.tar.xz -C '$WORK/data' \
    && tar -xJf .gpu_bundle/me5-tokenizer.tar.xz -C '$WORK' && ls '$WORK/data/lareqa'" || { summary; exit 1; }
export XLIR_DATA_DIR=$WORK/data XLIR_SHARED_DATA=$WORK/data/lareqa XLIR_GPU_TOKENIZER=$WORK/me5-tokenizer

# Built once here (keyed by the MLQA-R texts), so the tests' runs and workers find it instead of racing to build it.
step tiny-model 90 "$PY" -c "from bench.common import encoder; print(encoder('tiny').pretrained)"

XDIST=()
"$PY" -c "import xdist" 2>/dev/null && XDIST=(-n 6 --dist load)
# 4 threads per worker: 6 workers and their training subprocesses share the machine's 16 cores.
step pytest-gpu 230 env OMP_NUM_THREADS=4 "$PY" -m pytest -m gpu tests/gpu -p no:cacheprovider -o addopts= -rA -q \
    --timeout 300 "${XDIST[@]}" --junitxml="$OUT/gpu_tests.xml"

if ((DRY)); then
    step bench-gpu 200 "$PY" -m bench.gpu --dry-run --results-dir "$OUT"
else
    step bench-gpu 200 "$PY" -m bench.gpu --results-dir "$OUT"
fi
summary
rm -rf "$WORK"
echo "== GPU check done in ${SECONDS}s; files in $OUT"
