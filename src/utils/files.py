"""File helpers shared by the offline builders and `make data`: hashing and atomic folder publishing."""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path


def sha256_file(path: Path) -> str:
    """Hex SHA-256 of a file, read in 4 MiB chunks."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 22), b""):
            digest.update(chunk)
    return digest.hexdigest()


def replace_dir(tmp: Path, target: Path, is_complete: Callable[[Path], bool]) -> None:
    """Atomically move the finished folder `tmp` to `target`, replacing an existing one.

    A crash never leaves a half-written `target`; if a concurrent build published first and its folder
    is complete, ours is dropped.
    """
    aside = None
    if target.exists():
        # rename() cannot replace a non-empty directory, so move the old one out of the way first.
        aside = Path(tempfile.mkdtemp(prefix=f".{target.name}.old-", dir=target.parent))
        os.replace(target, aside / target.name)
    try:
        os.rename(tmp, target)
    except OSError:
        if aside is not None and not target.exists():
            os.replace(aside / target.name, target)  # put the previous folder back
        if not is_complete(target):
            raise
        shutil.rmtree(tmp, ignore_errors=True)
    if aside is not None:
        shutil.rmtree(aside, ignore_errors=True)
