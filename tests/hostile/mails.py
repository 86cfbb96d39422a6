"""The crafted hostile set, generated in code so the repository holds no bombs.

Each builder returns raw bytes (or writes them, for the 100 MB case); the
tests and bench/hostile.py share these so both measure the same mails.
"""

from __future__ import annotations

import base64
import struct
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

HEAD = (
    "From: Maija Virtanen <maija.virtanen@eksote.fi>\r\n"
    "To: servicedesk@example.org\r\n"
    "Subject: {subject}\r\n"
    "Message-ID: <{mid}@eksote.fi>\r\n"
    "Date: Mon, 3 Mar 2025 09:00:00 +0200\r\n"
    "MIME-Version: 1.0\r\n"
)


def head(subject: str, mid: str, extra: str = "") -> bytes:
    return (HEAD.format(subject=subject, mid=mid) + extra).encode()


def ordinary(mid: str = "ordinary") -> bytes:
    return head("Tulostin ei toimi", mid, "Content-Type: text/plain; charset=utf-8\r\n") + (
        b"\r\nHei, kolmannen kerroksen tulostin ei tulosta. Terveisin Maija\r\n"
    )


def html_links(n: int = 50_000, mid: str = "links") -> bytes:
    body = "<html><body>" + "".join(f'<a href="http://x.example/{i}">l{i}</a> ' for i in range(n))
    return (
        head("Linkit", mid, "Content-Type: text/html; charset=utf-8\r\n\r\n")
        + (body + "</body></html>").encode()
    )


def nested_tags(depth: int = 100_000, mid: str = "nested") -> bytes:
    body = "<div>" * depth + "syvällä" + "</div>" * depth
    return head("Sisäkkäin", mid, "Content-Type: text/html; charset=utf-8\r\n\r\n") + body.encode()


def many_parts(n: int = 10_000, mid: str = "parts") -> bytes:
    b = "BOUNDARY"
    parts = "".join(f"--{b}\r\nContent-Type: text/plain\r\n\r\npart {i}\r\n" for i in range(n))
    extra = f'Content-Type: multipart/mixed; boundary="{b}"\r\n\r\n'
    return head("Osia", mid, extra) + (parts + f"--{b}--\r\n").encode()


def deep_mime(depth: int = 2_000, mid: str = "deep") -> bytes:
    opening = "".join(
        f'--b{i - 1}\r\nContent-Type: multipart/mixed; boundary="b{i}"\r\n\r\n'
        for i in range(1, depth)
    )
    closing = "".join(f"--b{i}--\r\n" for i in range(depth - 1, -1, -1))
    extra = 'Content-Type: multipart/mixed; boundary="b0"\r\n\r\n'
    return head("Syvä", mid, extra) + (opening + f"--b{depth - 1}\r\n\r\nhi\r\n" + closing).encode()


def header_bomb(n: int = 100_000, mid: str = "hbomb") -> bytes:
    return head("Otsakkeita", mid) + b"".join(b"X-H%d: v\r\n" % i for i in range(n)) + b"\r\nx"


def long_header(size: int = 2_000_000, mid: str = "hlong") -> bytes:
    return head("Pitkä", mid, "X-Long: " + "a" * size + "\r\n") + b"\r\nx"


def recipients_bomb(n: int = 5_000, mid: str = "rcpt") -> bytes:
    to = ", ".join(f"u{i}@example.org" for i in range(n))
    return head("Kaikille", mid, f"Cc: {to}\r\n") + b"\r\nHei kaikki"


def attachment_mail(name: str, data: bytes, mid: str, ctype: str = "application/pdf") -> bytes:
    b = "ATT"
    body = (
        f"--{b}\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nLiitteenä tiedosto.\r\n"
        f"--{b}\r\nContent-Type: {ctype}\r\nContent-Transfer-Encoding: base64\r\n"
        f'Content-Disposition: attachment; filename="{name}"\r\n\r\n'
    ).encode()
    encoded = base64.encodebytes(data)
    extra = f'Content-Type: multipart/mixed; boundary="{b}"\r\n\r\n'
    return head("Liite", mid, extra) + body + encoded + f"\r\n--{b}--\r\n".encode()


def traversal_names(mid: str = "names") -> bytes:
    names = [
        "../../../../etc/passwd",
        "..\\..\\windows\\system32\\evil.exe",
        "C:\\boot.ini",
        "a\x00b.txt",
        "lasku\u202egpj.exe",
        "x" * 600 + ".pdf",
        "CON.txt",
        "=?utf-8?q?..=2F..=2Fetc=2Fshadow?=",
        "\x1b[31mred\x07.txt",
        "",
    ]
    b = "NM"
    parts = "".join(
        f"--{b}\r\nContent-Type: application/octet-stream\r\n"
        f'Content-Disposition: attachment; filename="{n}"\r\n\r\ndata\r\n'
        for n in names
    )
    extra = f'Content-Type: multipart/mixed; boundary="{b}"\r\n\r\n'
    return head("Nimiä", mid, extra) + f"--{b}\r\n\r\nteksti\r\n{parts}--{b}--\r\n".encode(
        "utf-8", "surrogateescape"
    )


