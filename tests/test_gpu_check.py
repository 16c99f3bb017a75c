"""The GPU check, as far as it runs without a GPU: bundle resolution and size accounting on fake input, the device
script's syntax, the gpu tests collected and skipped, their configs composed, and a `bench.gpu --dry-run`."""

from __future__ import annotations

import json
import subprocess
import sys
import tarfile
import warnings
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import torch
from packaging.requirements import Requirement

from tools import gpu_bundle as gb

ROOT = Path(__file__).resolve().parent.parent
FAKE = {
    "app": gb.Dist("1.0", ("Lib_Two>=1", "old-only; python_version < '3.12'", "extra-only; extra == 'docs'",
                           "win-only; sys_platform == 'win32'", "torch>=2", "numpy")),
    "lib-two": gb.Dist("2.0", ("app", "leaf[fast]>=0.1")),  # a cycle back to app, an extra ignored
    "leaf": gb.Dist("0.3"),
}


def fake_lookup(name: str) -> gb.Dist:
    """Metadata of the fake environment (KeyError for anything the resolution should never ask for)."""
    return FAKE[name]


def test_resolve_follows_target_markers_and_skips_what_is_there() -> None:
    pins = gb.resolve(["App"], fake_lookup, skip=frozenset({"torch", "numpy"}))
    assert pins == {"app": "1.0", "leaf": "0.3", "lib-two": "2.0"}  # canonical names, sorted
    with pytest.raises(KeyError):  # numpy is not in the fake environment: skip is what keeps it out
        gb.resolve(["app"], fake_lookup, skip=frozenset({"torch"}))


def test_outdated_on_image_carries_what_the_image_has_too_old() -> None:
    reqs = ["st==6.2.0", "tf>=4.46,<6", "torch==2.13.0", "unknown>=1", "numpy>=1.26"]
    image = {"st": "6.0.1", "tf": "5.17.0", "torch": "2.11.0", "numpy": "2.5.2"}
    assert gb.outdated_on_image(reqs, image, keep=frozenset({"torch"})) == ["st"]


def test_bundle_covers_every_runtime_dependency() -> None:
    """Each pyproject dependency is on the machine already or in the bundle (full mlflow as mlflow-skinny)."""
    pytest.importorskip("tomllib")  # Python >= 3.11
    deps = gb.project_requirements()
    replace = gb.outdated_on_image(deps)
    pins = gb.resolve((*gb.ROOTS, *replace), gb.installed, gb.PREINSTALLED - frozenset(replace))
    stands_in = {"mlflow": "mlflow-skinny"}
    for line in deps:
        name = Requirement(line).name.lower()
        name = stands_in.get(name, name)
        assert (name in gb.PREINSTALLED and name not in replace) or name in pins, name
    assert {"hydra-core", "antlr4-python3-runtime", "sqlalchemy"} <= set(pins) and "torch" not in pins


def test_plan_wheels_keeps_one_version_of_each(tmp_path: Path) -> None:
    for name in ("foo-1.0-py3-none-any.whl", "foo-0.9-py3-none-any.whl", "notes.txt",
                 "bar-2.0-cp312-cp312-manylinux_2_17_x86_64.whl"):
        (tmp_path / name).write_bytes(b"x")
    stale, todo = gb.plan_wheels(tmp_path, {"foo": "1.0", "bar": "2.0", "baz": "3.1"})
    assert sorted(p.name for p in stale) == ["foo-0.9-py3-none-any.whl", "notes.txt"]
    assert todo == {"baz": "3.1"}
    with pytest.raises(SystemExit, match="two wheels of foo"):
        gb.check_one_version_each(tmp_path.iterdir())
    (tmp_path / "foo-0.9-py3-none-any.whl").unlink()
    gb.check_one_version_each(tmp_path.iterdir())


