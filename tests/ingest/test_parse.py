"""Parsing real-world mail shapes into InboundMail, and refusing what is not mail."""

from __future__ import annotations

from ingest.decode import decode_bytes, header_text
from ingest.htmltext import html_to_text
from ingest.parse import ParseLimits, Unparseable, parse_mail, safe_filename


def mail(headers: str, body: str = "Hei", *, raw_body: bytes | None = None) -> bytes:
    data = headers.strip().replace("\n", "\r\n").encode() + b"\r\n\r\n"
    return data + (raw_body if raw_body is not None else body.encode())


def test_plain_mail_fields() -> None:
    raw = mail(
        """From: Maija Virtanen <Maija.Virtanen@Eksote.fi>
To: servicedesk@example.org, "Boss" <boss@eksote.fi>
Cc: colleague@eksote.fi
Subject: =?utf-8?q?Salasana_vanhentunut?=
Message-ID: <abc.123@eksote.fi>
In-Reply-To: <prev@x>
References: <first@x> <prev@x>
Content-Type: text/plain; charset=utf-8""",
        "Hei, salasanani vanheni.",
    )
    parsed = parse_mail(raw)
    assert not isinstance(parsed, Unparseable)
    assert parsed.sender is not None and parsed.sender.email == "maija.virtanen@eksote.fi"
    assert parsed.sender.name == "Maija Virtanen"
    assert [a.email for a in parsed.to] == ["servicedesk@example.org", "boss@eksote.fi"]
    assert [a.email for a in parsed.cc] == ["colleague@eksote.fi"]
    assert parsed.subject == "Salasana vanhentunut"
    assert parsed.message_id == "abc.123@eksote.fi"
    assert parsed.in_reply_to == "prev@x"
    assert parsed.references == ("first@x", "prev@x")
    assert parsed.text.strip() == "Hei, salasanani vanheni."
    assert parsed.size == len(raw)


def test_html_only_mail_becomes_readable_text() -> None:
    raw = mail(
        "From: a@b.fi\nSubject: x\nContent-Type: text/html; charset=utf-8",
        "<html><body><p>Tulostin <b>ei</b> toimi.</p><script>alert(1)</script></body></html>",
    )
    parsed = parse_mail(raw)
    assert not isinstance(parsed, Unparseable)
    assert parsed.text == "Tulostin ei toimi."
    assert "<script>" in parsed.html  # kept raw; sanitised when stored


def test_undeclared_8bit_subject_and_body_fall_back() -> None:
    raw = b"From: a@b.fi\r\nSubject: Ty\xc3\xb6todistus\r\n\r\nP\xe4iv\xe4\xe4"
    parsed = parse_mail(raw)
    assert not isinstance(parsed, Unparseable)
    assert parsed.subject == "Työtodistus"
    assert "\ufffd" not in parsed.text


def test_gb2312_label_decodes_as_gb18030() -> None:
    assert decode_bytes("你好".encode("gb18030"), "gb2312") == "你好"
    assert header_text("=?unknown-charset?q?caf=C3=A9?=") == "café"


def test_from_without_brackets_falls_back() -> None:
    parsed = parse_mail(mail("From: Maija maija@eksote.fi\nSubject: x"))
    assert not isinstance(parsed, Unparseable)
    assert parsed.sender is not None and parsed.sender.email == "maija@eksote.fi"


def test_sender_fallback_to_return_path() -> None:
    parsed = parse_mail(mail("From: nobody\nReturn-Path: <real@eksote.fi>\nSubject: x"))
    assert not isinstance(parsed, Unparseable)
    assert parsed.sender is not None and parsed.sender.email == "real@eksote.fi"


def test_not_a_mail_is_unparseable_with_reason() -> None:
    assert isinstance(parse_mail(b""), Unparseable)
    result = parse_mail(b"just some bytes\x00\x01 without headers")
    assert isinstance(result, Unparseable)
    assert "sender" in result.reason


def test_header_bomb_is_refused() -> None:
    headers = "From: a@b.fi\n" + "\n".join(f"X-H{i}: v" for i in range(50))
    result = parse_mail(mail(headers), ParseLimits(max_headers=20))
    assert isinstance(result, Unparseable)
    assert "header lines" in result.reason


def test_attachment_kept_and_oversize_dropped_with_note() -> None:
    raw = mail(
        """From: a@b.fi
Subject: liite
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="XX\"""",
        raw_body=(
            b"--XX\r\nContent-Type: text/plain\r\n\r\nKatso liite\r\n"
            b"--XX\r\nContent-Type: application/pdf\r\n"
            b'Content-Disposition: attachment; filename="../../etc/verokortti.pdf"\r\n'
            b"Content-Transfer-Encoding: base64\r\n\r\nJVBERi0xLjQK\r\n"
            b"--XX\r\nContent-Type: application/octet-stream\r\n"
            b'Content-Disposition: attachment; filename="big.bin"\r\n'
            b"Content-Transfer-Encoding: base64\r\n\r\n" + b"QUFB" * 100 + b"\r\n--XX--\r\n"
        ),
    )
    parsed = parse_mail(raw, ParseLimits(max_attachment_bytes=100))
    assert not isinstance(parsed, Unparseable)
    first, second = parsed.attachments
    assert first.filename == "verokortti.pdf"
    assert first.data == b"%PDF-1.4\n"
    assert second.data == b"" and second.size == 300 and "over the limit" in second.dropped_reason
    assert any("big.bin" in note for note in parsed.notes)


def test_safe_filename() -> None:
    assert safe_filename("..\\..\\windows\\system32\\evil.exe") == "evil.exe"
    assert safe_filename("a\x00b\u202etxt.exe") == "abtxt.exe"
    assert safe_filename("...") == "attachment"
    long = safe_filename("x" * 500 + ".pdf")
    assert long.endswith(".pdf") and len(long.encode()) <= 200


def test_html_to_text_is_linear_on_many_links() -> None:
    html = "<p>" + "".join(f'<a href="https://x/{i}">l{i}</a> ' for i in range(50_000)) + "</p>"
    text = html_to_text(html)
    assert text.startswith("l0 l1") and text.endswith("l49999")
