"""MkDocs hook: publish a few files that live outside docs/ and keep repository-relative links working.

Pages link each other and the files outside docs/ by their paths in the repository, relative to the page
(``../results/study/README.md`` from ``docs/index.md``, ``../docs/hardware.md`` from ``bench/README.md``), so a
link works the same on GitHub and in the site.

- ``on_files`` adds the files of ``PUBLISHED`` (the study reports and their plots, ``bench/README.md``,
  ``CHANGELOG.md``) as if they were ``docs/repo/<path>``: Markdown files become pages, images are copied. They
  are read from the repository; nothing is copied into it.
- ``on_page_markdown`` rewrites each relative link of a page from its repository path to the path between the
  two files in the site (``docs/x.md`` -> ``x.md``, ``bench/README.md`` -> ``repo/bench/README.md``) before
  MkDocs resolves it. A link to a repository file that is not published is left as it is, so ``--strict``
  reports it.
"""

from __future__ import annotations

import posixpath
import re
from pathlib import Path

from mkdocs.config.defaults import MkDocsConfig
from mkdocs.structure.files import File, Files, InclusionLevel
from mkdocs.structure.pages import Page

# Repository paths (glob patterns relative to the repository root) published with the site.
PUBLISHED = (
    "results/**/*.md",
    "results/**/*.png",
    "bench/README.md",
    "CHANGELOG.md",
)
PREFIX = "repo"  # their place in the site: repo/results/study/, repo/bench/, repo/CHANGELOG/

_FENCE = re.compile(r"^(```|~~~)", re.MULTILINE)
_LINK = re.compile(r"(!?\[[^\]\n]*\]\()([^)\s]+)((?:\s+\"[^\"]*\")?\))")
_published: set[str] = set()


def _root(config: MkDocsConfig) -> Path:
    return Path(config.config_file_path).resolve().parent


def _docs_prefix(config: MkDocsConfig) -> str:
    """docs_dir relative to the repository root, '/'-separated (``docs``)."""
    return Path(config.docs_dir).resolve().relative_to(_root(config)).as_posix()


def on_files(files: Files, config: MkDocsConfig) -> Files:
    """Add every published repository file as ``repo/<path>``, read from where it lives."""
    root = _root(config)
    _published.clear()
    for pattern in PUBLISHED:
        for path in sorted(root.glob(pattern)):
            rel = path.relative_to(root).as_posix()
            if not path.is_file() or rel in _published:
                continue
            _published.add(rel)
            file = File(posixpath.join(PREFIX, rel), src_dir=None, dest_dir=config.site_dir,
                        use_directory_urls=config.use_directory_urls, inclusion=InclusionLevel.INCLUDED)
            file.abs_src_path = str(path)
            files.append(file)
    return files


def _repo_path(src_uri: str, docs: str) -> str:
    """Where a site file lives in the repository."""
    if src_uri.startswith(PREFIX + "/"):
        return src_uri[len(PREFIX) + 1:]
    return posixpath.join(docs, src_uri)


def _site_path(repo_path: str, docs: str) -> str | None:
    """The site source path of a repository file, None where it is not part of the site."""
    if repo_path.startswith(docs + "/"):
        return repo_path[len(docs) + 1:]
    if repo_path in _published:
        return posixpath.join(PREFIX, repo_path)
    return None


def _rewrite(target: str, page_uri: str, docs: str) -> str:
    """One link target, from repository-relative to site-relative (anchors and queries kept)."""
    if re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*:", target) or target.startswith(("#", "/")):
        return target  # external, mailto:, an anchor of this page, absolute
    path, rest = re.match(r"([^#?]*)(.*)", target).groups()
    here = posixpath.dirname(_repo_path(page_uri, docs))
    repo_path = posixpath.normpath(posixpath.join(here, path))
    site = _site_path(repo_path, docs)
    if site is None:
        return target
    new = posixpath.relpath(site, posixpath.dirname(page_uri) or ".")
    if path.endswith("/") and not new.endswith("/"):
        new += "/"
    return new + rest


def on_page_markdown(markdown: str, page: Page, config: MkDocsConfig, files: Files) -> str:
    """Rewrite the page's relative links outside fenced code blocks."""
    docs = _docs_prefix(config)
    parts = _FENCE.split(markdown)
    out, in_code = [], False
    # split() with one group yields text, fence, text, fence, ...: toggle at every fence marker.
    for i, part in enumerate(parts):
        if i % 2 == 1:
            out.append(part)
            in_code = not in_code
            continue
        out.append(part if in_code else _LINK.sub(
            lambda m: m.group(1) + _rewrite(m.group(2), page.file.src_uri, docs) + m.group(3), part))
    return "".join(out)
