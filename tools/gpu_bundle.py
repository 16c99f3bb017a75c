"""`make gpu-bundle`: everything the lent GPU machine lacks, packed to fit the 64 MiB that travels with a run.

The `nvidia-h200` machine (Python 3.12, torch 2.11+cu130, lightning, transformers, sentence-transformers and
pytest preinstalled; no network) receives the working tree (tracked and untracked-not-ignored files) plus the
paths named in `carry`, 64 MiB in all. This builds, in git-ignored folders:

- `.whl/`: cp312 manylinux wheels of every distribution the project imports that the machine's image lacks
  (or holds at a version pyproject.toml rules out, torch excepted), resolved from this venv's metadata (so the
  versions are the ones tested here), one version each;
- `.gpu_bundle/lareqa.tar.xz` (the LAReQA files, ~31 MB as JSON) and `.gpu_bundle/me5-tokenizer.tar.xz`
  (the bundled multilingual-e5-small tokenizer: the GPU benchmark's token counts are then the real ones),

checks the total against the budget (failing loudly when over) and prints the device `run` call.

Two choices forced by the budget:
- mlflow-skinny + sqlalchemy + alembic rather than full mlflow: the check tracks into a sqlite store, which
  that is enough for; full mlflow adds its UI, server and ML-library integrations.
- faiss-cpu rather than faiss-gpu-cu12: the GPU wheel alone is 48.4 MB (1.14.1) and needs nvidia-cublas-cu12,
  hundreds of MB more, since the image holds CUDA 13's cuBLAS only. The FAISS GPU tests then skip, saying so.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.metadata
import io
import json
import subprocess
import sys
import tarfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import InvalidWheelFilename, canonicalize_name, parse_wheel_filename
from packaging.version import Version

REPO = Path(__file__).resolve().parent.parent
MIB = 2**20
BUDGET_BYTES = 64 * MIB
# Below this much spare room the bundle is built but flagged: the tree grows between bundling and the run.
HEADROOM_BYTES = 4 * MIB
WHEEL_DIR = ".whl"
BUNDLE_DIR = ".gpu_bundle"
CARRY = (WHEEL_DIR, BUNDLE_DIR)
COMMAND = "bash tools/gpu_check.sh"
TIMEOUT_S = 540  # the check stops itself within 8 minutes; the rest is for the transfers
# What the project (and the gpu tests) import that the image lacks; their dependencies follow from metadata.
ROOTS = ("hydra-core", "omegaconf", "datasets", "mlflow-skinny", "sqlalchemy", "alembic", "faiss-cpu")
# /work/.library/device/KINDS.md, "Python packages already there" (nvidia-h200, read on 2026-11-17).
_PREINSTALLED_NAMES = """
absl-py accelerate aiofiles aiohappyeyeballs aiohttp aiosignal annotated-doc anyio attrs botorch build certifi
charset-normalizer chex click cloudpickle cmake colorama contourpy coverage cuda-bindings cuda-core
cuda-pathfinder cuda-toolkit cupy-cuda13x cycler cython diffrax e3nn einops equinox etils execnet filelock
flatbuffers flax fonttools formulaic frozenlist fsspec gpytorch grpcio h11 h5py hf-xet httpcore httpx
huggingface-hub humanize hypothesis idna imageio iniconfig interface-meta jax jax-cuda13-pjrt jax-cuda13-plugin
jaxlib jaxtyping jinja2 joblib kiwisolver lazy-loader lightning lightning-utilities linear-operator lineax
llvmlite lxml markdown markdown-it-py markupsafe matplotlib mdurl meson ml-dtypes mpi4py mpmath msgpack
multidict multipledispatch mypy-extensions nanobind narwhals networkx ninja numba numba-cuda numpy numpyro
nvidia-cublas nvidia-cuda-cupti nvidia-cuda-nvrtc nvidia-cuda-runtime nvidia-cudnn-cu13 nvidia-cufft
nvidia-cufile nvidia-curand nvidia-cusolver nvidia-cusparse nvidia-cusparselt-cu13 nvidia-ml-py
nvidia-nccl-cu13 nvidia-nvjitlink nvidia-nvshmem-cu13 nvidia-nvtx onnx onnx-ir onnxruntime onnxscript
opencv-python-headless optax opt-einsum opt-einsum-fx optimistix orbax-checkpoint packaging pandas pathspec
patsy peft pillow pip pluggy portalocker prometheus-client propcache protobuf psutil pyarrow pybind11
py-cpuinfo pygments pyparsing pyproject-hooks pyre-extensions pytest pytest-benchmark pytest-cov pytest-mock
pytest-timeout pytest-xdist python-dateutil pytorch-lightning pyyaml regex requests rich sacrebleu safetensors
scikit-build-core scikit-image scikit-learn scipy seaborn sentencepiece sentence-transformers setuptools
shellingham simplejson six sortedcontainers statsmodels sympy tabulate tensorboard tensorboard-data-server
tensorstore threadpoolctl tifffile tiktoken timm tokenizers toolz torch torchaudio torchdiffeq torch-geometric
torchmetrics torchvision tqdm transformers treescope triton typer typing-extensions typing-inspect urllib3
uvloop wadler-lindig werkzeug wheel wrapt xarray xxhash yarl zipp
"""
PREINSTALLED = frozenset(canonicalize_name(n) for n in _PREINSTALLED_NAMES.split())
# Versions the image holds where KINDS.md's pip list names them (2026-11): a project requirement they fail is
# carried too (sentence-transformers: the project pins 6.2.0, whose Transformer(query_length=...) 6.0.1 lacks).
IMAGE_VERSIONS = {"sentence-transformers": "6.0.1", "transformers": "5.17.0", "tokenizers": "0.23.2",
                  "safetensors": "0.8.0", "numpy": "2.5.2", "huggingface-hub": "1.33.0", "torch": "2.11.0"}
# Never replaced: the image's CUDA build of torch is the point of the machine (the project pins the CPU wheel).
KEEP_IMAGE = frozenset({"torch"})
# Environment markers of the machine's interpreter: requirements for other Pythons/platforms are not needed.
TARGET_MARKERS = {
    "python_version": "3.12", "python_full_version": "3.12.3", "implementation_name": "cpython",
    "platform_python_implementation": "CPython", "sys_platform": "linux", "platform_system": "Linux",
    "platform_machine": "x86_64", "os_name": "posix", "extra": "",
}
PLATFORMS = ("manylinux_2_28_x86_64", "manylinux_2_27_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64",
             "manylinux1_x86_64")
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json")


class BudgetError(RuntimeError):
    """The bundle plus the working tree would not travel: over the carry limit."""


@dataclass(frozen=True)
class Dist:
    """What resolution needs of one installed distribution: its version and its Requires-Dist lines."""

    version: str
    requires: tuple[str, ...] = ()


def resolve(roots: Iterable[str], lookup: Callable[[str], Dist], skip: frozenset[str] = PREINSTALLED,
            markers: Mapping[str, str] = TARGET_MARKERS) -> dict[str, str]:
    """Canonical name -> version of the roots and all they need on the target, except the names in `skip`."""
    pins: dict[str, str] = {}
    todo = [canonicalize_name(r) for r in roots]
    while todo:
        name = todo.pop()
        if name in pins or name in skip:
            continue
        dist = lookup(name)
        pins[name] = dist.version
        for line in dist.requires:
            req = Requirement(line)
            # Extras are never asked for (markers see extra == ""), and other Pythons' needs are not ours.
            if req.marker is None or req.marker.evaluate(dict(markers)):
                todo.append(canonicalize_name(req.name))
    return dict(sorted(pins.items()))


def outdated_on_image(requirements: Iterable[str], image_versions: Mapping[str, str] = IMAGE_VERSIONS,
                      keep: frozenset[str] = KEEP_IMAGE) -> list[str]:
    """Preinstalled names whose version on the image (where known) fails the project's requirement for it."""
    out = []
    for line in requirements:
        req = Requirement(line)
        name = canonicalize_name(req.name)
        have = image_versions.get(name)
        if have is not None and name not in keep and not req.specifier.contains(have, prereleases=True):
            out.append(name)
    return sorted(out)


