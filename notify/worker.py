"""The outbox worker: claim due mail rows, protect against loops, render, send, settle.

Delivery is at-least-once with a recognisable duplicate, which in practice is
exactly once: a row is leased (``store.outbox.claim_due``), its deterministic
Message-ID is stored, the mail is sent outside any transaction, and a short
transaction marks it sent. The one gap no protocol can close is the process
dying after the SMTP server accepted the mail but before that commit: when
the lease expires the row is sent again, with the *same* Message-ID, so the
recipient's mail system (and any human) sees the same message twice rather
than two different ones. Retries after transient failures cannot duplicate:
a 4xx or a refused connection means the server did not take the mail.

Loop protection runs before every automatic mail (``render.AUTOMATIC``):
addresses that bounced (``suppressions``) and the per-address daily cap
(``auto_reply_counts``) make the row ``skipped`` with the reason in
``last_error``. Our own addresses are never mailed, whatever the template.
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import structlog
from jinja2 import TemplateError
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from notify.compose import BadAddress, Identity, build_message, message_id_for
from notify.context import Links, NotSendable, Prepared, prepare
from notify.render import AUTOMATIC, Renderer, TemplateMissing
from notify.transport import PermanentSendError, TransientSendError, Transport, transport_for
from servicedesk.settings import Settings
from store import outbox
from store.db import transaction
from store.models import Outbox, utcnow
from store.tickets import Numbering

if TYPE_CHECKING:
    from email.message import EmailMessage


log = structlog.get_logger("servicedesk.notify")

MAX_BACKOFF = timedelta(hours=6)


def backoff(base_seconds: float, attempts: int, rng: random.Random) -> timedelta:
    """Exponential (base·2^(n-1)), capped at six hours, stretched by up to 50 % jitter.

    Jitter spreads a backlog out after an outage so the recovering server is
    not hit by every queued mail in the same second.
    """
    seconds = base_seconds * (2 ** max(attempts - 1, 0))
    seconds = min(seconds, MAX_BACKOFF.total_seconds())
    return timedelta(seconds=seconds * rng.uniform(1.0, 1.5))


def is_own_address(email: str, own: Sequence[str]) -> bool:
    """``servicedesk@x`` and ``servicedesk+anything@x`` are both us."""
    local, _, domain = email.lower().rpartition("@")
    base = local.split("+", 1)[0]
    return any(email.lower() == o or f"{base}@{domain}" == o for o in own)


class OutboxWorker:
    """Sends the outbox. ``drain_once`` for ``run --once`` and tests, ``run`` for the daemon.

    Several workers (processes) may run against one PostgreSQL database; the
    claim uses ``FOR UPDATE SKIP LOCKED`` so they split the rows between them.
    """

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        settings: Settings,
        secret_key: bytes,
        transport: Transport | None = None,
        *,
        renderer: Renderer | None = None,
        own_addresses: Sequence[str] = (),
        clock: Callable[[], datetime] = utcnow,
        rng: random.Random | None = None,
        poll_seconds: float = 2.0,
        batch_size: int = 20,
    ) -> None:
        self.sessions = sessions
        self.settings = settings
        self.smtp = settings.smtp
        self.transport = transport or transport_for(settings.smtp, settings.data_dir)
        self.renderer = renderer or Renderer(default_language=settings.notify.default_language)
        self.identity = Identity(
            settings.smtp.from_address.lower(),
            settings.smtp.from_name,
            settings.smtp.plus_addressing,
        )
        self.own = tuple(a.lower() for a in (settings.smtp.from_address, *own_addresses))
        self.links = Links(settings.web.base_url, secret_key)
        self.secret_key = secret_key
        self.numbering = Numbering(settings.tickets.prefix, settings.tickets.digits)
        self.clock = clock
        self.rng = rng or random.Random()
        self.poll_seconds = poll_seconds
        self.batch_size = batch_size
        # Longer than the transport's own total budget, so a live sender
        # always settles its row before anyone else may claim it again.
        self.lease = timedelta(seconds=settings.smtp.timeout_seconds * 6 + 60)
        self.stats: Counter[str] = Counter()
        self._wake = asyncio.Event()

    # -- loop -----------------------------------------------------------------

    def wake(self) -> None:
        """Ask the running loop to look at the outbox now (the pipeline calls this after commit)."""
        self._wake.set()

    async def run(self, stop: asyncio.Event) -> None:
        log.info("outbox.started", poll_seconds=self.poll_seconds)
        failures = 0
        while not stop.is_set():
            self._wake.clear()
            try:
                await self._drain(stop)
                failures = 0
            except Exception:  # the database went away; keep the daemon alive and retry
                failures += 1
                log.exception("outbox.drain_failed", failures=failures)
            pause = (
                self.poll_seconds if failures == 0 else min(60.0, self.poll_seconds * 2**failures)
            )
            await _first_of(stop, self._wake, seconds=pause)
        log.info("outbox.stopped", **dict(self.stats))

    async def drain_once(self) -> int:
        """Send every row due now; return how many were sent. Rows retried later are not waited for."""
        return await self._drain(None)

    async def _drain(self, stop: asyncio.Event | None) -> int:
        started = self.clock()
        sent = 0
        while stop is None or not stop.is_set():
            async with transaction(self.sessions) as session:
                rows = await outbox.claim_due(
                    session, now=started, lease=self.lease, limit=self.batch_size
                )
            if not rows:
                break
            for row in rows:
                if await self._deliver(row):
                    sent += 1
        return sent

    # -- one row --------------------------------------------------------------

    async def _deliver(self, row: Outbox) -> bool:
        bound = log.bind(
            outbox=row.id, ticket=row.ticket_id, template=row.template, attempt=row.attempts
        )
        now = self.clock()
        automatic = row.template in AUTOMATIC
        async with transaction(self.sessions) as session:
            reason = await self._protect(session, row, now)
            if reason:
                await outbox.settle(session, row.id, row.attempts, state="skipped", error=reason)
                bound.info("outbox.skipped", reason=reason)
                self.stats["skipped"] += 1
                return False
            try:
                prepared = await prepare(
                    session, row, self.links, self.numbering, self.renderer.default_language
                )
            except NotSendable as exc:
                await outbox.settle(session, row.id, row.attempts, state="failed", error=str(exc))
                bound.error("outbox.failed", error=str(exc))
                self.stats["failed"] += 1
                return False
            message_id = message_id_for(
                row.id, row.ticket_id, self.secret_key, self.identity.domain
            )
            await session.execute(
                update(Outbox)
                .where(Outbox.id == row.id, Outbox.attempts == row.attempts)
                .values(message_id=message_id)
                .execution_options(synchronize_session=False)
            )
        try:
            message = self._compose(prepared, message_id, now)
        except (TemplateError, TemplateMissing, BadAddress) as exc:
            return await self._fail(
                row, prepared, f"cannot compose: {type(exc).__name__}: {exc}", bound
            )
        try:
            await self.transport.send(
                message,
                outbox_id=row.id,
                sender=self.identity.address,
                recipients=[prepared.recipient],
            )
        except PermanentSendError as exc:
            return await self._fail(row, prepared, f"permanent: {exc}", bound)
        except TransientSendError as exc:
            return await self._retry(row, prepared, str(exc), bound)
        async with transaction(self.sessions) as session:
            kept = await outbox.settle(
                session,
                row.id,
                row.attempts,
                state="sent",
                sent_at=self.clock(),
                message_id=message_id,
            )
        if not kept:
            bound.warning("outbox.lease_lost_after_send", message_id=message_id)
        bound.info("outbox.sent", message_id=message_id, automatic=automatic,
                   to_domain=prepared.recipient.rpartition("@")[2])  # fmt: skip
        self.stats["sent"] += 1
        return True

    async def _protect(self, session: AsyncSession, row: Outbox, now: datetime) -> str:
        """Why this mail must not go out, or "" to send it (reserves a daily-cap slot)."""
        recipient = row.recipient.strip().lower()
        if not recipient or "@" not in recipient:
            return "no recipient address"
        if is_own_address(recipient, self.own):
            return f"recipient is our own address {recipient}"
        if row.template != "agent_reply":
            suppressed = await outbox.is_suppressed(session, recipient)
            if suppressed is not None:
                return f"recipient suppressed: {suppressed}"[:500]
        if row.template in AUTOMATIC:
            cap = self.settings.notify.replies_per_address_per_day
            if not await outbox.reserve_auto_reply(session, recipient, now, cap):
                return f"daily cap of {cap} automatic replies to this address reached"
        return ""

    def _compose(self, prepared: Prepared, message_id: str, now: datetime) -> EmailMessage:
        rendered = self.renderer.render(
            prepared.template,
            prepared.language,
            prepared.variables,
            organisation=prepared.organisation,
            subcategory=prepared.subcategory,
        )
        return build_message(prepared, rendered, self.identity, message_id=message_id, now=now)

    async def _fail(
        self,
        row: Outbox,
        prepared: Prepared,
        error: str,
        bound: structlog.typing.FilteringBoundLogger,
    ) -> bool:
        async with transaction(self.sessions) as session:
            await self._release(session, row, prepared)
            await outbox.settle(session, row.id, row.attempts, state="failed", error=error)
        bound.error("outbox.failed", error=error)
        self.stats["failed"] += 1
        return False

    async def _retry(
        self,
        row: Outbox,
        prepared: Prepared,
        error: str,
        bound: structlog.typing.FilteringBoundLogger,
    ) -> bool:
        if row.attempts >= self.smtp.max_attempts:
            return await self._fail(
                row, prepared, f"gave up after {row.attempts} attempts: {error}", bound
            )
        delay = backoff(self.smtp.backoff_seconds, row.attempts, self.rng)
        async with transaction(self.sessions) as session:
            await self._release(session, row, prepared)
            await outbox.settle(session, row.id, row.attempts, state="pending", error=error,
                                due_at=self.clock() + delay)  # fmt: skip
        bound.warning("outbox.retry", error=error, retry_in_seconds=round(delay.total_seconds(), 1))
        self.stats["retried"] += 1
        return False

    async def _release(self, session: AsyncSession, row: Outbox, prepared: Prepared) -> None:
        if row.template in AUTOMATIC:
            await outbox.release_auto_reply(session, prepared.recipient, self.clock())


async def _first_of(*events: asyncio.Event, seconds: float) -> None:
    waiters = [asyncio.create_task(e.wait()) for e in events]
    try:
        await asyncio.wait(waiters, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
