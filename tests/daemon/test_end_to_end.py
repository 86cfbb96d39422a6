"""The whole product in one process, as the requester meets it.

A mail APPENDed to the real Dovecot becomes a ticket; the acknowledgement
arrives at the real SMTP sink in the sender's language; its tracking link
opens the status page served by the same daemon; /healthz reports the
mailbox and rules as healthy; SIGTERM stops it all with exit code 0.
"""

from __future__ import annotations

import asyncio
import re
import signal
import subprocess
import sys
import time
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path

import httpx
import pytest

from tests.daemon.test_daemon import daemon_env
from tests.servers.mailbox import TestMailbox, make_mail
from tests.servers.ports import free_port
from tests.servers.smtp_sink import SmtpSink

pytestmark = pytest.mark.imap


def text_of(raw: bytes) -> str:
    message = message_from_bytes(raw, policy=policy.default)
    assert isinstance(message, EmailMessage)
    body = message.get_body(("plain",))
    assert body is not None
    return str(body.get_content())


async def wait_until(predicate: object, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return
        await asyncio.sleep(0.1)
    raise AssertionError("condition not reached in time")


async def test_mail_to_ack_to_status_page(
    imap_mailbox: TestMailbox, smtp_sink: SmtpSink, db_url: str, tmp_path: Path
) -> None:
    port = free_port()
    env = daemon_env(
        imap_mailbox, db_url, tmp_path / "data",
        SERVICEDESK_SMTP__HOST="127.0.0.1", SERVICEDESK_SMTP__PORT=str(smtp_sink.port),
        SERVICEDESK_WEB__PORT=str(port), SERVICEDESK_WEB__BASE_URL=f"http://127.0.0.1:{port}",
    )  # fmt: skip
    proc = subprocess.Popen(
        [sys.executable, "-m", "servicedesk", "run"], env=env,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=5) as client:
            await _wait_http(client)
            imap_mailbox.append(
                make_mail("Glömt lösenord", "Hej, jag har glömt mitt lösenord och kommer inte in.",
                          from_="Erik Lindqvist <erik.lindqvist@eksote.fi>")
            )  # fmt: skip
            await wait_until(lambda: len(smtp_sink.messages) >= 1, 20)
            ack = smtp_sink.messages[0]
            assert list(ack.rcpt_tos) == ["erik.lindqvist@eksote.fi"]
            body = text_of(ack.data)
            assert "[SD-000001]" in message_from_bytes(ack.data)["Subject"]
            assert "lösenord" in body.lower()  # Swedish, and about the password
            link = re.search(rf"http://127\.0\.0\.1:{port}/t/[a-z2-7]{{32}}", body)
            assert link, body
            page = await client.get(link.group(0))
            assert page.status_code == 200
            assert "SD-000001" in page.text
            assert (await client.get("/t/SD-000001")).status_code == 404
            health = await client.get("/healthz")
            assert health.status_code == 200, health.text
            metrics = (await client.get("/metrics")).text
            assert 'servicedesk_mails_ingested_total{action="created"} 1' in metrics
            assert "servicedesk_ingest_seconds_count 1" in metrics
            assert 'servicedesk_ingest_seconds_bucket{le="+Inf"} 1' in metrics
            assert imap_mailbox.count("INBOX") == 0
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(20)
    assert code == 0, proc.stderr.read().decode()[-3000:] if proc.stderr else ""


async def _wait_http(client: httpx.AsyncClient) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if (await client.get("/healthz")).status_code in (200, 503):
                return
        except httpx.TransportError:
            pass
        await asyncio.sleep(0.2)
    raise AssertionError("web part did not come up")
