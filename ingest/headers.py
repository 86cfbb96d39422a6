"""Header fields of a parsed message as plain, bounded, trustworthy-enough values.

Every value here comes from the requester (or an attacker): names and values
are decoded with a fallback chain, capped in length, stripped of control and
bidi characters, and anything that cannot be used is replaced by an empty
value plus a note, never an exception.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from email.message import Message
from email.utils import format_datetime, getaddresses, parsedate_to_datetime

from ingest.decode import decode_bytes, header_text
from ingest.mail import Address

ADDR = re.compile(r"[\w.!#$%&'*+/=?^`{|}~-]{1,64}@[\w-]{1,63}(?:\.[\w-]{1,63}){0,10}", re.ASCII)
_MSGID = re.compile(r"<([^<>\s]{1,900})>")
_NAME = re.compile(r"[!-9;-~]{1,200}")
MAX_MESSAGE_ID = 500
MAX_REFERENCES = 50
MAX_VALUE_CHARS = 8 * 1024
MAX_NAME_CHARS = 320
# Dates before this are clock errors (1970 = an epoch of zero); dates far in
# the future are clock errors or attempts to pin a ticket to the top.
EARLIEST = datetime(1995, 1, 1, tzinfo=UTC)
FUTURE_SLACK = timedelta(days=2)


def header_map(message: Message, max_headers: int) -> dict[str, str]:
    """First value of each header, lower-cased names; garbage names are skipped."""
    found: dict[str, str] = {}
    for index, (name, value) in enumerate(message.raw_items()):
        if index >= max_headers:
            break
        key = str(name).strip().lower()
        if key in found or not _NAME.fullmatch(key):
            continue
        found[key] = header_text(value)[:MAX_VALUE_CHARS]
    return found


def message_id(value: str) -> str:
    """The id inside <...>; empty when absent, huge or not an id at all."""
    match = _MSGID.search(value)
    found = match.group(1) if match else value.strip().strip("<>")
    if not found or len(found) > MAX_MESSAGE_ID or any(ch.isspace() for ch in found):
        return ""
    if not found.isprintable() or not found.isascii():
        return ""
    return found


def references(value: str) -> tuple[str, ...]:
    ids = [m for m in _MSGID.findall(value) if len(m) <= MAX_MESSAGE_ID and m.isascii()]
    return tuple(ids[-MAX_REFERENCES:])


def normalise_date(value: str, now: datetime | None = None) -> tuple[str, str]:
    """(RFC 5322 date or "", note): invalid and implausible dates are dropped with a note."""
    value = value.strip()
    if not value:
        return "", ""
    try:
        parsed = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return "", f"Date header {value[:60]!r} is not a valid date; ignored"
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    now = now or datetime.now(UTC)
    try:
        plausible = EARLIEST <= parsed <= now + FUTURE_SLACK
    except (OverflowError, ValueError):
        plausible = False
    if not plausible:
        return "", f"Date header {value[:60]!r} is implausible; ignored"
    return format_datetime(parsed), ""


def _parse_addresses(value: str) -> list[Address]:
    found: list[Address] = []
    try:
        pairs = getaddresses([value])
    except Exception:  # getaddresses has raised on crafted input in past releases
        pairs = []
    for name, email in pairs:
        email = email.strip().strip(".").lower()
        if "@" not in email or len(email) > 254 or not ADDR.fullmatch(email):
            continue
        found.append(Address(email=email, name=header_text(name)[:MAX_NAME_CHARS]))
    return found


def addresses(message: Message, header: str, cap: int) -> tuple[Address, ...]:
    """Unique addresses of every instance of ``header``; at most ``cap`` + 1 kept."""
    found: list[Address] = []
    for value in raw_values(message, header):
        # Addresses come from the raw value and only display names are decoded:
        # an encoded word decoding to "x\r\nBcc: victim@…" must stay a name.
        text = " ".join(str(value).split())
        parsed = _parse_addresses(text)
        if not parsed:
            # "Name addr@x" without brackets and similar breakage.
            parsed = [Address(email=e.lower().strip(".")) for e in ADDR.findall(text)]
        found.extend(parsed)
        if len(found) > cap:
            break
    unique = {a.email: a for a in reversed(found)}
    return tuple(reversed(list(unique.values())))[: cap + 1]


def sender(message: Message, raw_headers: bytes) -> Address | None:
    """From, else Sender, Reply-To, Return-Path; else a From line hidden by a broken block."""
    for header in ("from", "sender", "reply-to", "return-path"):
        found = addresses(message, header, 1)
        if found:
            return found[0]
    hidden = raw_header(raw_headers, "from")
    if hidden:
        emails = ADDR.findall(hidden)
        if emails:
            return Address(email=emails[0].lower().strip("."))
    return None


def raw_values(message: Message, name: str) -> list[str]:
    """Every raw value of a header, undecoded octets kept as surrogate escapes.

    ``Message.get_all`` turns a value with 8-bit bytes into a ``Header`` whose
    text has lost both the bytes and any encoded-words; the raw string keeps
    both for ``header_text`` to decode.
    """
    name = name.lower()
    return [str(v) for k, v in message.raw_items() if k.lower() == name]


def raw_header(block: bytes, name: str) -> str:
    """A header's first value read straight from the raw header bytes.

    Used when the stdlib stopped reading headers at a broken line and so never
    saw later ones (Message-ID, From).
    """
    pattern = re.compile(rb"^" + re.escape(name.encode()) + rb"[ \t]*:(.*)$", re.I | re.M)
    match = pattern.search(block)
    if not match:
        return ""
    return header_text(decode_bytes(match.group(1).strip()[:MAX_VALUE_CHARS]))
