"""Raw bytes to ``InboundMail``, bounded, with the fallbacks real mail needs.

Parsing never raises: a message that cannot be understood comes back as
``Unparseable`` with a reason, and the pipeline quarantines it with its raw
bytes. The MIME shape is checked on the raw bytes first (ingest.mime_limits),
so the standard library never builds a tree for 10,000 parts or recurses into
absurd nesting. Parts are walked with the standard library directly rather
than mail-parser: it avoids mail-parser's base64 round trip of every
attachment (a large share of its ~9x memory) and lets over-limit attachments
be dropped before they are decoded. See ../shared/corpus/README.md for the
traps handled here and in ingest.decode / ingest.headers.
"""

from __future__ import annotations

import email
import re
import unicodedata
from dataclasses import dataclass, field
from email.message import Message

from ingest import headers as hdr
from ingest import mime_limits, tnef
from ingest.decode import decode_bytes, header_text
from ingest.htmltext import MAX_HTML_DEPTH, flatten_html, html_to_text
from ingest.mail import Attachment, InboundMail
from ingest.sanitise import sanitise_html


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
    max_parts: int = 500
    max_depth: int = 20
    # Bodies beyond these are cut (with a note): nobody reads 2 MB of text in
    # a ticket, and HTML-to-text cost grows with the input.
    max_text_chars: int = 1_000_000
    max_html_chars: int = 4_000_000

    def mime(self) -> mime_limits.MimeLimits:
        return mime_limits.MimeLimits(
            max_parts=self.max_parts,
            max_depth=self.max_depth,
            max_headers=self.max_headers,
            max_header_bytes=self.max_header_bytes,
        )


def parse_mail(raw: bytes, limits: ParseLimits | None = None) -> InboundMail | Unparseable:
    limits = limits or ParseLimits()
    if not raw.strip():
        return Unparseable("empty message")
    try:
        shape = mime_limits.scan(raw, limits.mime())
        if shape.problem:
            return Unparseable(shape.problem)
        message = email.message_from_bytes(raw)
        return _to_inbound(message, raw, limits)
    except RecursionError:
        return Unparseable("MIME nesting too deep to parse")
    except MemoryError:
        return Unparseable("parsing needed more memory than allowed")
    except Exception as exc:  # the stdlib raises a wide variety on hostile input
        return Unparseable(f"parser failed: {type(exc).__name__}: {str(exc)[:200]}")


@dataclass(slots=True)
class _Body:
    """What the walk over the leaf parts collects."""

    plain: list[str] = field(default_factory=list)
    html: list[str] = field(default_factory=list)
    attachments: list[Attachment] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    defects: set[str] = field(default_factory=set)


def _to_inbound(message: Message, raw: bytes, limits: ParseLimits) -> InboundMail | Unparseable:
    top_end, _ = mime_limits.header_end(raw, 0)
    top = raw[:top_end]
    headers = hdr.header_map(message, limits.max_headers)
    sender = hdr.sender(message, top)
    if sender is None:
        return Unparseable("no usable sender address (From, Sender, Return-Path all empty)")
    to = hdr.addresses(message, "to", limits.max_recipients)
    cc = hdr.addresses(message, "cc", limits.max_recipients)
    if len(to) + len(cc) > limits.max_recipients:
        return Unparseable(f"more than {limits.max_recipients} recipients")
    body = _Body()
    _walk(message, body, limits)
    text, html = _texts(body, limits)
    date, date_note = hdr.normalise_date(headers.get("date", ""))
    if date_note:
        body.notes.append(date_note)
    mid = hdr.message_id(headers.get("message-id", "") or hdr.raw_header(top, "message-id"))
    if not mid and headers.get("message-id"):
        body.notes.append("Message-ID header unusable (too long or malformed); ignored")
    return InboundMail(
        message_id=mid,
        subject=headers.get("subject", "")[:1000],
        sender=sender,
        to=to,
        cc=cc,
        reply_to=hdr.addresses(message, "reply-to", 20),
        in_reply_to=hdr.message_id(headers.get("in-reply-to", "")),
        references=hdr.references(headers.get("references", "")),
        date=date,
        text=text,
        html=html,
        safe_html=sanitise_html(html),
        headers=headers,
        attachments=tuple(body.attachments),
        size=len(raw),
        defects=tuple(sorted(body.defects)),
        notes=tuple(body.notes),
    )


def _texts(body: _Body, limits: ParseLimits) -> tuple[str, str]:
    text = "\n".join(t for t in body.plain if t)
    html = "\n".join(h for h in body.html if h)
    if len(html) > limits.max_html_chars:
        body.notes.append(f"HTML body cut to {limits.max_html_chars} characters")
        html = html[: limits.max_html_chars]
    if not text.strip() and html:
        text = html_to_text(html)
    html, flattened = flatten_html(html)
    if flattened:
        body.notes.append(f"HTML nested deeper than {MAX_HTML_DEPTH} levels; flattened")
    if len(text) > limits.max_text_chars:
        body.notes.append(f"body text cut to {limits.max_text_chars} characters")
        text = text[: limits.max_text_chars]
    return text, html


def _walk(message: Message, body: _Body, limits: ParseLimits) -> None:
    for part in message.walk():
        body.defects.update(type(d).__name__ for d in part.defects)
        if part.is_multipart():
            continue
        ctype = part.get_content_type()
        disposition = (part.get_content_disposition() or "").lower()
        filename = _filename(part)
        if ctype in ("text/plain", "text/html") and disposition != "attachment" and not filename:
            payload = part.get_payload(decode=True)
            if isinstance(payload, bytes):
                text = decode_bytes(payload, part.get_content_charset()).replace("\r\n", "\n")
                (body.plain if ctype == "text/plain" else body.html).append(text)
            continue
        if ctype.startswith("message/") and not filename:
            continue  # walk() goes into the forwarded message's own parts
        _attachment(part, ctype, disposition, filename, body, limits)


