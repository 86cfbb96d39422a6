"""Outlook's ``winmail.dat`` (application/ms-tnef) unpacked into body and files.

Exchange sends rich-text mail as one opaque TNEF attachment; stored as such,
the requester's real attachments and often the whole body are invisible to
agents. ``tnefparse`` does the decoding; this module only bounds it (input
size, number of files) and turns its objects into plain values. A TNEF blob
that cannot be decoded is kept as the attachment it was.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

TNEF_TYPES = frozenset({"application/ms-tnef", "application/vnd.ms-tnef"})
# tnefparse copies the remaining buffer for every object it reads, so its cost
# grows with size x objects; past this size the blob is kept undecoded.
MAX_TNEF_BYTES = 32 * 1024 * 1024
MAX_FILES = 200
SIGNATURE = b"\x78\x9f\x3e\x22"

# tnefparse logs a warning per odd object; a hostile blob must not flood logs.
logging.getLogger("tnefparse").setLevel(logging.ERROR)


@dataclass(frozen=True, slots=True)
class TnefFile:
    name: str
    data: bytes


@dataclass(frozen=True, slots=True)
class TnefContent:
    text: str
    html: str
    files: tuple[TnefFile, ...]
    note: str = ""


def is_tnef(content_type: str, filename: str, data_head: bytes) -> bool:
    if content_type in TNEF_TYPES or filename.lower() in ("winmail.dat", "win.dat"):
        return data_head.startswith(SIGNATURE)
    return False


def _text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bytes):
        from ingest.decode import decode_bytes

        return decode_bytes(value.rstrip(b"\x00"))
    return str(value).rstrip("\x00")


def unpack(data: bytes) -> TnefContent | None:
    """Body and files of a TNEF blob; None when it is not usable TNEF."""
    if len(data) > MAX_TNEF_BYTES or not data.startswith(SIGNATURE):
        return None
    try:
        from tnefparse import TNEF

        parsed = TNEF(data, do_checksum=False)
        files: list[TnefFile] = []
        for attachment in parsed.attachments:
            if len(files) >= MAX_FILES:
                break
            payload = attachment.data
            if not isinstance(payload, bytes | bytearray) or not payload:
                continue
            name = _text(attachment.long_filename()) or _text(attachment.name)
            files.append(TnefFile(name=name, data=bytes(payload)))
        text = _text(parsed.body)
        html = _text(parsed.htmlbody)
    except Exception:  # tnefparse raises many types on truncated or crafted blobs
        return None
    note = ""
    if len(parsed.attachments) > MAX_FILES:
        note = f"winmail.dat holds {len(parsed.attachments)} files; first {MAX_FILES} kept"
    if not (text or html or files):
        return None
    return TnefContent(text=text, html=html, files=tuple(files), note=note)
