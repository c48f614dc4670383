"""Every relative link in README.md and docs/*.md reaches a file of this repository (and, for a
`#fragment`, a heading of that page), so a reader never follows a link into nothing; every
repository path written as code (`reference_server/core.py`) names a file that exists.

Links are found by a Markdown parser (markdown-it-py), so text inside code spans and code blocks
is not mistaken for a link; links with a scheme (https:, mailto:) are outside this test's reach.
Fragments are matched against the heading anchors GitHub renders.
"""
from __future__ import annotations

import re
import unicodedata
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest
from markdown_it import MarkdownIt

ROOT = Path(__file__).resolve().parents[1]
PAGES = sorted([ROOT / "README.md", *(ROOT / "docs").glob("*.md")])

_parser = MarkdownIt("commonmark").enable("table")
_FILE_REFERENCE = re.compile(r"(?:reference_server|toolkit|tests|bench|scripts|docs)/(?:[\w./-]*\w/?)?")


def heading_anchor(text: str) -> str:
    """The anchor GitHub gives a heading: lower case, punctuation and symbols dropped, spaces → '-'."""
    kept = "".join(ch for ch in text.lower()
                   if ch in "-_" or not unicodedata.category(ch).startswith(("P", "S")))
    return kept.replace(" ", "-")


def anchors(markdown: str) -> set[str]:
    """Every heading anchor of a page, repeated headings numbered the way GitHub numbers them."""
    found: set[str] = set()
    tokens = _parser.parse(markdown)
    for opening, inline in zip(tokens, tokens[1:]):
        if opening.type != "heading_open":
            continue
        text = "".join(child.content for child in inline.children or () if child.type in ("text", "code_inline"))
        anchor = base = heading_anchor(text)
        number = 0
        while anchor in found:
            number += 1
            anchor = f"{base}-{number}"
        found.add(anchor)
    return found


def links(markdown: str) -> list[str]:
    """Every link and image target of a page, reference-style ones resolved."""
    targets = []
    for token in _parser.parse(markdown):
        for child in token.children or ():
            if child.type == "link_open":
                targets.append(str(child.attrs["href"]))
            elif child.type == "image":
                targets.append(str(child.attrs["src"]))
    return targets


def broken_links(page: Path, root: Path = ROOT) -> list[str]:
    """What is wrong with each relative link of `page`, one line each; empty when all reach."""
    problems = []
    for target in links(page.read_text(encoding="utf-8")):
        parts = urlsplit(target)
        if parts.scheme or parts.netloc:
            continue
        path = unquote(parts.path)
        if not path:
            destination = page
        elif path.startswith("/"):
            destination = root / path.lstrip("/")
        else:
            destination = page.parent / path
        destination = destination.resolve()
        if not destination.is_relative_to(root.resolve()):
            problems.append(f"{target}: points outside the repository")
        elif not destination.exists():
            problems.append(f"{target}: no such file")
        elif parts.fragment and destination.suffix == ".md":
            if unquote(parts.fragment) not in anchors(destination.read_text(encoding="utf-8")):
                problems.append(f"{target}: no heading #{parts.fragment} in {destination.name}")
    return problems


def file_references(markdown: str) -> list[str]:
    """Repository paths written as inline code, whole (`toolkit/cli.py`, `reference_server/shell/`)."""
    return [child.content for token in _parser.parse(markdown) for child in token.children or ()
            if child.type == "code_inline" and _FILE_REFERENCE.fullmatch(child.content)]


@pytest.mark.parametrize("page", PAGES, ids=[str(page.relative_to(ROOT)) for page in PAGES])
def test_every_file_named_in_code_exists(page: Path):
    missing = [path for path in file_references(page.read_text(encoding="utf-8")) if not (ROOT / path).exists()]
    assert not missing, f"{page.relative_to(ROOT)} names files that are not there: {', '.join(missing)}"


def test_file_references_are_whole_paths_in_code():
    assert file_references("`reference_server/gone.py`, `toolkit/`, `rtcgate serve`, `tests/zoo/x.py --flag`, "
                           "reference_server/prose.py\n\n    `bench/in_a_block.py`\n") == [
        "reference_server/gone.py", "toolkit/"]


@pytest.mark.parametrize("page", PAGES, ids=[str(page.relative_to(ROOT)) for page in PAGES])
def test_every_relative_link_reaches_a_file(page: Path):
    problems = broken_links(page)
    assert not problems, f"{page.relative_to(ROOT)}: " + "; ".join(problems)


def test_the_documentation_pages_are_all_there():
    names = {page.name for page in PAGES}
    assert {"README.md", "architecture.md", "checks.md", "interop.md", "dependencies.md"} <= names


def test_a_broken_link_is_found_and_code_is_not_a_link(tmp_path: Path):
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "there.md").write_text("# Where — it is, `really`\n\n## Twice\n\n## Twice\n", encoding="utf-8")
    page = tmp_path / "README.md"
    page.write_text(
        "[ok](docs/there.md) [anchor](docs/there.md#where--it-is-really) [again](docs/there.md#twice-1)\n"
        "[own](#title) [web](https://example.org/missing.md) ![picture](docs/gone.png)\n"
        "[missing](docs/missing.md) [bad anchor](docs/there.md#nowhere) [out](../elsewhere.md) [ref][r]\n\n"
        "`[not a link](docs/code.md)`\n\n"
        "    [indented code](docs/code.md)\n\n"
        "# Title\n\n"
        "[r]: docs/unknown.md\n",
        encoding="utf-8")
    assert broken_links(page, root=tmp_path) == [
        "docs/gone.png: no such file",
        "docs/missing.md: no such file",
        "docs/there.md#nowhere: no heading #nowhere in there.md",
        "../elsewhere.md: points outside the repository",
        "docs/unknown.md: no such file",
    ]
