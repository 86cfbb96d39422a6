"""Machine-sent mail is recognised; people's mail is not."""

from __future__ import annotations

import pytest

from ingest.guards import automatic
from ingest.parse import Unparseable, parse_mail

BASE = "From: Maija <maija@eksote.fi>\r\nTo: servicedesk@example.org\r\nSubject: {subject}\r\n{extra}\r\nHei"


def parsed(extra: str = "", subject: str = "Tulostin rikki", sender: str = "") -> object:
    raw = BASE.format(subject=subject, extra=extra)
    if sender:
        raw = raw.replace("maija@eksote.fi", sender)
    result = parse_mail(raw.encode())
    assert not isinstance(result, Unparseable)
    return result


@pytest.mark.parametrize(
    ("extra", "kind"),
    [
        ("Auto-Submitted: auto-replied\r\n", "auto_reply"),
        ("Auto-Submitted: auto-generated\r\n", "auto_reply"),
        ("Return-Path: <>\r\n", "bounce"),
        ("Content-Type: multipart/report; report-type=delivery-status; boundary=x\r\n", "bounce"),
        ("List-Id: <staff.eksote.fi>\r\n", "list"),
        ("List-Unsubscribe: <mailto:u@x>\r\n", "list"),
        ("Precedence: bulk\r\n", "bulk"),
        ("Precedence: list\r\n", "list"),
        ("X-Auto-Response-Suppress: All\r\n", "auto_reply"),
        ("X-Autoreply: yes\r\n", "auto_reply"),
    ],
)
def test_header_signals(extra: str, kind: str) -> None:
    hit = automatic(parsed(extra))  # type: ignore[arg-type]
    assert hit is not None and hit.kind == kind


@pytest.mark.parametrize(
    "subject",
    [
        "Automaattinen vastaus: Tulostin",
        "Automatic reply: printer",
        "Autosvar: skrivare",
        "Out of Office: x",
    ],
)
def test_out_of_office_subjects(subject: str) -> None:
    hit = automatic(parsed(subject=subject))  # type: ignore[arg-type]
    assert hit is not None and hit.kind == "auto_reply"


def test_mailer_daemon_and_own_address() -> None:
    hit = automatic(parsed(sender="MAILER-DAEMON@mx.eksote.fi"))  # type: ignore[arg-type]
    assert hit is not None and hit.kind == "bounce"
    hit = automatic(parsed(sender="servicedesk@example.org"), ("servicedesk@example.org",))  # type: ignore[arg-type]
    assert hit is not None and hit.kind == "loop"


def test_person_mail_passes() -> None:
    assert automatic(parsed("Auto-Submitted: no\r\nPrecedence: normal\r\n")) is None  # type: ignore[arg-type]
    assert automatic(parsed(subject="Re: automaattinen vastaus ei toimi")) is None  # type: ignore[arg-type]
