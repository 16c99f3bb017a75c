"""`make data`: provide ./data/lareqa from the shared copy (symlink) or the pinned upstream files."""

from __future__ import annotations

import argparse
import sys
import urllib.request
from pathlib import Path

from src.utils.files import sha256_file

# google-research-datasets/lareqa, pinned by commit (XQuAD-R from its current tree, MLQA-R from 354d67d).
UPSTREAM = {
    "xquad-r": "https://raw.githubusercontent.com/google-research-datasets/lareqa/"
    "9bc8c7fb6dd8d01d72a05a93c2cb96882b0d299c/xquad-r/{lang}.json",
    "mlqa-r": "https://raw.githubusercontent.com/google-research-datasets/lareqa/"
    "354d67d1cd066854cdfbf5ad0e6105528976141d/mlqa-r/{lang}.json",
}
SHA256SUMS = Path(__file__).with_name("lareqa.sha256")


def expected_hashes() -> dict[str, str]:
    """`{set}/{lang}.json` -> SHA-256 of the published file."""
    out = {}
    for line in SHA256SUMS.read_text().splitlines():
        if line.strip():
            digest, name = line.split()
            out[name] = digest
    return out


def verify(root: Path) -> list[str]:
    """Names of files under root that are missing or differ from the pinned hashes."""
    return [n for n, d in expected_hashes().items() if not (root / n).is_file() or sha256_file(root / n) != d]


def download(out: Path, upstream: dict[str, str] = UPSTREAM) -> None:
    """Fetch every pinned file that is missing or wrong, checking its hash before it is kept."""
    for name, digest in expected_hashes().items():
        target = out / name
        if target.is_file() and sha256_file(target) == digest:
            continue
        subset, file = name.split("/")
        url = upstream[subset].format(lang=file.removesuffix(".json"))
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_suffix(".part")
        try:
            urllib.request.urlretrieve(url, tmp)
        except OSError as err:
            tmp.unlink(missing_ok=True)
            raise SystemExit(
                f"cannot download {url} ({err}); offline, provide {target} yourself "
                f"(copy of google-research-datasets/lareqa) or set XLIR_DATA_DIR"
            ) from err
        if sha256_file(tmp) != digest:
            tmp.unlink()
            raise SystemExit(f"{url}: SHA-256 mismatch, expected {digest}")
        tmp.rename(target)


def main(argv: list[str] | None = None) -> int:
    """Link the shared copy when it exists, else download; then verify every file."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--shared", type=Path, default=Path("../shared/data/lareqa"))
    ap.add_argument("--out", type=Path, default=Path("data/lareqa"))
    args = ap.parse_args(argv)
    out: Path = args.out
    if not out.exists() and not out.is_symlink() and args.shared.is_dir():
        out.parent.mkdir(parents=True, exist_ok=True)
        out.symlink_to(args.shared.resolve(), target_is_directory=True)
    elif not out.exists():
        download(out)
    bad = verify(out)
    if bad:
        print(f"{out}: missing or modified: {', '.join(bad)} (run `make data` online, or fix the link)", file=sys.stderr)
        return 1
    print(f"{out}: {len(expected_hashes())} files verified")
    return 0


if __name__ == "__main__":
    sys.exit(main())
