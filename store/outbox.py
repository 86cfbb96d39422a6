"""Queueing outgoing work in the caller's transaction (the outbox pattern), and
the worker's side of the queue: claiming, leasing and settling rows.

States of a mail row::

    pending  --claim-->  sending  --accepted-->  sent
       ^                    |  \\--5xx, bad template--> failed
       |                    |--4xx, refused, timeout--> pending (due later) ... failed after max attempts
       |                    \\--loop protection------> skipped (reason in last_error)
       \\---- lease expired (worker died while sending): claimed again

``skipped`` is not ``failed``: nothing went wrong, we chose not to answer
(bounced address, our own address, daily cap). Operators alert on ``failed``.

A claim is a lease, not a held transaction: the row gets ``state='sending'``
and ``due_at = now + lease`` in one short committed UPDATE, the mail is sent
outside any transaction, and a second short transaction settles it. Holding a
database transaction across SMTP would lock SQLite's single writer (and so all
intake) for as long as the SMTP server takes to answer.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from store.models import AutoReplyCount, Event, Outbox, Suppression, Ticket, utcnow

STATES = ("pending", "sending", "sent", "failed", "skipped")


async def enqueue_mail(
    session: AsyncSession,
    ticket: Ticket,
    template: str,
    recipient: str,
    *,
    event: Event | None = None,
    payload: dict[str, Any] | None = None,
) -> Outbox:
    row = Outbox(
        kind="mail",
        template=template,
        ticket_id=ticket.id,
        event_id=event.id if event else None,
        recipient=recipient,
        payload=payload or {},
    )
    session.add(row)
    await session.flush()
    return row


async def enqueue_rejection(
    session: AsyncSession,
    recipient: str,
    *,
    reason: str,
    subject: str,
    language: str = "",
    in_reply_to: str = "",
    detail: str = "",
    name: str = "",
) -> Outbox:
    """A "could not process your mail" notice; there is no ticket to hang it on.

    ``reason`` is a code the templates translate: ``too_large``,
    ``too_many_attachments``, ``too_many_recipients``, anything else reads
    as "could not be read". ``detail`` is shown in brackets (e.g. "max 50 MB").
    """
    row = Outbox(
        kind="mail",
        template="rejected",
        ticket_id=None,
        recipient=recipient,
        payload={
            "reason": reason,
            "detail": detail,
            "subject": subject[:300],
            "language": language,
            "in_reply_to": in_reply_to,
            "name": name[:200],
        },
    )
    session.add(row)
    await session.flush()
    return row


def _dialect(session: AsyncSession) -> str:
    return session.bind.dialect.name if session.bind is not None else "sqlite"


async def claim_due(
    session: AsyncSession, *, now: datetime, lease: timedelta, limit: int, kind: str = "mail"
) -> list[Outbox]:
    """Take up to ``limit`` due mail rows for this worker, atomically.

    One UPDATE … WHERE id IN (SELECT … FOR UPDATE SKIP LOCKED) … RETURNING on
    PostgreSQL, so several processes share the outbox without waiting on
    each other or taking a row twice; on SQLite the single UPDATE statement
    is atomic under its database lock. Expired leases (a worker died while
    sending) are due again like pending rows. ``attempts`` counts claims, so
    a mail that crashes the process every time still stops at the limit.
    """
    due = or_(
        and_(Outbox.state == "pending", Outbox.due_at <= now),
        and_(Outbox.state == "sending", Outbox.due_at <= now),
    )
    candidates = (
        select(Outbox.id)
        .where(Outbox.kind == kind, due)
        .order_by(Outbox.due_at, Outbox.id)
        .limit(limit)
    )
    if _dialect(session) == "postgresql":
        candidates = candidates.with_for_update(skip_locked=True)
    statement = (
        update(Outbox)
        .where(Outbox.id.in_(candidates.scalar_subquery()), due)
        .values(state="sending", attempts=Outbox.attempts + 1, due_at=now + lease)
        .returning(Outbox.id)
        .execution_options(synchronize_session=False)
    )
    ids = list((await session.scalars(statement)).all())
    if not ids:
        return []
    rows = await session.scalars(
        select(Outbox)
        .where(Outbox.id.in_(ids))
        .order_by(Outbox.id)
        .execution_options(populate_existing=True)
    )
    return list(rows.all())


async def settle(
    session: AsyncSession,
    row_id: int,
    attempts: int,
    *,
    state: str,
    error: str = "",
    due_at: datetime | None = None,
    message_id: str | None = None,
    sent_at: datetime | None = None,
) -> bool:
    """Record the outcome of one claim; False when our lease was lost meanwhile.

    The ``attempts`` guard makes a slow worker whose lease expired (and whose
    row another worker re-claimed) unable to overwrite the newer outcome.
    """
    if state not in STATES:
        raise ValueError(f"unknown outbox state {state!r}")
    values: dict[str, Any] = {"state": state, "last_error": error[:2000]}
    if due_at is not None:
        values["due_at"] = due_at
    if message_id is not None:
        values["message_id"] = message_id
    if sent_at is not None:
        values["sent_at"] = sent_at
    result = await session.execute(
        update(Outbox)
        .where(Outbox.id == row_id, Outbox.attempts == attempts, Outbox.state == "sending")
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    return bool(getattr(result, "rowcount", 0))


async def is_suppressed(session: AsyncSession, email: str) -> str | None:
    """The reason an address must not get automatic mail, or None."""
    row = await session.get(Suppression, email.lower())
    return row.reason if row is not None else None


async def suppress(session: AsyncSession, email: str, reason: str) -> None:
    """Add an address to the suppression list; keep the first reason if already there."""
    insert = pg_insert if _dialect(session) == "postgresql" else sqlite_insert
    await session.execute(
        insert(Suppression)
        .values(email=email.lower()[:320], reason=reason[:2000], created_at=utcnow())
        .on_conflict_do_nothing()
    )


def _day(now: datetime) -> str:
    return now.date().isoformat()


async def reserve_auto_reply(session: AsyncSession, email: str, now: datetime, cap: int) -> bool:
    """Count one automatic reply to ``email`` today, unless the cap is reached.

    Insert-if-missing then a conditional increment: atomic on both backends,
    so two workers cannot both take the last slot.
    """
    if cap <= 0:
        return False
    key = {"email": email.lower()[:320], "day": _day(now)}
    insert = pg_insert if _dialect(session) == "postgresql" else sqlite_insert
    await session.execute(insert(AutoReplyCount).values(**key, count=0).on_conflict_do_nothing())
    counted = await session.scalar(
        update(AutoReplyCount)
        .where(
            AutoReplyCount.email == key["email"],
            AutoReplyCount.day == key["day"],
            AutoReplyCount.count < cap,
        )
        .values(count=AutoReplyCount.count + 1)
        .returning(AutoReplyCount.count)
        .execution_options(synchronize_session=False)
    )
    return counted is not None


async def release_auto_reply(session: AsyncSession, email: str, now: datetime) -> None:
    """Give a reserved slot back: the reply it was for was not sent."""
    await session.execute(
        update(AutoReplyCount)
        .where(
            AutoReplyCount.email == email.lower()[:320],
            AutoReplyCount.day == _day(now),
            AutoReplyCount.count > 0,
        )
        .values(count=AutoReplyCount.count - 1)
        .execution_options(synchronize_session=False)
    )


async def counts_by_state(session: AsyncSession, states: Sequence[str] = STATES) -> dict[str, int]:
    """Rows per state, for health and metrics."""
    from sqlalchemy import func

    rows = await session.execute(
        select(Outbox.state, func.count()).where(Outbox.state.in_(states)).group_by(Outbox.state)
    )
    found = {state: int(n) for state, n in rows.all()}
    return {state: found.get(state, 0) for state in states}