def project_requirements(pyproject: Path = REPO / "pyproject.toml") -> list[str]:
    """The `[project] dependencies` lines of pyproject.toml."""
    import tomllib  # Python >= 3.11, as the venv this runs in

    return list(tomllib.loads(pyproject.read_text())["project"]["dependencies"])


def installed(name: str) -> Dist:
    """A distribution of the running interpreter's environment (the project venv)."""
    try:
        d = importlib.metadata.distribution(name)
    except importlib.metadata.PackageNotFoundError as err:
        raise SystemExit(f"{name} is needed on the GPU machine but is not installed here: run `make setup`") from err
    return Dist(d.version, tuple(d.requires or ()))


def wheel_pin(path: Path) -> tuple[str, Version] | None:
    """(canonical name, version) of a wheel file; None for anything that is not a wheel."""
    try:
        name, version, _, _ = parse_wheel_filename(path.name)
    except InvalidWheelFilename:
        return None
    return canonicalize_name(name), version


def plan_wheels(folder: Path, pins: Mapping[str, str]) -> tuple[list[Path], dict[str, str]]:
    """(files to delete: other versions and strays, pins still to fetch) for a wheel folder."""
    wanted = {name: Version(v) for name, v in pins.items()}
    stale, present = [], set()
    for path in sorted(folder.iterdir()) if folder.is_dir() else []:
        pin = wheel_pin(path)
        if pin is None or wanted.get(pin[0]) != pin[1] or pin[0] in present:
            stale.append(path)  # two copies of one version would also stop the install
        else:
            present.add(pin[0])
    return stale, {n: v for n, v in pins.items() if n not in present}


