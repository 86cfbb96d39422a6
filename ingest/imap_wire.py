"""IMAP wire details as pure functions: argument encoding and response parsing.

aioimaplib hands back a command's untagged lines as raw ``bytes`` (literals
as ``bytearray``) and sends arguments verbatim. Keeping the parsing and
quoting here, free of I/O, lets every odd case be unit-tested without a
server, and keeps the session and watcher modules about behaviour.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence

_UIDVALIDITY = re.compile(rb"\[UIDVALIDITY (\d+)\]", re.IGNORECASE)
_FETCH = re.compile(rb"^\d+ FETCH \(", re.IGNORECASE)
_UID = re.compile(rb"\bUID (\d+)", re.IGNORECASE)
_SIZE = re.compile(rb"\bRFC822\.SIZE (\d+)", re.IGNORECASE)
_ATOM_SPECIALS = re.compile(r'[(){ %*"\\\]\x00-\x1f\x7f]')


def quote(value: str) -> str:
    """An IMAP quoted string (RFC 3501 section 4.3); aioimaplib sends arguments as-is."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def encode_mailbox(name: str) -> str:
    """Modified UTF-7 (RFC 3501 section 5.1.3), quoted: ``Käsitelty`` -> ``"K&AOQ-sitelty"``.

    Finnish and Swedish folder names are expected here, and IMAP4rev1 servers
    only understand them in this encoding.
    """
    out: list[str] = []
    pending: list[str] = []

    def flush() -> None:
        if pending:
            utf16 = "".join(pending).encode("utf-16-be")
            out.append("&" + base64.b64encode(utf16).decode().rstrip("=").replace("/", ",") + "-")
            pending.clear()

    for char in name:
        if 0x20 <= ord(char) <= 0x7E:
            flush()
            out.append("&-" if char == "&" else char)
        else:
            pending.append(char)
    flush()
    return quote("".join(out))


def check_keyword(keyword: str) -> str:
    """A keyword flag must be an IMAP atom; a bad one would break every STORE."""
    if not keyword or keyword.startswith("\\") or _ATOM_SPECIALS.search(keyword):
        raise ValueError(f"not a valid IMAP keyword: {keyword!r}")
    return keyword


def uid_set(uids: Iterable[int]) -> str:
    """Compress UIDs into an IMAP sequence set: [1, 2, 3, 7] -> ``1:3,7``."""
    ordered = sorted(set(uids))
    if not ordered:
        raise ValueError("empty UID set")
    parts: list[str] = []
    start = prev = ordered[0]
    for uid in ordered[1:]:
        if uid == prev + 1:
            prev = uid
            continue
        parts.append(f"{start}:{prev}" if prev != start else str(start))
        start = prev = uid
    parts.append(f"{start}:{prev}" if prev != start else str(start))
    return ",".join(parts)


def _text_lines(lines: Sequence[bytes | bytearray]) -> Iterator[bytes]:
    for line in lines:
        if isinstance(line, bytes):
            yield line


def parse_uidvalidity(lines: Sequence[bytes | bytearray]) -> int:
    """UIDVALIDITY from a SELECT response; 0 when the server did not send it."""
    for line in _text_lines(lines):
        found = _UIDVALIDITY.search(line)
        if found:
            return int(found.group(1))
    return 0


def parse_search(lines: Sequence[bytes | bytearray]) -> list[int]:
    """UIDs from a (UID) SEARCH response, as aioimaplib reports it.

    The untagged ``* SEARCH 1 2 3`` arrives as ``b"1 2 3"``; the last line is
    the tagged completion text, whose timing figures must not count as UIDs.
    """
    uids: list[int] = []
    for line in _text_lines(lines[:-1]):
        words = line.split()
        if words and words[0].upper() == b"SEARCH":
            words = words[1:]
        if words and all(word.isdigit() for word in words):
            uids.extend(int(word) for word in words)
    return sorted(set(uids))


def parse_sizes(lines: Sequence[bytes | bytearray]) -> dict[int, int]:
    """UID -> RFC822.SIZE from a ``UID FETCH … (UID RFC822.SIZE)`` response."""
    sizes: dict[int, int] = {}
    for line in _text_lines(lines):
        if not _FETCH.match(line):
            continue
        uid, size = _UID.search(line), _SIZE.search(line)
        if uid and size:
            sizes[int(uid.group(1))] = int(size.group(1))
    return sizes


def parse_bodies(lines: Sequence[bytes | bytearray]) -> list[tuple[int, bytes]]:
    """(UID, raw message) pairs from a ``UID FETCH … (UID BODY.PEEK[])`` response.

    The UID may come before the literal (Dovecot, most servers) or after it in
    the closing line; unsolicited FETCH responses (flag changes) carry no
    literal and are skipped.
    """
    found: list[tuple[int, bytes]] = []
    index = 0
    while index < len(lines):
        line = lines[index]
        literal = lines[index + 1] if index + 1 < len(lines) else None
        if isinstance(line, bytes) and _FETCH.match(line) and isinstance(literal, bytearray):
            trailer = lines[index + 2] if index + 2 < len(lines) else b""
            match = _UID.search(line) or (
                _UID.search(trailer) if isinstance(trailer, bytes) else None
            )
            if match:
                found.append((int(match.group(1)), bytes(literal)))
            index += 2
            continue
        index += 1
    return found


def size_batches(
    uids: Sequence[int], sizes: Mapping[int, int], max_count: int, max_bytes: int
) -> Iterator[list[int]]:
    """Split UIDs into fetch batches bounded by count and by total size.

    This is what keeps memory flat with a large backlog: one batch of raw
    bytes is held at a time. A single mail larger than ``max_bytes`` still
    gets a batch of its own. UIDs without a size (expunged meanwhile) are
    dropped.
    """
    batch: list[int] = []
    total = 0
    for uid in uids:
        size = sizes.get(uid)
        if size is None:
            continue
        if batch and (len(batch) >= max_count or total + size > max_bytes):
            yield batch
            batch, total = [], 0
        batch.append(uid)
        total += size
    if batch:
        yield batch
