"""Multipart boundaries matched without compiling a regular expression per mail.

Up to Python 3.12 the standard library's feedparser compiles one regular
expression per multipart part, from that part's boundary. Mail clients make
every boundary unique, so the ``re`` cache never hits, and compiling was about
a fifth of a parse worker's time on ordinary mail (measured). Python 3.13
changed the feedparser to test the literal boundary with ``str.startswith``
and match the fixed rest of the line with one precompiled expression. This
module gives the feedparser of older Pythons the same matcher.

It is installed only where the daemon parses (``fast_boundaries``): the
feedparser module's name ``re`` is swapped for a stand-in that recognises the
one boundary pattern and hands every other call to the real ``re``. A
pattern it does not recognise, exactly, is compiled as before, so a change in
the standard library costs speed, never correctness.
"""

from __future__ import annotations

import email.feedparser
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

# The part of the feedparser's pattern after the escaped separator, and the
# expression that matches it at the separator's end, as Python 3.13 does.
_HEAD = "(?P<sep>"
_TAIL = r")(?P<end>--)?(?P<ws>[ \t]*)(?P<linesep>\r\n|\r|\n)?$"
_REST = re.compile(r"(?P<end>--)?(?P<ws>[ \t]*)(?P<linesep>\r\n|\r|\n)?$")
_ESCAPED = re.compile(r"\\(.)", re.DOTALL)


class BoundaryMatcher:
    """Stands in for the compiled boundary pattern: only ``match`` is ever used."""

    __slots__ = ("separator",)

    def __init__(self, separator: str) -> None:
        self.separator = separator

    def match(self, line: str) -> re.Match[str] | None:
        if not line.startswith(self.separator):
            return None
        return _REST.match(line, len(self.separator))


def boundary_matcher(pattern: str, flags: int = 0) -> BoundaryMatcher | None:
    """The matcher for a feedparser boundary pattern; None for any other pattern."""
    if flags or not (pattern.startswith(_HEAD) and pattern.endswith(_TAIL)):
        return None
    escaped = pattern[len(_HEAD) : -len(_TAIL)]
    separator = _ESCAPED.sub(r"\1", escaped)
    if re.escape(separator) != escaped:  # not a plain escaped literal: leave it to re
        return None
    return BoundaryMatcher(separator)


class _FeedparserRe:
    """The feedparser's view of ``re``: boundary patterns matched cheaply, all else real."""

    def compile(self, pattern: Any, flags: int = 0) -> Any:
        if isinstance(pattern, str):
            matcher = boundary_matcher(pattern, flags)
            if matcher is not None:
                return matcher
        return re.compile(pattern, flags)

    def __getattr__(self, name: str) -> Any:
        return getattr(re, name)


@contextmanager
def fast_boundaries() -> Iterator[None]:
    """Parse with the cheap boundary matcher inside the block; restored afterwards."""
    module: Any = email.feedparser
    previous = module.re
    module.re = _FeedparserRe()
    try:
        yield
    finally:
        module.re = previous
