"""Readable text from an HTML-only mail, in one linear pass.

The standard library's tokenizer is used rather than a DOM: it never builds a
tree, so a mail with 50,000 links or absurd nesting costs time proportional to
its size, and nothing in it is ever executed or fetched.
"""

from __future__ import annotations

import re
from html import escape
from html.parser import HTMLParser

_WS = re.compile(r"\s+")

_BLOCK = {
    "address", "article", "blockquote", "br", "dd", "div", "dl", "dt", "footer", "h1", "h2",
    "h3", "h4", "h5", "h6", "header", "hr", "li", "ol", "p", "pre", "section", "table", "td",
    "th", "tr", "ul",
}  # fmt: skip
_SKIP = {"script", "style", "head", "title", "noscript", "template", "svg"}


class _TextCollector(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self.skipping = 0
        self.pre = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _SKIP:
            self.skipping += 1
        elif tag in _BLOCK:
            self.out.append("\n")
            if tag == "li":
                self.out.append("- ")
            elif tag == "pre":
                self.pre += 1
        elif tag == "img":
            alt = dict(attrs).get("alt")
            if alt:
                self.out.append(f"[{alt}]")

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIP:
            self.skipping = max(0, self.skipping - 1)
        elif tag in _BLOCK and tag != "li":
            self.out.append("\n")
            if tag == "pre":
                self.pre = max(0, self.pre - 1)

    def handle_data(self, data: str) -> None:
        if not self.skipping:
            self.out.append(data if self.pre else _WS.sub(" ", data))


def html_to_text(html: str) -> str:
    collector = _TextCollector()
    try:
        collector.feed(html)
        collector.close()
    except (AssertionError, ValueError):
        pass  # keep whatever was collected before the parser gave up
    lines = [line.strip() for line in "".join(collector.out).splitlines()]
    text: list[str] = []
    for line in lines:
        if line or (text and text[-1]):
            text.append(line)
    return "\n".join(text).strip()


# Tags that the HTML parsing algorithm closes implicitly (or that have no
# content): they never make real nesting, so they do not count towards depth.
_NO_DEPTH = {
    "area", "base", "br", "col", "dd", "dt", "embed", "hr", "img", "input", "li", "link", "meta",
    "option", "p", "param", "source", "td", "th", "tr", "track", "wbr",
}  # fmt: skip
MAX_HTML_DEPTH = 256


class _Flattener(HTMLParser):
    """Re-emits HTML with element nesting capped; deeper tags vanish, their text stays."""

    def __init__(self, max_depth: int) -> None:
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self.max_depth = max_depth
        self.depth = 0
        self.hidden = 0
        self.flattened = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _NO_DEPTH:
            self.out.append(self.get_starttag_text() or "")
        elif self.depth >= self.max_depth:
            self.hidden += 1
            self.flattened = True
        else:
            self.depth += 1
            self.out.append(self.get_starttag_text() or "")

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.out.append(self.get_starttag_text() or "")

    def handle_endtag(self, tag: str) -> None:
        if tag in _NO_DEPTH:
            self.out.append(f"</{tag}>")
        elif self.hidden:
            self.hidden -= 1
        elif self.depth:
            self.depth -= 1
            self.out.append(f"</{tag}>")

    def handle_data(self, data: str) -> None:
        self.out.append(escape(data, quote=False))


def flatten_html(html: str, max_depth: int = MAX_HTML_DEPTH) -> tuple[str, bool]:
    """HTML whose nesting is at most ``max_depth``, and whether anything changed.

    The sanitiser that runs when a message is stored (nh3/html5ever) takes time
    quadratic in nesting depth: 20,000 nested divs cost 0.7 s, 100,000 about
    18 s, on the event loop. Capping depth here, in the budgeted worker, keeps
    that later pass linear. Shallow HTML is returned untouched.
    """
    if html.count("<") <= 2 * max_depth:
        return html, False
    flattener = _Flattener(max_depth)
    try:
        flattener.feed(html)
        flattener.close()
    except (AssertionError, ValueError):
        pass
    if not flattener.flattened:
        return html, False
    return "".join(flattener.out), True