def check_one_version_each(files: Iterable[Path]) -> None:
    """Fail when two wheels are of one distribution (pip --no-deps would refuse the whole install)."""
    seen: dict[str, Path] = {}
    for path in files:
        pin = wheel_pin(path)
        if pin is None:
            continue
        if pin[0] in seen:
            raise SystemExit(f"two wheels of {pin[0]}: {seen[pin[0]].name} and {path.name}")
        seen[pin[0]] = path


def fetch_wheel(name: str, version: str, dest: Path, python: str = sys.executable) -> None:
    """Download the cp312 manylinux (or pure) wheel; build a pure one here when only an sdist exists."""
    spec = f"{name}=={version}"
    platforms = [arg for p in PLATFORMS for arg in ("--platform", p)]
    # -qq: pip errors only (this machine's pip config names local indexes that warn on every call).
    download = [python, "-m", "pip", "download", "-qq", "--no-deps", "--only-binary=:all:", "--python-version", "3.12",
                "--implementation", "cp", *platforms, "-d", str(dest), spec]
    if subprocess.run(download, check=False).returncode == 0:
        return
    # antlr4-python3-runtime 4.9.3 (hydra's parser) is published as an sdist only; it is pure Python.
    print(f"  no cp312 wheel of {spec}: building one from its sdist")
    before = set(dest.glob("*.whl"))
    subprocess.run([python, "-m", "pip", "wheel", "-qq", "--no-deps", "-w", str(dest), spec], check=True)
    for built in set(dest.glob("*.whl")) - before:
        if not built.name.endswith("-none-any.whl"):
            built.unlink()
            raise SystemExit(f"{spec} has no cp312 manylinux wheel and builds a platform wheel here ({built.name})")


def inputs_digest(files: Sequence[tuple[Path, str]]) -> str:
    """SHA-256 over the archive names and contents: an archive is rebuilt only when its inputs change."""
    h = hashlib.sha256()
    for path, arcname in files:
        h.update(arcname.encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()


def pack(files: Sequence[tuple[Path, str]], out: Path) -> bool:
    """Write a reproducible tar.xz of (path, archive name) pairs unless its inputs are unchanged; True if written."""
    stamp = out.with_name(out.name + ".inputs")
    digest = inputs_digest(files)
    if out.is_file() and stamp.is_file() and stamp.read_text().strip() == digest:
        return False
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    with tarfile.open(tmp, "w:xz", preset=9) as tar:
        for path, arcname in sorted(files, key=lambda f: f[1]):
            data = path.read_bytes()
            info = tarfile.TarInfo(arcname)  # fixed metadata: the same inputs give the same bytes
            info.size, info.mode, info.mtime = len(data), 0o644, 0
            tar.addfile(info, io.BytesIO(data))
    tmp.replace(out)
    stamp.write_text(digest + "\n")
    return True


def folder_files(folder: Path, arc_root: str) -> list[tuple[Path, str]]:
    """Every file under a folder (through a link to it, as data/lareqa is), named `arc_root/relative path`."""
    root = folder.resolve()
    if not root.is_dir():
        raise SystemExit(f"{folder} does not exist: run `make data` (LAReQA) or `make model` (tokenizer)")
    return [(p, f"{arc_root}/{p.relative_to(root).as_posix()}") for p in sorted(root.rglob("*")) if p.is_file()]


def travelling_tree_bytes(repo: Path = REPO) -> int:
    """Bytes of what every run sends besides `carry`: tracked and untracked-not-ignored files (links as links)."""
    out = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=repo,
                         capture_output=True, check=True).stdout
    total = 0
    for rel in {r for r in out.decode().split("\0") if r}:
        path = repo / rel
        if path.is_symlink() or path.exists():  # a tracked file deleted in the work tree does not travel
            total += path.lstat().st_size
    return total


