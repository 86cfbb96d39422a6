"""Webhooks: each ticket event reaches the mirror signed, retried, and recognisable on repeat."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from sqlalchemy import select

from ingest.outcome import SourceRef
from notify.webhooks import SIGNATURE_HEADER, WebhookWorker
from servicedesk.runtime import open_runtime
from servicedesk.settings import ConfigError, Settings, load_settings
from store.actions import change_status
from store.db import transaction
from store.models import Outbox, Ticket

SECRET = "mirror-secret"
MAIL = (
    b"From: Maija <maija@eksote.fi>\r\nTo: servicedesk@example.org\r\n"
    b"Subject: Tulostin rikki\r\nMessage-ID: <wh1@x>\r\n\r\nTulostin ei tulosta."
)


class Receiver:
    """A loopback HTTP endpoint that records POSTs and can answer errors first."""

    def __init__(self) -> None:
        self.received: list[tuple[dict[str, str], bytes]] = []
        self.fail_next: list[int] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                status = outer.fail_next.pop(0) if outer.fail_next else 204
                if status < 300:
                    outer.received.append((dict(self.headers.items()), body))
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *_args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


def settings_with_hooks(make_settings: Callable[..., Settings], db_url: str, url: str) -> Settings:
    return make_settings(
        db_url, webhooks={"urls": json.dumps([url]), "secret": SECRET, "backoff_seconds": 0.4}
    )


async def test_events_are_posted_signed_and_retried_once_delivered(
    db_url: str, make_settings: Callable[..., Settings], receiver: Receiver
) -> None:
    settings = settings_with_hooks(make_settings, db_url, receiver.url)
    async with open_runtime(settings) as runtime:
        await runtime.pipeline.process(MAIL, SourceRef("file", "m"))
        async with transaction(runtime.sessions) as session:
            ticket = (await session.scalars(select(Ticket))).one()
            await change_status(session, ticket, "resolved", actor="agent:anna")
        receiver.fail_next = [503]  # the mirror is briefly down
        worker = WebhookWorker(runtime.sessions, settings.webhooks)
        first = await worker.drain_once()
        async with runtime.sessions() as session:
            rows = (await session.scalars(select(Outbox).where(Outbox.kind == "webhook"))).all()
        assert len(rows) == 2 and first == 1
        # Retry (after a backoff long enough that the first drain cannot
        # reach it however slow the machine, short enough for a test).
        await asyncio.sleep(0.7)
        assert await worker.drain_once() == 1
        assert await worker.drain_once() == 0
    events = [json.loads(body)["event"] for _, body in receiver.received]
    assert sorted(events) == ["ticket.created", "ticket.status_changed"]
    for headers, body in receiver.received:
        expected = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
        assert headers[SIGNATURE_HEADER] == expected
        assert headers["Idempotency-Key"].startswith("sd-")
    status = next(json.loads(b) for _, b in receiver.received if b"status_changed" in b)
    assert (status["ticket"], status["new"], status["actor"]) == (
        "SD-000001",
        "resolved",
        "agent:anna",
    )


async def test_client_error_fails_without_retry(
    db_url: str, make_settings: Callable[..., Settings], receiver: Receiver
) -> None:
    settings = settings_with_hooks(make_settings, db_url, receiver.url)
    async with open_runtime(settings) as runtime:
        await runtime.pipeline.process(MAIL, SourceRef("file", "m"))
        receiver.fail_next = [410]
        assert await WebhookWorker(runtime.sessions, settings.webhooks).drain_once() == 0
        async with runtime.sessions() as session:
            row = (await session.scalars(select(Outbox).where(Outbox.kind == "webhook"))).one()
        assert (row.state, row.last_error) == ("failed", "HTTP 410")


def test_urls_without_secret_are_refused() -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(None, environ={"SERVICEDESK_WEBHOOKS__URLS": '["https://itsm.example/hook"]'})
    assert "webhooks" in str(caught.value) and "secret" in str(caught.value)


async def test_no_urls_no_rows(runtime: Any) -> None:
    await runtime.pipeline.process(MAIL, SourceRef("file", "m"))
    async with runtime.sessions() as session:
        assert (await session.scalars(select(Outbox).where(Outbox.kind == "webhook"))).all() == []
