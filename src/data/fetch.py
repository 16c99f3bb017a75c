"""`make data`: provide ./data/<set> for every data set from the shared copy (symlink) or the pinned upstream files.

Every set has a manifest of SHA-256 hashes shipped with the code (`src/data/checksums/<set>.sha256`, a copy of
the shared folder's SHA256SUMS: the publishers' files byte for byte) and the GitHub repository + commit its
files come from. A shared copy is linked; otherwise every missing or wrong file is downloaded (its hash
checked before it is kept); then every file is verified. Each local path was checked against the pinned
commit (same git blob): files keep their repository paths, except Tatoeba's README and license (LASER keeps
them under data/tatoeba/v1/ and at its root). A file with no upstream counterpart at the pinned commit has no
URL: the download names it and asks for the folder to be provided.
"""

from __future__ import annotations

import argparse
import sys
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from src.utils.files import sha256_file

CHECKSUMS = Path(__file__).with_name("checksums")
_RAW = "https://raw.githubusercontent.com/{repo}/{commit}/{path}"

# google-research-datasets/lareqa, pinned by commit (XQuAD-R from its current tree, MLQA-R from 354d67d, the
# last one that carried it). src/mteb/tasks.py reads the revision of each subset from here.
UPSTREAM = {
    "xquad-r": _RAW.format(repo="google-research-datasets/lareqa", commit="9bc8c7fb6dd8d01d72a05a93c2cb96882b0d299c",
                           path="xquad-r/{lang}.json"),
    "mlqa-r": _RAW.format(repo="google-research-datasets/lareqa", commit="354d67d1cd066854cdfbf5ad0e6105528976141d",
                          path="mlqa-r/{lang}.json"),
}


class FetchError(SystemExit):
    """A set that cannot be provided: the message names the files and what to do."""


@dataclass(frozen=True)
class DataSet:
    """One data folder: its shipped manifest, and where each of its files is published."""

    name: str  # the folder under data/ and under ../shared/data/, and the manifest's name
    # relative path in the folder -> the file's pinned raw URL (None: no upstream file at the pinned commit)
    url: Callable[[str], str | None]
    # relative path -> why it has no upstream URL (shown when it has to be provided by hand)
    unpublished: Mapping[str, str] = field(default_factory=dict)

    @property
    def manifest(self) -> Path:
        return CHECKSUMS / f"{self.name}.sha256"

    def hashes(self) -> dict[str, str]:
        """Relative path -> SHA-256 of the published file (the shipped manifest, `sha256sum` format)."""
        out = {}
        for line in self.manifest.read_text().splitlines():
            if line.strip():
                digest, name = line.split(maxsplit=1)
                out[name.strip().removeprefix("*").removeprefix("./")] = digest
        return out

    def urls(self) -> dict[str, str | None]:
        """The URL table: relative path -> pinned raw URL, None for the unpublished files."""
        return {name: self.url(name) for name in self.hashes()}


def github(repo: str, commit: str, renamed: Mapping[str, str] | None = None,
           unpublished: Mapping[str, str] | None = None) -> Callable[[str], str | None]:
    """Raw URLs of a repository at a commit: the same path upstream unless renamed; None for unpublished files."""
    renamed, unpublished = dict(renamed or {}), dict(unpublished or {})

    def url(path: str) -> str | None:
        if path in unpublished:
            return None
        return _RAW.format(repo=repo, commit=commit, path=renamed.get(path, path))

    return url


def _lareqa(path: str) -> str:
    subset, file = path.split("/")
    return UPSTREAM[subset].format(lang=file.removesuffix(".json"))


_SIB200_UNPUBLISHED = {
    # FLORES-200's own README (byte for byte facebookresearch/flores flores200/README.md, 712c4fe and later),
    # shipped for the FLORES text license; the sib-200 repository does not carry it at the pinned commit.
    "FLORES200_README.md": "FLORES-200's README, not part of dadelani/sib-200",
}

