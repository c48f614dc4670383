"""A generated HTML page as the report tests read it: every start tag with its attributes, the
text, and a check that each element that was opened is closed, in order."""
from __future__ import annotations

from html.parser import HTMLParser
from pathlib import Path


class Page(HTMLParser):
    VOID = {"meta", "br", "link", "img", "hr", "line", "rect", "circle", "polyline"}
    """Elements that have no end tag (HTML void elements, and the SVG shapes the charts draw)."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict]] = []
        self.text: list[str] = []
        self.open: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        if tag not in self.VOID:
            self.open.append(tag)

    def handle_startendtag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_endtag(self, tag):
        assert self.open and self.open[-1] == tag, f"</{tag}> closes <{self.open[-1] if self.open else None}>"
        self.open.pop()

    def handle_data(self, data):
        self.text.append(data)

    def count(self, tag: str) -> int:
        return sum(1 for name, _ in self.tags if name == tag)


def parse_page(html: str | Path) -> Page:
    """The page (its text, or the file it is in), read to its end; every element it opened is closed."""
    page = Page()
    page.feed(html.read_text(encoding="utf-8") if isinstance(html, Path) else html)
    page.close()
    assert page.open == [], f"never closed: {page.open}"
    return page
