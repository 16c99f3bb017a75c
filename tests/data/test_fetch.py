"""`make data`: link the shared copies, or download the pinned files and check their SHA-256."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

import pytest

from src.data import fetch
from tests.conftest import ROOT

SHARED_ROOT = ROOT.parent / "shared" / "data"
COUNTS = {"lareqa": 18, "ntrex128": 15, "sib200": 36, "tico19": 11, "tatoeba": 22}


def _file_urls(data: fetch.DataSet, root: Path) -> fetch.DataSet:
    """The set with its files served from a local folder (file:// URLs) instead of GitHub."""
    return replace(data, url=lambda path: f"file://{root.resolve()}/{path}")


@pytest.mark.parametrize("name", sorted(COUNTS))
def test_pinned_hashes_match_the_real_files(name: str) -> None:
    data = fetch.SETS[name]
    assert len(data.hashes()) == COUNTS[name]
    assert fetch.verify(SHARED_ROOT / name, data) == []


def test_upstream_urls_are_pinned() -> None:
    assert fetch.SETS["lareqa"].url("mlqa-r/ar.json") == (
        "https://raw.githubusercontent.com/google-research-datasets/lareqa/354d67d1cd066854cdfbf5ad0e6105528976141d/"
        "mlqa-r/ar.json")
    assert fetch.SETS["sib200"].url("data/annotated/deu_Latn/dev.tsv") == (
        "https://raw.githubusercontent.com/dadelani/sib-200/593cea88519930f776c1a4a1980b6a35b39dca57/"
        "data/annotated/deu_Latn/dev.tsv")
    assert fetch.SETS["tatoeba"].url("README.md").endswith("74bc6ae7ffb7cba670fe0f428d0ede9f666fb821/"
                                                         "data/tatoeba/v1/README.md")
    assert fetch.SETS["tatoeba"].url("LASER_LICENSE").endswith("/LICENSE")


@pytest.mark.parametrize("name", sorted(COUNTS))
def test_download_checks_hashes(tmp_path: Path, name: str) -> None:
    data = fetch.SETS[name]
    out = tmp_path / name
    fetch.download(out, _file_urls(data, SHARED_ROOT / name))
    assert fetch.verify(out, data) == []
    # a corrupted upstream file is refused and not kept
    first = next(iter(data.hashes()))
    bad = tmp_path / "upstream"
    (bad / first).parent.mkdir(parents=True)
    (bad / first).write_text("{}")
    with pytest.raises(SystemExit, match="SHA-256 mismatch"):
        fetch.download(tmp_path / "other", _file_urls(data, bad))
    assert not (tmp_path / "other" / first).exists()


def test_offline_without_copy_names_the_file(tmp_path: Path) -> None:
    data = _file_urls(fetch.SETS["lareqa"], tmp_path / "nowhere")
    with pytest.raises(SystemExit, match=r"cannot download .*ar\.json.*provide .*ar\.json"):
        fetch.download(tmp_path / "lareqa", data)


@pytest.mark.parametrize("name", sorted(COUNTS))
def test_offline_without_copy_names_the_file_and_url(tmp_path: Path, name: str) -> None:
    data = _file_urls(fetch.SETS[name], tmp_path / "nowhere")
    first = next(iter(data.hashes()))
    with pytest.raises(SystemExit, match=rf"cannot download file://\S*/nowhere/{re.escape(first)} .*"
                                         rf"provide \S*{re.escape(first)} yourself"):
        fetch.download(tmp_path / name, data)
    assert not list((tmp_path / name).rglob("*.part"))


def test_file_without_upstream_asks_for_the_folder(tmp_path: Path) -> None:
    data = fetch.SETS["sib200"]
    assert [n for n, url in data.urls().items() if url is None] == ["FLORES200_README.md"]
    # everything else is fetched (from the shared folder here); the file with no URL is named, the folder asked for
    shared = _file_urls(data, SHARED_ROOT / "sib200").url
    local = replace(data, url=lambda p: data.url(p) and shared(p))
    out = tmp_path / "sib200"
    with pytest.raises(SystemExit, match=r"FLORES200_README\.md \(FLORES-200's README[^)]*\): no file at the pinned "
                                         r"upstream commit.*provide the folder \S*sib200 yourself"):
        fetch.download(out, local)
    assert fetch.verify(out, data) == ["FLORES200_README.md"]
    (out / "FLORES200_README.md").write_bytes((SHARED_ROOT / "sib200" / "FLORES200_README.md").read_bytes())
    fetch.download(out, local)  # nothing left to fetch
    assert fetch.verify(out, data) == []


def test_main_links_every_shared_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "data"
    assert fetch.main(["--shared-root", str(SHARED_ROOT), "--out-root", str(out)]) == 0
    printed = capsys.readouterr().out
    for name, n in COUNTS.items():
        assert (out / name).is_symlink() and fetch.verify(out / name, fetch.SETS[name]) == []
        assert f"{out / name}: {n} files verified" in printed
    assert fetch.main(["--shared-root", str(SHARED_ROOT), "--out-root", str(out), "--sets", "nope"]) == 2


def test_modified_files_are_fetched_again_or_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "data" / "tatoeba"
    fetch.download(out, _file_urls(fetch.SETS["tatoeba"], SHARED_ROOT / "tatoeba"))
    (out / "data" / "tatoeba" / "v1" / "tatoeba.deu-eng.deu").write_text("changed\n")
    # A real folder: the wrong file is downloaded again (offline here: the error names the set, the file, its URL).
    assert fetch.main(["--out-root", str(tmp_path / "data"), "--sets", "tatoeba",
                       "--shared-root", str(tmp_path / "none")]) == 1
    assert re.search(r"data/tatoeba: cannot download https://raw\.githubusercontent\.com/facebookresearch/LASER/"
                     r"74bc6ae7ffb7cba670fe0f428d0ede9f666fb821/data/tatoeba/v1/tatoeba\.deu-eng\.deu",
                     capsys.readouterr().err)
    # A link to a modified copy: nothing to download into, the files are named.
    (tmp_path / "linked").mkdir()
    (tmp_path / "linked" / "tatoeba").symlink_to(out, target_is_directory=True)
    assert fetch.main(["--out-root", str(tmp_path / "linked"), "--sets", "tatoeba",
                       "--shared-root", str(tmp_path / "none")]) == 1
    assert "linked/tatoeba: missing or modified: data/tatoeba/v1/tatoeba.deu-eng.deu" in capsys.readouterr().err


def test_a_failing_set_does_not_stop_the_others(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "data"
    (out / "ntrex128").mkdir(parents=True)  # a real, empty folder: downloaded into (offline: fails)
    shared = tmp_path / "shared"
    shared.mkdir()
    (shared / "tico19").symlink_to(SHARED_ROOT / "tico19", target_is_directory=True)
    assert fetch.main(["--shared-root", str(shared), "--out-root", str(out), "--sets", "ntrex128,tico19"]) == 1
    captured = capsys.readouterr()
    assert f"{out / 'ntrex128'}: cannot download" in captured.err and "DOCUMENT_IDS.tsv" in captured.err
    assert f"{out / 'tico19'}: 11 files verified" in captured.out


def test_manifests_are_the_shared_sha256sums() -> None:
    for name in COUNTS:
        assert fetch.SETS[name].manifest.read_bytes() == (SHARED_ROOT / name / "SHA256SUMS").read_bytes(), name


def test_every_file_maps_to_its_pinned_upstream_path() -> None:
    pinned = {
        "ntrex128": ("MicrosoftTranslator/NTREX", "8561f6a622db9edad1217683e5c83daefd8bb2bf", {}),
        "sib200": ("dadelani/sib-200", "593cea88519930f776c1a4a1980b6a35b39dca57", {"FLORES200_README.md": None}),
        "tico19": ("tico-19/tico-19.github.io", "d97615f9cffa28ec7de571e00fbd513e5a1c7fc7", {}),
        "tatoeba": ("facebookresearch/LASER", "74bc6ae7ffb7cba670fe0f428d0ede9f666fb821",
                    {"README.md": "data/tatoeba/v1/README.md", "LASER_LICENSE": "LICENSE"}),
    }
    for name, (repo, commit, moved) in pinned.items():
        for path, url in fetch.SETS[name].urls().items():
            upstream = moved.get(path, path)
            expected = upstream and f"https://raw.githubusercontent.com/{repo}/{commit}/{upstream}"
            assert url == expected, (name, path)
    for path, url in fetch.SETS["lareqa"].urls().items():
        commit = "9bc8c7fb6dd8d01d72a05a93c2cb96882b0d299c" if path.startswith("xquad-r/") else \
            "354d67d1cd066854cdfbf5ad0e6105528976141d"
        assert url == f"https://raw.githubusercontent.com/google-research-datasets/lareqa/{commit}/{path}"
