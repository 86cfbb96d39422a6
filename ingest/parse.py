"""Raw bytes to ``InboundMail`` with mail-parser, plus the fallbacks real mail needs.

Parsing never raises: a message that cannot be understood comes back as
``Unparseable`` with a reason, and the pipeline quarantines it with its raw
bytes. See ../shared/corpus/README.md for the traps handled here.
"""

from __future__ import annotations

import base64
import binascii
import re
import unicodedata
from dataclasses import dataclass
from email.message import Message
from email.utils import getaddresses
from typing import Any

import mailparser

from ingest.decode import decode_bytes, header_text
from ingest.htmltext import html_to_text
from ingest.mail import Address, Attachment, InboundMail

_ADDR = re.compile(r"[\w.!#$%&'*+/=?^`{|}~-]+@[\w-]+(?:\.[\w-]+)*", re.ASCII)
_MSGID = re.compile(r"<([^<>\s]{1,900})>")
MAX_MESSAGE_ID = 500


@dataclass(frozen=True, slots=True)
class Unparseable:
    """Why a mail could not be turned into an ``InboundMail``."""

    reason: str


@dataclass(frozen=True, slots=True)
class ParseLimits:
    """Per-mail limits; hitting one quarantines the mail or drops a part, with a reason."""

    max_attachment_bytes: int = 25 * 1024 * 1024
    max_attachments: int = 50
    max_headers: int = 1000
    max_header_bytes: int = 256 * 1024
    max_recipients: int = 500


def parse_mail(raw: bytes, limits: ParseLimits | None = None) -> InboundMail | Unparseable:
    limits = limits or ParseLimits()
    if not raw.strip():
        return Unparseable("empty message")
    problem = _header_block_problem(raw, limits)
    if problem:
        return Unparseable(problem)
    try:
        parsed = mailparser.parse_from_bytes(raw)
        return _to_inbound(parsed, raw, limits)
    except RecursionError:
        return Unparseable("MIME nesting too deep to parse")
    except Exception as exc:  # mail-parser raises a wide variety on hostile input
        return Unparseable(f"parser failed: {type(exc).__name__}: {str(exc)[:200]}")


def _header_block_problem(raw: bytes, limits: ParseLimits) -> str:
    end = raw.find(b"\n\n")
    crlf_end = raw.find(b"\r\n\r\n")
    if crlf_end != -1 and (end == -1 or crlf_end < end):
        end = crlf_end
    block = raw if end == -1 else raw[:end]
    if len(block) > limits.max_header_bytes:
        return f"header block is {len(block)} bytes, over the limit of {limits.max_header_bytes}"
    count = sum(1 for line in block.splitlines() if line[:1] not in (b" ", b"\t", b""))
    if count > limits.max_headers:
        return f"{count} header lines, over the limit of {limits.max_headers}"
    return ""


def _to_inbound(parsed: Any, raw: bytes, limits: ParseLimits) -> InboundMail | Unparseable:
    message: Message = parsed.message
    if message is None:
        return Unparseable("no message structure found")
    headers = {name.lower(): header_text(value) for name, value in reversed(message.items())}
    sender = _sender(message)
    if sender is None:
        return Unparseable("no usable sender address (From, Sender, Return-Path all empty)")
    to = _addresses(message, "to")
    cc = _addresses(message, "cc")
    if len(to) + len(cc) > limits.max_recipients:
        return Unparseable(
            f"{len(to) + len(cc)} recipients, over the limit of {limits.max_recipients}"
        )
    html = "\n".join(parsed.text_html)
    text = _plain_text(parsed, message) or (html_to_text(html) if html else "")
    attachments, notes = _attachments(parsed.attachments, limits)
    defects = tuple(sorted(parsed.defects_categories))
    return InboundMail(
        message_id=_message_id(headers.get("message-id", "")),
        subject=headers.get("subject", ""),
        sender=sender,
        to=to,
        cc=cc,
        reply_to=_addresses(message, "reply-to"),
        in_reply_to=_message_id(headers.get("in-reply-to", "")),
        references=tuple(m for m in _MSGID.findall(headers.get("references", "")))[-50:],
        date=headers.get("date", "")[:128],
        text=text,
        html=html,
        headers=headers,
        attachments=attachments,
        size=len(raw),
        defects=defects,
        notes=notes,
    )