SETS: dict[str, DataSet] = {s.name: s for s in (
    DataSet("lareqa", _lareqa),
    # every file at the same path in MicrosoftTranslator/NTREX
    DataSet("ntrex128", github("MicrosoftTranslator/NTREX", "8561f6a622db9edad1217683e5c83daefd8bb2bf")),
    # README.md, LICENSE and data/annotated/<lang>/{train,dev,test}.tsv are committed in the repository (the
    # output of its get_flores_and_annotate.sh, checked in); FLORES200_README.md is not.
    DataSet("sib200", github("dadelani/sib-200", "593cea88519930f776c1a4a1980b6a35b39dca57",
                             unpublished=_SIB200_UNPUBLISHED), _SIB200_UNPUBLISHED),
    # the website repository: LICENSE.md, memories.md, testset.md at its root, data/TM/*.tmx.zip
    DataSet("tico19", github("tico-19/tico-19.github.io", "d97615f9cffa28ec7de571e00fbd513e5a1c7fc7")),
    # LASER: the Tatoeba files under data/tatoeba/v1/ as here; its README beside them, its license at the root
    DataSet("tatoeba", github("facebookresearch/LASER", "74bc6ae7ffb7cba670fe0f428d0ede9f666fb821",
                              renamed={"README.md": "data/tatoeba/v1/README.md", "LASER_LICENSE": "LICENSE"})),
)}


def verify(root: Path, data: DataSet) -> list[str]:
    """Files under root that are missing or differ from the manifest."""
    return [n for n, d in data.hashes().items() if not (root / n).is_file() or sha256_file(root / n) != d]


def download(out: Path, data: DataSet) -> None:
    """Fetch every file that is missing or wrong, checking its hash before it is kept.

    Files without an upstream URL cannot be fetched: once the others are in place, a missing or wrong one
    fails with its name and a request to provide the folder.
    """
    unavailable = []
    for name, digest in data.hashes().items():
        target = out / name
        if target.is_file() and sha256_file(target) == digest:
            continue
        url = data.url(name)
        if url is None:
            unavailable.append(name)
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(target.name + ".part")
        try:
            urllib.request.urlretrieve(url, tmp)
        except OSError as err:
            tmp.unlink(missing_ok=True)
            raise FetchError(
                f"cannot download {url} ({err}); offline, provide {target} yourself "
                f"(a copy of the {data.name} files listed in src/data/checksums/{data.name}.sha256) "
                f"or set XLIR_DATA_DIR") from err
        if sha256_file(tmp) != digest:
            tmp.unlink()
            raise FetchError(f"{url}: SHA-256 mismatch, expected {digest}")
        tmp.rename(target)
    if unavailable:
        names = ", ".join(f"{n} ({data.unpublished[n]})" if n in data.unpublished else n for n in unavailable)
        raise FetchError(
            f"{names}: no file at the pinned upstream commit to download; provide the folder {out} yourself "
            f"(a copy of the shared {data.name}/ folder: `make data SHARED_DATA=<folder holding {data.name}/>`) "
            f"or set XLIR_DATA_DIR")


def provide(data: DataSet, shared_root: Path, out_root: Path) -> list[str]:
    """Link the shared copy when data/<set> does not exist, else download what is missing; the files still bad.

    A link is only verified (there is nothing to download into: fix the link or the copy it points at).
    """
    out, shared = out_root / data.name, shared_root / data.name
    if not out.exists() and not out.is_symlink() and shared.is_dir():
        out.parent.mkdir(parents=True, exist_ok=True)
        out.symlink_to(shared.resolve(), target_is_directory=True)
    elif not out.is_symlink():
        download(out, data)
    return verify(out, data)


def main(argv: list[str] | None = None) -> int:
    """Every chosen set: link or download, then verify; exit 1 naming the set and files on any failure."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shared-root", type=Path, default=Path("../shared/data"),
                    help="folder holding the shared copies, one subfolder per set")
    ap.add_argument("--out-root", type=Path, default=Path("data"))
    ap.add_argument("--sets", default=",".join(SETS), help=f"comma-separated, of {', '.join(SETS)} (default: all)")
    args = ap.parse_args(argv)
    names = [s for s in args.sets.split(",") if s]
    unknown = [s for s in names if s not in SETS]
    if unknown or not names:
        print(f"--sets: unknown {unknown or names} (one or more of {', '.join(SETS)})", file=sys.stderr)
        return 2
    failed = 0
    for name in names:
        data, out = SETS[name], args.out_root / name
        try:
            bad = provide(data, args.shared_root, args.out_root)
        except FetchError as err:
            failed += 1
            print(f"{out}: {err}", file=sys.stderr)
            continue
        if bad:
            failed += 1
            print(f"{out}: missing or modified: {', '.join(bad)} (run `make data` online, or fix the link)",
                  file=sys.stderr)
        else:
            print(f"{out}: {len(data.hashes())} files verified")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
