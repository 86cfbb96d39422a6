"""The quarantine: held mail, why it was held, and what an operator did with it.

Quarantined mail is an ``Intake`` row (action ``quarantined``) plus its raw
bytes. Nothing here deletes either: ``drop`` marks the row, ``release`` hands
the stored bytes to the pipeline again. States of ``Intake.quarantine_state``:

    held -> releasing -> released      (re-processed; outcome appended to reason)
    held -> dropped                    (kept for the record, never processed)

Release is crash-safe in two short transactions around the pipeline run:
first the row moves to ``releasing`` and its dedup key (and source key) get a
``#rel<id>`` suffix, so the pipeline no longer sees the old row as the same
mail; then the pipeline stores the new outcome; then the row becomes
``released``. A crash in between leaves the row in ``releasing`` with its raw
bytes: it is listed, and releasing it again is allowed. If the first run did
commit, the second finds the new row and reports a duplicate, never a second
ticket.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from email.parser import BytesHeaderParser

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ingest.decode import header_text
from ingest.outcome import Outcome, SourceRef
from store.db import transaction
from store.models import Intake, RawMessage

HEAD_BYTES = 64 * 1024  # enough for any sane header block; lists never load whole mails
HELD, RELEASING, RELEASED, DROPPED = "held", "releasing", "released", "dropped"
STATES = (HELD, RELEASING, RELEASED, DROPPED)

Process = Callable[[bytes, SourceRef], Awaitable[Outcome]]


class QuarantineError(Exception):
    """An operator asked for something that cannot be done; the message says why."""


@dataclass(frozen=True, slots=True)
class Entry:
    id: int
    received_at: datetime
    state: str
    reason: str
    sender: str
    subject: str
    size: int
    source: str


@dataclass(frozen=True, slots=True)
class Detail:
    entry: Entry
    headers: tuple[tuple[str, str], ...]
    raw_sha256: str


def _head(data: bytes) -> tuple[tuple[str, str], ...]:
    """Header fields of the first bytes of a mail, decoded for display."""
    end = data.find(b"\r\n\r\n")
    lf_end = data.find(b"\n\n")
    cut = min(i for i in (end, lf_end, len(data)) if i != -1)
    try:
        message = BytesHeaderParser().parsebytes(data[:cut])
        return tuple((str(k), header_text(v)[:2000]) for k, v in message.items()[:500])
    except Exception:  # a display helper must never fail on hostile bytes
        return ()


def _value(headers: tuple[tuple[str, str], ...], name: str) -> str:
    return next((v for k, v in headers if k.lower() == name), "")


def _entry(row: Intake, size: int, head: bytes) -> tuple[Entry, tuple[tuple[str, str], ...]]:
    headers = _head(head)
    entry = Entry(
        id=row.id,
        received_at=row.received_at,
        state=row.quarantine_state,
        reason=row.reason,
        sender=_value(headers, "from")[:200],
        subject=_value(headers, "subject")[:200],
        size=size,
        source=f"{row.source_kind}:{row.source_name}"[:300],
    )
    return entry, headers


def _query(states: tuple[str, ...]):  # type: ignore[no-untyped-def]
    return (
        select(Intake, RawMessage.size, func.substr(RawMessage.data, 1, HEAD_BYTES))
        .join(RawMessage, RawMessage.sha256 == Intake.raw_sha256)
        .where(Intake.action == "quarantined", Intake.quarantine_state.in_(states))
    )


async def list_entries(
    session: AsyncSession, states: tuple[str, ...] = (HELD, RELEASING), limit: int = 100
) -> list[Entry]:
    rows = await session.execute(_query(states).order_by(Intake.id).limit(limit))
    return [_entry(row, size, bytes(head or b""))[0] for row, size, head in rows.all()]


async def show(session: AsyncSession, intake_id: int) -> Detail:
    found = (await session.execute(_query(STATES).where(Intake.id == intake_id))).first()
    if found is None:
        raise QuarantineError(f"no quarantined mail #{intake_id}")
    row, size, head = found
    entry, headers = _entry(row, size, bytes(head or b""))
    return Detail(entry=entry, headers=headers, raw_sha256=row.raw_sha256)


async def _held_row(session: AsyncSession, intake_id: int, allowed: tuple[str, ...]) -> Intake:
    row = await session.get(Intake, intake_id, with_for_update=True)
    if row is None or row.action != "quarantined":
        raise QuarantineError(f"no quarantined mail #{intake_id}")
    if row.quarantine_state not in allowed:
        raise QuarantineError(f"mail #{intake_id} is {row.quarantine_state}, not {allowed[0]}")
    return row


async def drop(sessions: async_sessionmaker[AsyncSession], intake_id: int, note: str = "") -> Entry:
    """Mark as dropped; the row and raw bytes stay as the record."""
    async with transaction(sessions, writer=True) as session:
        row = await _held_row(session, intake_id, (HELD, RELEASING))
        row.quarantine_state = DROPPED
        row.reason = f"{row.reason} | dropped{': ' + note if note else ''}"[:2000]
    async with sessions() as session:
        return (await show(session, intake_id)).entry


def _suffixed(key: str, intake_id: int) -> str:
    suffix = f"#rel{intake_id}"
    return key if key.endswith(suffix) else key[: 512 - len(suffix)] + suffix


async def release(
    sessions: async_sessionmaker[AsyncSession], intake_id: int, process: Process
) -> Outcome:
    """Re-run the stored raw bytes through ``process`` (the pipeline) and record the outcome."""
    async with transaction(sessions, writer=True) as session:
        row = await _held_row(session, intake_id, (HELD, RELEASING))
        row.quarantine_state = RELEASING
        row.dedup_key = _suffixed(row.dedup_key, intake_id)
        if row.source_key:
            row.source_key = _suffixed(row.source_key, intake_id)
        raw_row = await session.get(RawMessage, row.raw_sha256)
        if raw_row is None:
            raise QuarantineError(f"raw bytes of #{intake_id} are missing")
        raw = bytes(raw_row.data)
    outcome = await process(raw, SourceRef("release", f"quarantine #{intake_id}"))
    if not outcome.action.acknowledged:
        return outcome  # stays "releasing": try again when the store is back
    async with transaction(sessions, writer=True) as session:
        row = await _held_row(session, intake_id, (RELEASING,))
        row.quarantine_state = RELEASED
        what = outcome.action.value + (f" {outcome.ticket}" if outcome.ticket else "")
        if outcome.intake_id:
            what += f" as intake #{outcome.intake_id}"
        row.reason = f"{row.reason} | released: {what}"[:2000]
    return outcome
