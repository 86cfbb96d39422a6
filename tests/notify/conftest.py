"""Fixtures for mail conversations against a real SMTP server (aiosmtpd on loopback).

``desk`` opens a runtime whose SMTP settings point at the shared ``smtp_sink``
(tests/servers) and whose classifier obeys an ``X-Test-Route`` header, so a
test can say which category, language and organisation a mail gets without
depending on the rules file.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

import pytest

from classify.decision import Decision
from ingest.budget import BudgetParser
from ingest.mail import InboundMail
from ingest.outcome import Outcome, SourceRef
from notify.worker import OutboxWorker
from servicedesk.runtime import Runtime, open_runtime
from servicedesk.settings import Settings
from tests.servers.fixtures import smtp_sink  # noqa: F401  (fixture)
from tests.servers.smtp_sink import SmtpSink

BASE_URL = "https://desk.example.org"
DESK = "servicedesk@example.org"


def route(mail: InboundMail) -> Decision:
    """``X-Test-Route: <subcategory> <language> [organisation]``; defaults it.advice fi."""
    parts = mail.header("x-test-route").split()
    sub = parts[0] if parts else "it.advice"
    language = parts[1] if len(parts) > 1 else "fi"
    org = parts[2] if len(parts) > 2 else "etela-karjala"
    return Decision(sub.split(".")[0], sub, org, "normal", language, "test-route", ("test",))


def route_by_hand(runtime: Runtime) -> None:
    """Routing is not under test: use ``route`` instead of the rules the parse workers apply."""
    runtime.pipeline.classifier = route
    assert isinstance(runtime.pipeline.parser, BudgetParser)
    runtime.pipeline.parser.router = None


def make_mail(
    *,
    sender: str = "maija.meikalainen@eksote.fi",
    name: str = "Maija Meikäläinen",
    subject: str = "Tulostin ei toimi",
    body: str = "Hei, tulostin ei tulosta.",
    message_id: str = "m1@eksote.fi",
    route_to: str = "",
    to: str = DESK,
    extra: str = "",
) -> bytes:
    lines = [
        f"From: {name} <{sender}>" if name else f"From: {sender}",
        f"To: {to}",
        f"Subject: {subject}",
        f"Message-ID: <{message_id}>",
        "Date: Mon, 03 Jun 2024 09:00:00 +0300",
        "MIME-Version: 1.0",
    ]
    if route_to:
        lines.append(f"X-Test-Route: {route_to}")
    head = "\r\n".join(lines) + "\r\n" + extra
    return (head + "Content-Type: text/plain; charset=utf-8\r\n\r\n" + body).encode()


def src(name: str = "test") -> SourceRef:
    return SourceRef("file", name)


@dataclass
class Desk:
    runtime: Runtime
    worker: OutboxWorker
    sink: SmtpSink

    async def ingest(self, raw: bytes) -> Outcome:
        return await self.runtime.pipeline.process(raw, src())

    def received(self) -> list[EmailMessage]:
        found = []
        for item in self.sink.messages:
            parsed = message_from_bytes(item.data, policy=policy.default)
            assert isinstance(parsed, EmailMessage)
            found.append(parsed)
        return found


def text_of(message: EmailMessage, subtype: str = "plain") -> str:
    part = message.get_body(preferencelist=(subtype,))
    assert part is not None
    content = part.get_content()
    assert isinstance(content, str)
    return content


@pytest.fixture
def desk_settings(
    db_url: str,
    make_settings: Callable[..., Settings],
    smtp_sink: SmtpSink,  # noqa: F811  (the fixture imported above)
) -> Callable[..., Settings]:
    def build(**sections: dict[str, Any]) -> Settings:
        smtp = {**smtp_sink.settings_overrides(), "backoff_seconds": 0.05, "max_attempts": 3,
                "timeout_seconds": 5, "from_address": DESK, **sections.pop("smtp", {})}  # fmt: skip
        web = {"base_url": BASE_URL, **sections.pop("web", {})}
        return make_settings(db_url, smtp=smtp, web=web, **sections)

    return build


@pytest.fixture
async def desk(
    desk_settings: Callable[..., Settings],
    smtp_sink: SmtpSink,  # noqa: F811
) -> AsyncIterator[Desk]:
    async with open_runtime(desk_settings()) as runtime:
        route_by_hand(runtime)
        worker = OutboxWorker(runtime.sessions, runtime.settings, runtime.secret_key)
        yield Desk(runtime, worker, smtp_sink)