def test_check_budget_accounts_and_fails_loudly() -> None:
    mib = gb.MIB
    table = gb.check_budget({"tree": 1 * mib, "wheels": 40 * mib, "data": 5 * mib})
    assert "46.00 MiB of 64 MiB (18.00 MiB spare)" in table and "WARNING" not in table
    assert "WARNING" in gb.check_budget({"wheels": 61 * mib})
    with pytest.raises(gb.BudgetError, match=r"64.50 MiB > 64 MiB"):
        gb.check_budget({"tree": mib // 2, "wheels": 64 * mib})


def test_pack_is_reproducible_and_rebuilds_only_on_change(tmp_path: Path) -> None:
    src = tmp_path / "src"
    (src / "xquad-r").mkdir(parents=True)
    (src / "xquad-r" / "en.json").write_text('{"data": []}')
    (src / "SHA256SUMS").write_text("abc  xquad-r/en.json\n")
    files = gb.folder_files(src, "lareqa")
    out = tmp_path / "b" / "lareqa.tar.xz"
    assert gb.pack(files, out)
    first = out.read_bytes()
    assert not gb.pack(files, out)  # unchanged inputs: kept as is
    out.unlink()
    gb.pack(files, out)
    assert out.read_bytes() == first  # same inputs, same bytes
    (src / "xquad-r" / "en.json").write_text('{"data": [1]}')
    assert gb.pack(files, out)
    with tarfile.open(out) as tar:
        assert sorted(tar.getnames()) == ["lareqa/SHA256SUMS", "lareqa/xquad-r/en.json"]
        assert tar.extractfile("lareqa/xquad-r/en.json").read() == b'{"data": [1]}'


def test_travelling_tree_counts_tracked_and_untracked_but_not_ignored(tmp_path: Path) -> None:
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    (tmp_path / ".gitignore").write_text("/.whl/\n")
    (tmp_path / "tracked.py").write_bytes(b"x" * 10)
    (tmp_path / "new.py").write_bytes(b"y" * 20)
    (tmp_path / ".whl").mkdir()
    (tmp_path / ".whl" / "big.whl").write_bytes(b"z" * 1000)
    subprocess.run(["git", "add", "tracked.py"], cwd=tmp_path, check=True)
    assert gb.travelling_tree_bytes(tmp_path) == 10 + 20 + len("/.whl/\n")


def test_run_call_names_ignored_carry_folders_and_the_script() -> None:
    call = json.loads(gb.run_call())
    assert call["carry"] == [".whl", ".gpu_bundle"] and call["timeout_s"] <= 600
    assert call["command"] == "bash tools/gpu_check.sh" and (ROOT / "tools" / "gpu_check.sh").is_file()
    ignored = subprocess.run(["git", "check-ignore", ".whl/x.whl", ".gpu_bundle/lareqa.tar.xz"], cwd=ROOT,
                             capture_output=True, text=True, check=False).stdout.split()
    assert ignored == [".whl/x.whl", ".gpu_bundle/lareqa.tar.xz"]  # never committed, never sent unasked


def test_gpu_check_script_parses() -> None:
    subprocess.run(["bash", "-n", str(ROOT / "tools" / "gpu_check.sh")], check=True)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the behaviour without CUDA")
def test_gpu_tests_are_collected_and_skipped_without_cuda(tmp_path: Path) -> None:
    junit = tmp_path / "junit.xml"
    proc = subprocess.run([sys.executable, "-m", "pytest", "-m", "gpu", "tests/gpu", "-q", "-p", "no:cacheprovider",
                           "-o", "addopts=", f"--junitxml={junit}"], cwd=ROOT, capture_output=True, text=True,
                          timeout=300, check=False)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    cases = ET.parse(junit).getroot().iter("testcase")
    outcomes = {f"{c.get('classname')}.{c.get('name')}": [t.tag for t in c] for c in cases}
    assert len(outcomes) >= 12 and all(tags == ["skipped"] for tags in outcomes.values()), outcomes
    modules = {name.split(".")[2] for name in outcomes}
    assert modules == {"test_training_gpu", "test_numerics_gpu", "test_faiss_gpu", "test_sync_gpu"}


def test_gpu_configs_compose() -> None:
    """The gpu tests' run overrides and the benchmark's GPU configs pass the project's schema."""
    from bench import gpu
    from bench.common import compose
    from tests.gpu.test_training_gpu import OVERRIDES

    for overrides in OVERRIDES.values():
        compose(overrides)
    batch = max(gpu.GPU_PLAN.cached_batches)  # the other batch sizes differ only in the number
    cfg = gpu.compose(Path("/nonexistent/model"), "cuda", gpu.GPU_PLAN, batch, cached=True)
    assert cfg.trainer.accelerator == "gpu" and cfg.data.batch_size == batch and cfg.model.cached_negatives


def test_sync_recorder_keys_syncs_by_innermost_frame(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The sync test's plumbing, with a Python warning standing in for torch's (no CUDA here)."""
    from tests.gpu import test_sync_gpu as sync

    monkeypatch.setattr(torch.cuda, "set_sync_debug_mode", lambda mode: None)
    monkeypatch.delenv("XLIR_GPU_ARTIFACTS", raising=False)

    def reads_a_flag() -> None:
        warnings.warn("called a synchronizing CUDA operation", UserWarning, stacklevel=1)

    with sync.recorded_syncs() as stacks:
        reads_a_flag()
        reads_a_flag()
    site = "tests/test_gpu_check.py:reads_a_flag"
    assert [s[-1] for s in stacks] == [site, site]
    assert sync.report("one", stacks, 2, tmp_path) == {site: 2}
    sync.report("two", [], 2, tmp_path)
    saved = json.loads((tmp_path / "gpu_syncs.json").read_text())
    assert saved["one"]["sites"][0]["count"] == 2 and saved["two"]["sites"] == []


def test_bench_gpu_dry_run_writes_results(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    """`python -m bench.gpu --dry-run` (in this process, as test_bench runs `bench --quick`): results as JSON."""
    from bench.gpu import DRY_PLAN, main

    monkeypatch.delenv("XLIR_GPU_TOKENIZER", raising=False)  # the trained-WordPiece path
    threads = torch.get_num_threads()
    try:
        assert main(["--dry-run", "--threads", "1", "--results-dir", str(tmp_path)]) == 0
    finally:
        torch.set_num_threads(threads)
    result = json.loads((tmp_path / "gpu.json").read_text())
    rows = result["rows"]
    assert result["dry_run"] and result["device"] == "cpu"
    assert [r["precision"] for r in rows if r["section"] == "encoding"] == ["bf16", "fp32"]
    training = [r for r in rows if r["section"] == "training"]
    assert [(r["batch"], r["gradcache"]) for r in training] == [(b, b in DRY_PLAN.cached_batches)
                                                                for b in DRY_PLAN.batches]
    for r in rows:
        assert r["ratio"]["median"] > 0 and set(r["cuda_peak_mib"]) == {"project", "plain loop"}
    assert all(r["min_cosine"] > 0.99 for r in rows if r["section"] == "encoding")
    assert "goal encoding bf16" in capsys.readouterr().out
