"""Property-based: generated mail structures and byte corruptions never break parsing.

Every input must give an ``InboundMail`` or an ``Unparseable`` (never an
exception) quickly; through the pipeline, every input ends with a final action.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ingest.outcome import Action, SourceRef
from ingest.parse import ParseLimits, parse_mail
from servicedesk.runtime import Runtime, open_runtime
from servicedesk.settings import Settings

FINAL = {Action.CREATED, Action.UPDATED, Action.DUPLICATE, Action.IGNORED, Action.QUARANTINED}
LIMITS = ParseLimits(max_parts=50, max_depth=8)
HEADER_NAMES = ["From", "To", "Cc", "Subject", "Message-ID", "Date", "Reply-To", "References",
                "In-Reply-To", "Content-Type", "Content-Disposition", "X-\x00Odd", "Sender", ""]  # fmt: skip
CHARSETS = ["utf-8", "gb2312", "iso-8859-1", "klingon", "", "utf-7", "shift_jis", "base64"]
text = st.text(max_size=40)
value = st.one_of(
    text,
    st.builds(lambda cs, t: f"=?{cs}?b?{t}?=", st.sampled_from(CHARSETS), text),
    st.builds(lambda cs, t: f"=?{cs}?q?{t}?=", st.sampled_from(CHARSETS), text),
    st.sampled_from(["<a@b>", "<>", "a@b.fi", "Name a@b.fi", "<" + "x" * 1000 + ">",
                     "Thu, 1 Jan 1970 00:00:00 +0000", "Fri, 31 Dec 2100 23:59:59 +1400", "32 Foo"]),
)  # fmt: skip


def _leaf(draw: Callable[..., Any]) -> str:
    ctype = draw(st.sampled_from(["text/plain", "text/html", "application/pdf", "message/rfc822",
                                  "application/ms-tnef", "image/png"]))  # fmt: skip
    cs = draw(st.sampled_from(CHARSETS))
    cte = draw(st.sampled_from(["", "base64", "quoted-printable", "8bit", "x-uuencode"]))
    name = draw(st.sampled_from(["", "../../x.exe", "a\u202eb.txt", "=?utf-8?q?r=C3=A4?="]))
    headers = f"Content-Type: {ctype}; charset={cs}\r\n"
    if cte:
        headers += f"Content-Transfer-Encoding: {cte}\r\n"
    if name:
        headers += f'Content-Disposition: attachment; filename="{name}"\r\n'
    body: str = draw(text)
    return headers + "\r\n" + body + "\r\n"


@st.composite
def structure(draw: Callable[..., Any], depth: int = 0) -> str:
    if depth >= 3 or draw(st.booleans()):
        return _leaf(draw)
    boundary = draw(st.sampled_from(["b", "bb", "b" + str(depth), ""]))
    children = [draw(structure(depth + 1)) for _ in range(draw(st.integers(0, 4)))]
    body = "".join(f"--{boundary}\r\n{c}" for c in children)
    closing = draw(st.sampled_from([f"--{boundary}--\r\n", ""]))
    return f'Content-Type: multipart/mixed; boundary="{boundary}"\r\n\r\n{body}{closing}'


@st.composite
def mails(draw: Callable[..., Any]) -> bytes:
    headers = "".join(
        f"{draw(st.sampled_from(HEADER_NAMES))}: {draw(value)}\r\n"
        for _ in range(draw(st.integers(0, 8)))
    )
    raw: bytes = (headers + draw(structure())).encode("utf-8", "surrogatepass")
    for _ in range(draw(st.integers(0, 4))):  # byte-level corruption
        kind = draw(st.sampled_from(["flip", "cut", "insert", "dup"]))
        at = draw(st.integers(0, max(0, len(raw) - 1)))
        if kind == "flip" and raw:
            raw = raw[:at] + bytes([draw(st.integers(0, 255))]) + raw[at + 1 :]
        elif kind == "cut":
            raw = raw[:at]
        elif kind == "insert":
            raw = (
                raw[:at]
                + draw(st.sampled_from([b"\x00", b"\r", b"\n\n", b"\xff\xfe", b"--b\r\n"]))
                + raw[at:]
            )
        else:
            raw = raw[:at] + raw[at : at + 200] * 3 + raw[at:]
    return raw


@settings(max_examples=400, deadline=None)
@given(mails())
def test_parse_never_raises_and_is_fast(raw: bytes) -> None:
    started = time.perf_counter()
    parse_mail(raw, LIMITS)  # the return type is the whole assertion: no exception
    assert time.perf_counter() - started < 1.0


@pytest.fixture
def loop_runtime(
    make_settings: Callable[..., Settings], tmp_path: Any
) -> Iterator[tuple[asyncio.AbstractEventLoop, Runtime]]:
    loop = asyncio.new_event_loop()
    context = open_runtime(make_settings(f"sqlite:///{tmp_path}/prop.db"))
    runtime = loop.run_until_complete(context.__aenter__())
    try:
        yield loop, runtime
    finally:
        loop.run_until_complete(context.__aexit__(None, None, None))
        loop.close()


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(raw=mails())
def test_pipeline_always_answers(
    loop_runtime: tuple[asyncio.AbstractEventLoop, Runtime], raw: bytes
) -> None:
    loop, runtime = loop_runtime
    started = time.perf_counter()
    outcome = loop.run_until_complete(runtime.pipeline.process(raw, SourceRef("file", "prop")))
    assert outcome.action in FINAL, outcome
    assert time.perf_counter() - started < runtime.settings.limits.processing_seconds
