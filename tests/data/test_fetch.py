"""`make data`: link the shared copy, or download the pinned files and check their SHA-256."""

from __future__ import annotations

from pathlib import Path

import pytest

from src.data import fetch


def _file_urls(root: Path) -> dict[str, str]:
    return {subset: f"file://{root.resolve()}/{subset}/{{lang}}.json" for subset in ("xquad-r", "mlqa-r")}


def test_pinned_hashes_match_the_real_files(real_data: Path) -> None:
    assert len(fetch.expected_hashes()) == 18
    assert fetch.verify(real_data) == []


def test_download_checks_hashes(tmp_path: Path, real_data: Path) -> None:
    out = tmp_path / "lareqa"
    fetch.download(out, _file_urls(real_data))
    assert fetch.verify(out) == []
    # a corrupted upstream file is refused and not kept
    bad = tmp_path / "upstream"
    (bad / "xquad-r").mkdir(parents=True)
    (bad / "mlqa-r").mkdir()
    (bad / "mlqa-r" / "ar.json").write_text("{}")  # the first pinned file
    with pytest.raises(SystemExit, match="SHA-256 mismatch"):
        fetch.download(tmp_path / "other", _file_urls(bad))
    assert not (tmp_path / "other" / "mlqa-r" / "ar.json").exists()


def test_offline_without_copy_names_the_file(tmp_path: Path) -> None:
    with pytest.raises(SystemExit, match=r"cannot download .*ar\.json.*provide .*ar\.json"):
        fetch.download(tmp_path / "lareqa", _file_urls(tmp_path / "nowhere"))


def test_main_links_shared_copy(tmp_path: Path, real_data: Path) -> None:
    out = tmp_path / "data" / "lareqa"
    assert fetch.main(["--shared", str(real_data), "--out", str(out)]) == 0
    assert out.is_symlink() and fetch.verify(out) == []
