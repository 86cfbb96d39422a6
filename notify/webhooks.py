"""Deliver queued webhook rows: signed JSON POSTs, retried with backoff, at least once.

Each POST carries ``X-Servicedesk-Signature: sha256=<hex HMAC of the body>``
and an ``Idempotency-Key`` that is the same on every retry of one event to
one URL, so the receiver can drop repeats: delivery is at-least-once.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import random
from collections.abc import AsyncIterator
from datetime import timedelta

import httpx
import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from notify.worker import backoff
from servicedesk.settings import WebhookSettings
from store import outbox
from store.db import transaction
from store.models import Outbox, utcnow

log = structlog.get_logger("servicedesk.webhooks")

SIGNATURE_HEADER = "X-Servicedesk-Signature"


def signature(key: bytes, body: bytes) -> str:
    return "sha256=" + hmac.new(key, body, hashlib.sha256).hexdigest()


def idempotency_key(row: Outbox) -> str:
    return f"sd-{row.event_id}-{row.id}"


class WebhookWorker:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        settings: WebhookSettings,
        *,
        client: httpx.AsyncClient | None = None,
        poll_seconds: float = 2.0,
        rng: random.Random | None = None,
    ) -> None:
        self.sessions = sessions
        self.settings = settings
        self.key = settings.signing_key() if settings.urls else b""
        self.client = client
        self.poll_seconds = poll_seconds
        self.rng = rng or random.Random()

    async def drain_once(self) -> int:
        async with self._client() as client:
            return await self._drain(client)

    async def run(self, stop: asyncio.Event) -> None:
        async with self._client() as client:
            while not stop.is_set():
                try:
                    await self._drain(client)
                except Exception:  # the database may be away; keep the loop alive
                    log.exception("webhook.drain_failed")
                try:
                    await asyncio.wait_for(stop.wait(), self.poll_seconds)
                except TimeoutError:
                    pass

    @contextlib.asynccontextmanager
    async def _client(self) -> AsyncIterator[httpx.AsyncClient]:
        """The caller's client (tests), else one of our own for this drain or run."""
        if self.client is not None:
            yield self.client
            return
        async with httpx.AsyncClient(
            timeout=self.settings.timeout_seconds, follow_redirects=False
        ) as client:
            yield client

    async def _drain(self, client: httpx.AsyncClient) -> int:
        delivered = 0
        lease = timedelta(seconds=self.settings.timeout_seconds * 3 + 30)
        while True:
            async with transaction(self.sessions) as session:
                rows = await outbox.claim_due(
                    session, now=utcnow(), lease=lease, limit=20, kind="webhook"
                )
            if not rows:
                return delivered
            for row in rows:
                delivered += await self._deliver(client, row)

    async def _deliver(self, client: httpx.AsyncClient, row: Outbox) -> int:
        body = json.dumps(row.payload, ensure_ascii=False, sort_keys=True).encode()
        headers = {
            "Content-Type": "application/json",
            SIGNATURE_HEADER: signature(self.key, body),
            "Idempotency-Key": idempotency_key(row),
            "X-Servicedesk-Event": row.template,
        }
        bound = log.bind(outbox=row.id, ticket=row.ticket_id, attempt=row.attempts)
        try:
            response = await client.post(row.recipient, content=body, headers=headers)
            status = response.status_code
            error = f"HTTP {status}"
        except httpx.HTTPError as exc:
            status, error = 0, f"{type(exc).__name__}: {exc}"[:300]
        async with transaction(self.sessions) as session:
            if 200 <= status < 300:
                await outbox.settle(session, row.id, row.attempts, state="sent", sent_at=utcnow())
                bound.info("webhook.sent", status=status)
                return 1
            permanent = 400 <= status < 500 and status not in (408, 425, 429)
            if permanent or row.attempts >= self.settings.max_attempts:
                await outbox.settle(session, row.id, row.attempts, state="failed", error=error)
                bound.error("webhook.failed", error=error)
                return 0
            delay = backoff(self.settings.backoff_seconds, row.attempts, self.rng)
            await outbox.settle(session, row.id, row.attempts, state="pending", error=error,
                                due_at=utcnow() + delay)  # fmt: skip
            bound.warning(
                "webhook.retry", error=error, retry_in_seconds=round(delay.total_seconds())
            )
            return 0
