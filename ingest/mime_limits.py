"""A linear pre-scan of raw MIME bytes, before the standard library parses them.

The stdlib parser builds a full object tree and recurses into nested parts, so
10,000 parts or a 5,000-deep nesting cost memory and stack before any limit
could be checked on the tree. This scan walks the bytes once, tracks only the
stack of open boundaries (never deeper than the limit) and stops at the first
limit hit, so a hostile mail is refused in time proportional to where the
limit was crossed, not to its size.

It is a bound, not a parser: it follows the same boundary rules as the stdlib
closely enough that an ordinary mail is never refused, and errs on counting a
little too much for broken ones.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_CTYPE = re.compile(rb"^content-type[ \t]*:[ \t]*([^;\r\n]*)", re.IGNORECASE | re.MULTILINE)
_BOUNDARY = re.compile(rb"""boundary[ \t]*=[ \t]*(?:"([^"\r\n]*)"|([^;\s]+))""", re.IGNORECASE)
_FOLD = re.compile(rb"\r?\n[ \t]+")
# A part's own header block is searched for its end only this far: a part
# without a blank line must not make every later search rescan the mail.
PART_HEADER_WINDOW = 64 * 1024


@dataclass(frozen=True, slots=True)
class MimeLimits:
    max_parts: int = 500
    max_depth: int = 20
    max_headers: int = 1000
    max_header_bytes: int = 256 * 1024


@dataclass(frozen=True, slots=True)
class Shape:
    """What the scan saw; ``problem`` is empty when the mail is within limits."""

    parts: int
    depth: int
    headers: int
    header_bytes: int
    problem: str = ""


def header_end(raw: bytes, start: int, window: int | None = None) -> tuple[int, int]:
    """(end of header block, start of body) for the block starting at ``start``."""
    stop = len(raw) if window is None else min(len(raw), start + window)
    if raw.startswith(b"\n", start) or raw.startswith(b"\r\n", start):
        return start, start + (1 if raw[start] == 0x0A else 2)
    lf = raw.find(b"\n\n", start, stop)
    crlf = raw.find(b"\n\r\n", start, stop)
    candidates = [i for i in (lf, crlf) if i != -1]
    if not candidates:
        return stop, stop
    end = min(candidates)
    return end + 1, end + (2 if end == lf else 3)


def count_header_lines(block: bytes) -> int:
    return sum(1 for line in block.splitlines() if line[:1] not in (b" ", b"\t", b""))


def _content_type(block: bytes) -> tuple[bytes, bytes]:
    """(lower-cased type, boundary) of a header block; the first Content-Type wins."""
    unfolded = _FOLD.sub(b" ", block)
    match = _CTYPE.search(unfolded)
    if not match:
        return b"", b""
    ctype = match.group(1).strip().lower()
    boundary = b""
    if ctype.startswith(b"multipart/"):
        line_end = unfolded.find(b"\n", match.start())
        line = unfolded[match.start() : len(unfolded) if line_end == -1 else line_end]
        found = _BOUNDARY.search(line)
        if found:
            boundary = (found.group(1) if found.group(1) is not None else found.group(2)).rstrip()
    return ctype, boundary


def _next_dash_line(raw: bytes, pos: int) -> int:
    if raw.startswith(b"--", pos) and (pos == 0 or raw[pos - 1] == 0x0A):
        return pos
    found = raw.find(b"\n--", pos)
    return -1 if found == -1 else found + 1


def _delimiter(line: bytes, path: list[bytes | None]) -> tuple[int, bool]:
    """Index in ``path`` of the boundary this line closes or separates, and whether it closes."""
    for index in range(len(path) - 1, -1, -1):
        marker = path[index]
        if marker is None or not line.startswith(marker):
            continue
        rest = line[len(marker) :]
        closing = rest.startswith(b"--")
        if closing:
            rest = rest[2:]
        if not rest.strip():
            return index, closing
    return -1, False


def scan(raw: bytes, limits: MimeLimits) -> Shape:
    """Count parts and nesting; stop at the first limit crossed."""
    top_end, body = header_end(raw, 0)
    top = raw[:top_end]
    headers = count_header_lines(top)
    if len(top) > limits.max_header_bytes:
        return Shape(1, 1, headers, len(top),
                     f"header block is {len(top)} bytes, over the limit of "
                     f"{limits.max_header_bytes}")  # fmt: skip
    if headers > limits.max_headers:
        return Shape(1, 1, headers, len(top),
                     f"{headers} header lines, over the limit of {limits.max_headers}")  # fmt: skip

    # path: open containers from the top; bytes = "--boundary" of a multipart,
    # None = a message/* wrapper whose end is the enclosing boundary.
    path: list[bytes | None] = []
    parts = depth = 1
    block = top
    while True:
        ctype, boundary = _content_type(block)
        if ctype.startswith(b"message/") and ctype != b"message/delivery-status":
            path.append(None)
            depth = max(depth, len(path) + 1)
            if depth > limits.max_depth:
                return Shape(parts, depth, headers, len(top), _too_deep(limits))
            start = body
            end, body = header_end(raw, start, PART_HEADER_WINDOW)
            block = raw[start:end]
            continue
        if ctype.startswith(b"multipart/") and boundary:
            path.append(b"--" + boundary)
            depth = max(depth, len(path) + 1)
            if depth > limits.max_depth:
                return Shape(parts, depth, headers, len(top), _too_deep(limits))
        # Body mode: find the next delimiter of any open boundary.
        pos = body
        while True:
            if not any(m is not None for m in path):
                return Shape(parts, depth, headers, len(top))
            line_start = _next_dash_line(raw, pos)
            if line_start == -1:
                return Shape(parts, depth, headers, len(top))
            line_end = raw.find(b"\n", line_start)
            line_end = len(raw) if line_end == -1 else line_end + 1
            index, closing = _delimiter(raw[line_start:line_end], path)
            pos = line_end
            if index == -1:
                continue
            del path[index + 1 :]
            if closing:
                path.pop()
                continue
            parts += 1
            if parts > limits.max_parts:
                return Shape(parts, depth, headers, len(top),
                             f"more than {limits.max_parts} MIME parts")  # fmt: skip
            end, body = header_end(raw, pos, PART_HEADER_WINDOW)
            block = raw[pos:end]
            break


def _too_deep(limits: MimeLimits) -> str:
    return f"MIME nesting deeper than {limits.max_depth} levels"
