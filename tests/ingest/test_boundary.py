"""The cheap boundary matcher parses every mail exactly as the standard library does."""

from __future__ import annotations

import email.feedparser
import re
from pathlib import Path

import pytest

from ingest.boundary import BoundaryMatcher, boundary_matcher, fast_boundaries
from ingest.budget import BudgetParser, BudgetSettings
from ingest.mail import InboundMail
from ingest.parse import ParseLimits, Unparseable, parse_mail
from tests.hostile import mails, workers

TAIL = r")(?P<end>--)?(?P<ws>[ \t]*)(?P<linesep>\r\n|\r|\n)?$"

SEPARATORS = [
    "--b1",
    "--=_Part_0_12.34+56(x)?*[a]{2}|^$\\",
    "----=_NextPart_000_0001_01D9.ABCDEF",
    "--ä ö",
    "--b-",
]
LINES = [
    "{s}\n", "{s}\r\n", "{s}\r", "{s}", "{s}--\n", "{s}--", "{s}  \t\r\n", "{s}--  \n",
    "{s}x\n", "{s}--x\n", " {s}\n", "{s}\n\n", "{s}-\n", "{s}---\n", "x{s}\n", "x{s}-\n", "",
]  # fmt: skip


def _feedparser_pattern(separator: str) -> str:
    """The pattern as the Python 3.11/3.12 feedparser builds it."""
    return "(?P<sep>" + re.escape(separator) + TAIL


@pytest.mark.parametrize("separator", SEPARATORS)
def test_matcher_agrees_with_the_compiled_pattern_on_every_kind_of_line(separator: str) -> None:
    pattern = _feedparser_pattern(separator)
    matcher = boundary_matcher(pattern)
    assert isinstance(matcher, BoundaryMatcher)
    compiled = re.compile(pattern)
    for template in LINES:
        line = template.format(s=separator)
        want, got = compiled.match(line), matcher.match(line)
        assert (want is None) == (got is None), repr(line)
        if want is not None and got is not None:
            for group in ("end", "ws", "linesep"):
                assert want.group(group) == got.group(group), (repr(line), group)


def test_other_patterns_are_left_to_re() -> None:
    assert boundary_matcher(_feedparser_pattern("--b"), re.IGNORECASE) is None
    assert boundary_matcher("(?P<sep>--b)(?P<end>--)?$") is None
    assert boundary_matcher("(?P<sep>--b.c" + TAIL) is None  # an unescaped dot is not a literal
    with fast_boundaries():
        stand_in = email.feedparser.re  # type: ignore[attr-defined]
        assert stand_in.compile(r"\d+").match("12").group(0) == "12"
        assert stand_in.escape("a.b") == re.escape("a.b")
    assert email.feedparser.re is re  # type: ignore[attr-defined]


def test_corpus_parses_identically_with_the_cheap_matcher(corpus: list[Path]) -> None:
    multipart = 0
    for path in corpus:
        raw = path.read_bytes()
        before = parse_mail(raw)
        with fast_boundaries():
            after = parse_mail(raw)
        assert after == before, path
        multipart += b"multipart/" in raw.lower()
    assert multipart > 20  # the comparison covered real multipart mail


def test_hostile_multipart_parses_identically() -> None:
    for raw in (
        mails.many_parts(2_000),
        mails.deep_mime(50),
        mails.winmail(),
        mails.traversal_names(),
    ):
        before = parse_mail(raw)
        with fast_boundaries():
            after = parse_mail(raw)
        assert after == before


async def test_parse_workers_use_the_cheap_matcher() -> None:
    parser = BudgetParser(
        ParseLimits(), BudgetSettings(seconds=5, workers=1), func=workers.report_feedparser_re
    )
    try:
        result = await parser(mails.ordinary("which-re"))
    finally:
        await parser.aclose()
    assert isinstance(result, Unparseable) and result.reason == "_FeedparserRe"
    assert not isinstance(parse_mail(mails.ordinary("here")), Unparseable)
    assert isinstance(parse_mail(mails.ordinary("here")), InboundMail)
