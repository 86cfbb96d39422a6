"""Text from bytes whose charset is missing, wrong or unknown.

Real mail lies about charsets: GBK labelled gb2312, raw 8-bit headers,
Windows-1252 labelled iso-8859-1. mail-parser and the standard library then
silently drop or mangle text; these helpers try a short, ordered chain and
only fall back to replacement characters when the declared charset is right
for nearly all of the text (one corrupted byte in a long UTF-8 body must not
turn the whole body into cp1252 mojibake).
"""

from __future__ import annotations

import codecs
import re
from email.header import Header, decode_header

# Labels that are routinely used for a superset encoding.
_SUPERSETS = {
    "gb2312": "gb18030",
    "gbk": "gb18030",
    "x-gbk": "gb18030",
    "cp936": "gb18030",
    "iso-8859-1": "cp1252",
    "iso8859-1": "cp1252",
    "latin1": "cp1252",
    "latin-1": "cp1252",
    "us-ascii": "utf-8",
    "ascii": "utf-8",
    "ansi_x3.4-1968": "utf-8",
    "ks_c_5601-1987": "cp949",
    "euc-kr": "cp949",
    "shift_jis": "cp932",
    "shift-jis": "cp932",
    "x-sjis": "cp932",
    "big5": "big5hkscs",
    "iso-8859-8-i": "iso-8859-8",
    "utf8": "utf-8",
    "unicode-1-1-utf-7": "utf-7",
    "unknown-8bit": "",
    "x-unknown": "",
    "unknown": "",
    "default": "",
    "charset": "",
}
# Codecs Python knows but that are never a mail charset and would "succeed"
# on anything (or transform bytes): treat the label as undeclared.
_NOT_TEXT = {"base64", "hex", "quopri", "rot13", "uu", "zlib", "bz2", "punycode", "idna"}
# Share of undecodable bytes under which the declared charset is trusted and
# the few bad bytes become U+FFFD (sender-side corruption of single bytes).
_DAMAGE_RATIO = 0.002
_HEADER_CAP = 16 * 1024


def known_codec(label: str | None) -> str | None:
    """Python codec name for a MIME charset label, or None if it is not usable."""
    if not label:
        return None
    name = label.strip().strip("\"'").lower()[:64]
    name = _SUPERSETS.get(name, name)
    if not name:
        return None
    try:
        codec = codecs.lookup(name)
    except (LookupError, ValueError):
        return None
    if codec.name in _NOT_TEXT or not getattr(codec, "_is_text_encoding", True):
        return None
    return codec.name


def _errors(data: bytes, codec: str) -> int:
    """Number of undecodable spots; only called once strict decoding failed."""
    decoded = data.decode(codec, errors="replace")
    return decoded.count("\ufffd") - data.count(b"\xef\xbf\xbd")


def decode_bytes(data: bytes, charset: str | None = None) -> str:
    """Declared charset (or its superset), then UTF-8, then cp1252; never raise.

    When every candidate fails strictly, the declared charset (or UTF-8 when
    none was declared) is used with replacement if its damage is tiny; else
    cp1252, and latin-1 as the last resort, which decodes any byte.
    """
    declared = known_codec(charset)
    candidates = [c for c in (declared, "utf-8") if c]
    for codec in candidates:
        try:
            return data.decode(codec)
        except (UnicodeDecodeError, LookupError):
            continue
    if declared and _errors(data, declared) <= len(data) * _DAMAGE_RATIO:
        return data.decode(declared, errors="replace")
    try:
        return data.decode("cp1252")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def _from_surrogates(value: str) -> str:
    """compat32 keeps undecodable header octets as surrogate escapes: redo them."""
    raw = value.encode("utf-8", "surrogateescape")
    return decode_bytes(raw)


def header_text(value: str | Header | None) -> str:
    """An RFC 2047 / raw 8-bit header value as clean, single-line text."""
    if value is None:
        return ""
    if isinstance(value, Header):
        try:
            chunks = decode_header(value)
        except Exception:
            return _single_line(str(value)[:_HEADER_CAP])
        return _single_line("".join(_chunk_text(chunk, cs) for chunk, cs in chunks))
    value = str(value)[:_HEADER_CAP]
    if _ESCAPED_OCTETS.search(value):
        value = _from_surrogates(value)
    if "=?" not in value:  # no encoded-word: decode_header would return it as it is
        return _single_line(value)
    try:
        chunks = decode_header(value)
    except Exception:  # invalid encoded-words raise several unrelated types
        return _single_line(_ENCODED_WORD.sub(_one_word, value))
    return _single_line("".join(_chunk_text(chunk, cs) for chunk, cs in chunks))


# Raw 8-bit octets that compat32 kept as surrogate escapes.
_ESCAPED_OCTETS = re.compile("[\udc80-\udcff]")
_ENCODED_WORD = re.compile(r"=\?[^?\s]{1,64}\?[qQbB]\?[^?]*\?=")


def _one_word(match: re.Match[str]) -> str:
    """Decode one encoded-word on its own; an invalid one stays as written."""
    try:
        return "".join(_chunk_text(c, cs) for c, cs in decode_header(match.group(0)))
    except Exception:
        return match.group(0)


def _chunk_text(chunk: str | bytes, charset: str | None) -> str:
    if isinstance(chunk, str):
        return chunk
    if charset in (None, "unknown-8bit"):
        return decode_bytes(chunk)
    return decode_bytes(chunk, charset)


# Bidi embedding/override/isolate controls: they let a name like
# "invoice\u202egpj.exe" display as "invoiceexe.jpg".
_BIDI = frozenset("\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u061c")


# One C-speed pass: folding whitespace becomes a space; other controls, DEL and
# bidi controls go. (This ran per character in Python for every header.)
_LINE_TABLE = {
    **{code: None for code in range(0x20)},
    **{ord(ch): " " for ch in "\r\n\t"},
    0x7F: None,
    **{ord(ch): None for ch in _BIDI},
}
_SURROGATES = re.compile("[\ud800-\udfff]")


def _single_line(text: str) -> str:
    """Folded headers, control and bidi characters never reach the store."""
    cleaned = _SURROGATES.sub("", text.translate(_LINE_TABLE))
    return " ".join(cleaned.split())