def _tnef_object(level: int, name: int, kind: int, data: bytes) -> bytes:
    return (
        struct.pack("<BHHI", level, name, kind, len(data))
        + data
        + struct.pack("<H", sum(data) & 0xFFFF)
    )


def tnef_blob(files: dict[str, bytes], body: str) -> bytes:
    blob = struct.pack("<IH", 0x223E9F78, 1)
    blob += _tnef_object(1, 0x9006, 0x8, struct.pack("<I", 0x10000))  # version
    blob += _tnef_object(1, 0x800C, 0x2, body.encode("cp1252"))
    for name, data in files.items():
        blob += _tnef_object(2, 0x9002, 0x6, b"\x00" * 14)  # starts an attachment
        blob += _tnef_object(2, 0x8010, 0x1, name.encode("cp1252") + b"\x00")
        blob += _tnef_object(2, 0x800F, 0x6, data)
    return blob


def winmail(mid: str = "winmail") -> bytes:
    blob = tnef_blob(
        {"palkkalaskelma.pdf": b"%PDF-1.4 palkka", "../kuva.png": b"\x89PNG"},
        "Hei, liitteenä palkkalaskelma.",
    )
    b = "TN"
    body = (
        f"--{b}\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n\r\n"
        f'--{b}\r\nContent-Type: application/ms-tnef; name="winmail.dat"\r\n'
        "Content-Transfer-Encoding: base64\r\n"
        'Content-Disposition: attachment; filename="winmail.dat"\r\n\r\n'
    ).encode()
    extra = f'Content-Type: multipart/mixed; boundary="{b}"\r\n\r\n'
    return head("Palkka", mid, extra) + body + base64.encodebytes(blob) + f"--{b}--\r\n".encode()


def charset_mess(mid: str = "charsets") -> bytes:
    return (
        b"From: =?x-unknown-cs?q?J=E4rjestelm=E4?= <jarjestelma@eksote.fi>\r\n"
        b"To: servicedesk@example.org\r\n"
        b"Subject: =?utf-8?b?invalid base64!!?= =?gb2312?B?ztKw0b61zbfArb380KmjrMTjw8e/tL+01eK49srHyrLDtIzCo6zV4g==?= \xe4\xf6\r\n"
        b"Message-ID: <" + mid.encode() + b"@eksote.fi>\r\n"
        b"Message-ID: <second@dup>\r\n"
        b"Date: Thu, 1 Jan 1970 00:00:00 +0000\r\n"
        b'Content-Type: text/plain; charset="klingon-8"\r\n\r\n'
        b"P\xe4iv\xe4\xe4, salasana ei k\xe4y.\r\n"
    )


def huge_message_id(mid: str = "") -> bytes:
    return (
        b"From: a@eksote.fi\r\nSubject: iso id\r\nDate: Sat, 1 Jan 2100 00:00:00 +0000\r\n"
        b"Message-ID: <" + b"x" * 100_000 + b"@y>\r\n\r\nhei"
    )


def write_big_attachment(path: Path, size: int = 100 * 1024 * 1024) -> Path:
    """A mail with a ``size``-byte attachment, streamed to disk in 3 MB chunks."""
    chunk = 3 * 1024 * 1024  # a multiple of 3: base64 lines stay aligned
    with path.open("wb") as out:
        out.write(attachment_mail("skannaus.pdf", b"", "big").split(b"\r\n--ATT--")[0])
        written = 0
        block = b"\x00\x01\x02" * (chunk // 3)
        while written < size:
            out.write(base64.encodebytes(block[: min(chunk, size - written)]))
            written += chunk
        out.write(b"\r\n--ATT--\r\n")
    return path


@dataclass(frozen=True)
class Case:
    name: str
    build: Callable[[], bytes]
    expected: str  # the pipeline's action


CASES = (
    Case("ordinary", ordinary, "created"),
    Case("html-50k-links", html_links, "created"),
    Case("nested-tags-100k", nested_tags, "created"),
    Case("mime-10k-parts", many_parts, "quarantined"),
    Case("mime-depth-2000", deep_mime, "quarantined"),
    Case("header-bomb-100k", header_bomb, "quarantined"),
    Case("header-2mb-line", long_header, "quarantined"),
    Case("recipients-5000", recipients_bomb, "quarantined"),
    Case("traversal-names", traversal_names, "created"),
    Case("winmail-dat", winmail, "created"),
    Case("charset-mess", charset_mess, "created"),
    Case("huge-message-id", huge_message_id, "created"),
)
