"""Text from bytes whose charset is missing, wrong or unknown.

Real mail lies about charsets: GBK labelled gb2312, raw 8-bit headers,
Windows-1252 labelled iso-8859-1. mail-parser and the standard library then
silently drop or mangle text; these helpers try a short, ordered chain and
only fall back to replacement characters when every candidate fails.
"""

from __future__ import annotations

import codecs
from email.header import Header, decode_header

# Labels that are routinely used for a superset encoding.
_SUPERSETS = {
    "gb2312": "gb18030",
    "gbk": "gb18030",
    "x-gbk": "gb18030",
    "iso-8859-1": "cp1252",
    "latin1": "cp1252",
    "latin-1": "cp1252",
    "us-ascii": "utf-8",
    "ascii": "utf-8",
    "ks_c_5601-1987": "cp949",
    "euc-kr": "cp949",
    "shift_jis": "cp932",
    "x-sjis": "cp932",
    "unknown-8bit": "",
    "x-unknown": "",
    "unknown": "",
    "default": "",
}


def known_codec(label: str | None) -> str | None:
    """Python codec name for a MIME charset label, or None if it is not usable."""
    if not label:
        return None
    name = label.strip().strip('"').lower()
    name = _SUPERSETS.get(name, name)
    if not name:
        return None
    try:
        return codecs.lookup(name).name
    except LookupError:
        return None


def decode_bytes(data: bytes, charset: str | None = None) -> str:
    """Decode with the declared charset, then UTF-8, then cp1252; never raise."""
    candidates: list[str] = []
    declared = known_codec(charset)
    if declared:
        candidates.append(declared)
    candidates += ["utf-8", "cp1252"]
    for codec in candidates:
        try:
            return data.decode(codec)
        except (UnicodeDecodeError, LookupError):
            continue
    return data.decode(declared or "utf-8", errors="replace")


def header_text(value: str | Header | None) -> str:
    """An RFC 2047 / raw 8-bit header value as clean, single-line text."""
    if value is None:
        return ""
    if isinstance(value, str) and max(value, default="\x00") >= "\udc80":
        # compat32 keeps undecodable octets as surrogate escapes.
        value = value.encode("ascii", "surrogateescape").decode("latin-1")
        value = decode_bytes(value.encode("latin-1"))
    try:
        chunks = decode_header(value)
    except (ValueError, AssertionError, LookupError, TypeError):
        return _single_line(str(value))
    parts: list[str] = []
    for chunk, charset in chunks:
        if isinstance(chunk, str):
            parts.append(chunk)
        else:
            parts.append(decode_bytes(chunk, charset))
    return _single_line("".join(parts))


def _single_line(text: str) -> str:
    """Folded headers and stray control characters never reach the store."""
    cleaned = "".join(" " if ch in "\r\n\t" else ch for ch in text if ch >= " " or ch in "\r\n\t")
    return " ".join(cleaned.split())