def _message_id(value: str) -> str:
    match = _MSGID.search(value)
    found = match.group(1) if match else value.strip().strip("<>")
    if not found or len(found) > MAX_MESSAGE_ID or " " in found:
        return ""
    return found


def _parse_addresses(value: str) -> list[Address]:
    found: list[Address] = []
    for name, email in getaddresses([value]):
        email = email.strip().strip(".").lower()
        if "@" not in email or not _ADDR.fullmatch(email):
            continue
        found.append(Address(email=email, name=name.strip()))
    return found


def _addresses(message: Message, header: str) -> tuple[Address, ...]:
    values = message.get_all(header) or []
    found: list[Address] = []
    for value in values:
        text = header_text(value)
        parsed = _parse_addresses(text)
        if not parsed:
            # "Name addr@x" without brackets and similar breakage.
            parsed = [Address(email=e.lower().strip(".")) for e in _ADDR.findall(text)]
        found.extend(parsed)
    unique = {a.email: a for a in reversed(found)}
    return tuple(reversed(list(unique.values())))


def _sender(message: Message) -> Address | None:
    for header in ("from", "sender", "reply-to", "return-path"):
        found = _addresses(message, header)
        if found:
            return found[0]
    return None


def _plain_text(parsed: Any, message: Message) -> str:
    text = "\n".join(parsed.text_plain)
    if "\ufffd" not in text:
        return text
    # mail-parser decoded with a charset that failed: redo it with the chain.
    redone: list[str] = []
    for part in message.walk():
        if part.get_content_type() != "text/plain" or part.get_filename():
            continue
        payload = part.get_payload(decode=True)
        if isinstance(payload, bytes):
            redone.append(decode_bytes(payload, part.get_content_charset()))
    return "\n".join(redone) or text


def safe_filename(name: str, fallback: str = "attachment") -> str:
    """A name that is safe to show and to store: no paths, controls or odd Unicode."""
    name = unicodedata.normalize("NFC", name)
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(ch for ch in name if unicodedata.category(ch)[0] != "C")
    name = name.strip().lstrip(".").strip()
    if not name:
        return fallback
    encoded = name.encode("utf-8")
    if len(encoded) > 200:
        stem, dot, ext = name.rpartition(".")
        ext = ext[:16] if dot and len(ext) <= 16 else ""
        keep = encoded[: 200 - len(ext) - 1].decode("utf-8", errors="ignore")
        name = f"{keep}.{ext}" if ext else keep
    return name


def _attachment_bytes(item: dict[str, Any]) -> bytes:
    payload = item.get("payload") or ""
    if item.get("binary"):
        try:
            return base64.b64decode(payload, validate=False)
        except (binascii.Error, ValueError):
            return str(payload).encode("utf-8", "surrogateescape")
    return str(payload).encode("utf-8", "surrogateescape")


def _attachments(
    items: list[dict[str, Any]], limits: ParseLimits
) -> tuple[tuple[Attachment, ...], tuple[str, ...]]:
    kept: list[Attachment] = []
    notes: list[str] = []
    for index, item in enumerate(items):
        name = safe_filename(
            header_text(str(item.get("filename") or "")), f"attachment-{index + 1}"
        )
        data = _attachment_bytes(item)
        content_type = str(item.get("mail_content_type") or "application/octet-stream")[:255]
        disposition = str(item.get("content-disposition") or "").lower()
        dropped = ""
        if index >= limits.max_attachments:
            dropped = f"more than {limits.max_attachments} attachments"
        elif len(data) > limits.max_attachment_bytes:
            dropped = f"{len(data)} bytes, over the limit of {limits.max_attachment_bytes}"
        if dropped:
            notes.append(f"attachment {name!r} not stored: {dropped}")
        kept.append(
            Attachment(
                filename=name,
                content_type=content_type.lower(),
                data=b"" if dropped else data,
                size=len(data),
                content_id=str(item.get("content-id") or "").strip("<> ")[:255],
                inline=disposition.startswith("inline"),
                dropped_reason=dropped,
            )
        )
    return tuple(kept), tuple(notes)