_RAW_NAME = re.compile(r"""\b(?:file)?name\s*=\s*(?:"([^"]*)"|([^;\s]+))""", re.IGNORECASE)


def _filename(part: Message) -> str:
    if (
        "content-disposition" not in part
        and "name" not in str(part.get("content-type", "")).lower()
    ):
        return ""  # nowhere for a name to be; the full lookup parses parameters thrice
    try:
        name = part.get_filename() or part.get_param("name") or ""
    except Exception:
        name = ""
    if isinstance(name, tuple):  # RFC 2231 triple left undecoded by get_param
        name = decode_bytes(name[2].encode("latin-1", "replace"), name[0])
    name = str(name)
    if "\ufffd" in name or (not name and "name" in str(part.get("content-disposition", ""))):
        # Raw 8-bit bytes in the parameter: the stdlib replaced them; reread.
        for header in ("content-disposition", "content-type"):
            for value in hdr.raw_values(part, header):
                found = _RAW_NAME.search(value)
                if found:
                    return header_text(found.group(1) or found.group(2) or "")
    return header_text(name)


def _estimated_size(part: Message) -> int:
    """Decoded size without decoding: base64 is 3/4 of its text, others ~1."""
    payload = part.get_payload()
    length = len(payload) if isinstance(payload, str | bytes) else 0
    cte = str(part.get("content-transfer-encoding", "")).strip().lower()
    return length * 3 // 4 if cte == "base64" else length


def _attachment(
    part: Message,
    ctype: str,
    disposition: str,
    filename: str,
    body: _Body,
    limits: ParseLimits,
) -> None:
    index = len(body.attachments)
    name = safe_filename(filename, f"attachment-{index + 1}")
    dropped = ""
    data = b""
    size = _estimated_size(part)
    if index >= limits.max_attachments:
        dropped = f"more than {limits.max_attachments} attachments"
    elif size > limits.max_attachment_bytes * 1.05 + 1024:
        dropped = f"about {size} bytes, over the limit of {limits.max_attachment_bytes}"
    else:
        payload = part.get_payload(decode=True)
        data = payload if isinstance(payload, bytes) else b""
        size = len(data)
        if size > limits.max_attachment_bytes:
            dropped = f"{size} bytes, over the limit of {limits.max_attachment_bytes}"
            data = b""
        elif tnef.is_tnef(ctype, name, data[:4]) and _unpack_tnef(data, body, limits):
            return
    if dropped:
        body.notes.append(f"attachment {name!r} not stored: {dropped}")
    body.attachments.append(
        Attachment(
            filename=name,
            content_type=ctype[:255],
            data=data,
            size=size,
            content_id=header_text(part.get("content-id", "")).strip("<> ")[:255],
            inline=disposition == "inline",
            dropped_reason=dropped,
        )
    )


def _unpack_tnef(data: bytes, body: _Body, limits: ParseLimits) -> bool:
    content = tnef.unpack(data)
    if content is None:
        return False
    if content.text:
        body.plain.append(content.text)
    if content.html:
        body.html.append(content.html)
    if content.note:
        body.notes.append(content.note)
    for item in content.files:
        index = len(body.attachments)
        name = safe_filename(item.name, f"attachment-{index + 1}")
        dropped = ""
        if index >= limits.max_attachments:
            dropped = f"more than {limits.max_attachments} attachments"
        elif len(item.data) > limits.max_attachment_bytes:
            dropped = f"{len(item.data)} bytes, over the limit of {limits.max_attachment_bytes}"
        if dropped:
            body.notes.append(f"attachment {name!r} not stored: {dropped}")
        body.attachments.append(
            Attachment(
                filename=name,
                content_type=_guess_type(name),
                data=b"" if dropped else item.data,
                size=len(item.data),
                dropped_reason=dropped,
            )
        )
    body.notes.append("winmail.dat (Outlook TNEF) unpacked")
    return True


def _guess_type(name: str) -> str:
    import mimetypes

    return mimetypes.guess_type(name, strict=False)[0] or "application/octet-stream"


_WINDOWS_RESERVED = frozenset(
    {"con", "prn", "aux", "nul"} | {f"com{i}" for i in range(10)} | {f"lpt{i}" for i in range(10)}
)
_UNSAFE = str.maketrans({ch: "_" for ch in '<>:"|?*'})
MAX_FILENAME_BYTES = 200


def safe_filename(name: str, fallback: str = "attachment") -> str:
    """A name that is safe to show and to store on any OS.

    No directories (``../``, ``C:\\``), no NUL/control/format characters (which
    include the RTL override that disguises ``exe`` as ``jpg``), no characters
    Windows refuses, no device names, at most 200 UTF-8 bytes with the
    extension kept.
    """
    name = unicodedata.normalize("NFC", name[:4096])
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(ch for ch in name if unicodedata.category(ch)[0] != "C")
    name = name.translate(_UNSAFE)
    name = name.strip().lstrip(".").rstrip(". ").strip()
    if not name:
        return fallback
    if name.split(".", 1)[0].lower() in _WINDOWS_RESERVED:
        name = f"_{name}"
    encoded = name.encode("utf-8")
    if len(encoded) > MAX_FILENAME_BYTES:
        _stem, dot, ext = name.rpartition(".")
        ext = ext[:16] if dot and len(ext) <= 16 else ""
        keep = encoded[: MAX_FILENAME_BYTES - len(ext) - 1].decode("utf-8", errors="ignore")
        name = f"{keep}.{ext}" if ext else keep
    return name