def folder_bytes(folder: Path) -> int:
    """Bytes of the files under a folder."""
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) if folder.is_dir() else 0


def check_budget(parts: Mapping[str, int], budget: int = BUDGET_BYTES, headroom: int = HEADROOM_BYTES) -> str:
    """A size table of what travels; raises BudgetError when the total exceeds the budget."""
    total = sum(parts.values())
    width = max(map(len, parts)) if parts else 0
    lines = [f"  {name:<{width}}  {size / MIB:8.2f} MiB" for name, size in parts.items()]
    lines.append(f"  {'total':<{width}}  {total / MIB:8.2f} MiB of {budget / MIB:.0f} MiB "
                 f"({(budget - total) / MIB:.2f} MiB spare)")
    table = "\n".join(lines)
    if total > budget:
        raise BudgetError(f"the GPU bundle does not fit: {total / MIB:.2f} MiB > {budget / MIB:.0f} MiB\n{table}")
    if budget - total < headroom:
        table += f"\n  WARNING: under {headroom / MIB:.0f} MiB spare; the tree must not grow before the run"
    return table


def run_call(carry: Sequence[str] = CARRY) -> str:
    """The device `run` call to paste: command, carry list and timeout."""
    return json.dumps({"command": COMMAND, "carry": list(carry), "timeout_s": TIMEOUT_S})


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """Where the data and the tokenizer come from, the budget, and whether to fetch."""
    ap = argparse.ArgumentParser(prog="python -m tools.gpu_bundle", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=REPO / "data" / "lareqa", help="LAReQA folder (xquad-r/, mlqa-r/)")
    ap.add_argument("--tokenizer", type=Path, default=REPO / ".cache" / "models" / "multilingual-e5-small",
                    help="folder with the bundled model's tokenizer files (`make model`)")
    ap.add_argument("--budget-mib", type=float, default=BUDGET_BYTES / MIB)
    ap.add_argument("--no-fetch", action="store_true", help="only check sizes of what is already there")
    return ap.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Resolve, fetch, pack, account; print the sizes and the device call."""
    args = parse_args(argv)
    wheels, bundle = REPO / WHEEL_DIR, REPO / BUNDLE_DIR
    replace = outdated_on_image(project_requirements())
    if replace:
        print(f"carried although preinstalled (the image's version fails pyproject.toml): {', '.join(replace)}")
    pins = resolve((*ROOTS, *replace), installed, PREINSTALLED - frozenset(replace))
    wheels.mkdir(exist_ok=True)
    stale, todo = plan_wheels(wheels, pins)
    for path in stale:
        print(f"removing {path.name} (not pinned)")
        path.unlink()
    if todo and args.no_fetch:
        raise SystemExit(f"missing wheels (--no-fetch): {', '.join(f'{n}=={v}' for n, v in todo.items())}")
    for name, version in todo.items():
        print(f"fetching {name}=={version}")
        fetch_wheel(name, version, wheels)
    stale, todo = plan_wheels(wheels, pins)
    if stale or todo:
        raise SystemExit(f"wheel folder does not match the pins: extra {[p.name for p in stale]}, missing {todo}")
    check_one_version_each(wheels.glob("*.whl"))
    if not args.no_fetch:
        for files, name in ((folder_files(args.data, "lareqa"), "lareqa.tar.xz"),
                            ([(args.tokenizer / f, f"me5-tokenizer/{f}") for f in TOKENIZER_FILES], "me5-tokenizer.tar.xz")):
            if pack(files, bundle / name):
                print(f"packed {BUNDLE_DIR}/{name}")
    manifest = {"wheels": pins, "roots": [*ROOTS, *replace]}
    (bundle / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    parts = {"working tree (tracked + untracked, not ignored)": travelling_tree_bytes(),
             f"{WHEEL_DIR}/ ({len(pins)} wheels)": folder_bytes(wheels),
             f"{BUNDLE_DIR}/ (LAReQA, tokenizer)": folder_bytes(bundle)}
    try:
        print(check_budget(parts, int(args.budget_mib * MIB)))
    except BudgetError as err:
        print(f"ERROR: {err}", file=sys.stderr)
        return 1
    print(f"\nwheels: {' '.join(f'{n}=={v}' for n, v in pins.items())}")
    print(f"\ndevice run call (tools/gpu_check.sh installs the wheels itself):\n  {run_call()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
