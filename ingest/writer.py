"""The pipeline's last step: write mails that are ready, many to one transaction.

Committing each mail alone made the database the bottleneck (a dozen
round trips and a commit per mail, while the parser waited). Mails that
finish their steps while a write is under way queue up and go into the next
transaction together; a lone mail is written at once, so an idle desk loses
no latency to grouping.

A group behaves exactly as its mails would one by one, in order: the dedup
check sees earlier mails of the same group, and a mail that may continue a
conversation is looked up only after every earlier mail of the group has
been written. If anything in a group fails, the transaction is rolled back
and each mail is written alone, so one bad mail never costs the others.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass

import structlog
from sqlalchemy.exc import IntegrityError, InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ingest.guards import automatic
from ingest.job import Desk, Job, Stop
from ingest.outcome import Action, Outcome
from ingest.quotes import strip_quoted
from store import apply, intake
from store.apply import Applied, NewTicket
from store.bounces import record_bounce
from store.db import transaction
from store.models import Intake, Ticket
from store.outbox import enqueue_rejection
from store.threads import find_thread

Logger = structlog.typing.FilteringBoundLogger

# Errors after which trying again later can succeed: nothing is stored, the
# source keeps the mail (IMAP leaves it, the MTA gets exit 75).
TRANSIENT = (OperationalError, InterfaceError, OSError, ConnectionError, asyncio.TimeoutError)

MAX_GROUP = 100
# How long the first mail of a group may wait for mails still being parsed
# to join it. A lone mail never waits; a burst trades a few milliseconds for
# groups several times larger (the write cost per mail falls with group size).
GATHER_SECONDS = 0.05
# A group this large is written without waiting for more, and every mail
# waiting here holds a slot of the source's concurrency that could be
# parsing the next one (imap.concurrency is twice this). Each statement of a
# group waits for the database thread and then for the busy event loop
# (several ms on SQLite), so the cost per mail falls with group size:
# measured 32 -> 64 -> 96, the writer went from 89 % to 70 % of a drain busy.
GATHER_GROUP = 96


@dataclass(slots=True)
class Entry:
    job: Job
    stop: Stop | None
    log: Logger
    done: asyncio.Future[Outcome]


class GroupWriter:
    """Queue of finished jobs and the one task that writes them."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        desk: Desk,
        *,
        on_commit: Callable[[], None] | None = None,
        max_group: int = MAX_GROUP,
        upstream: Callable[[], int] = lambda: 0,
    ) -> None:
        """``upstream`` says how many mails are still in the steps before this one."""
        self.sessions = sessions
        self.desk = desk
        self.on_commit = on_commit
        self.max_group = max_group
        self.upstream = upstream
        self._arrived = asyncio.Event()
        self.groups = 0  # transactions committed: for tests and the benchmark
        self._queue: list[Entry] = []
        self._task: asyncio.Task[None] | None = None

    async def write(self, job: Job, stop: Stop | None, log: Logger) -> Outcome:
        entry = Entry(job, stop, log, asyncio.get_running_loop().create_future())
        self._queue.append(entry)
        self._arrived.set()
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name="servicedesk-writer")
        # Shielded: a caller cancelled at shutdown must not abandon a write
        # half-way; the mail is then committed and offered again as a duplicate.
        return await asyncio.shield(entry.done)

    async def _run(self) -> None:
        while self._queue:
            await self._gather()
            group, self._queue = self._queue[: self.max_group], self._queue[self.max_group :]
            try:
                await self._write(group)
            except BaseException as exc:
                for entry in group:
                    if not entry.done.done():
                        entry.done.set_exception(exc)
                if isinstance(exc, asyncio.CancelledError):
                    raise

    async def _gather(self) -> None:
        """Let mails still being parsed join the group, for a moment at most."""
        deadline = asyncio.get_running_loop().time() + GATHER_SECONDS
        while len(self._queue) < GATHER_GROUP and self.upstream() > 0:
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0:
                return
            self._arrived.clear()
            try:
                await asyncio.wait_for(self._arrived.wait(), remaining)
            except TimeoutError:
                return

    async def _write(self, group: list[Entry]) -> None:
        try:
            async with transaction(self.sessions, writer=True) as session:
                outcomes = await self._apply(session, group)
        except TRANSIENT as exc:
            for entry in group:
                entry.log.warning("ingest.deferred", error=f"{type(exc).__name__}: {exc}"[:300])
                _settle(
                    entry,
                    Outcome(Action.DEFERRED, reason=f"temporary failure: {type(exc).__name__}"),
                )
            return
        except Exception as exc:
            if len(group) > 1:
                for entry in group:  # alone, each mail gets its own answer
                    await self._write([entry])
                return
            await self._failed_alone(group[0], exc)
            return
        self.groups += 1
        if self.on_commit is not None and any(
            _notifies(e, o) for e, o in zip(group, outcomes, strict=True)
        ):
            self.on_commit()
        for entry, outcome in zip(group, outcomes, strict=True):
            _report(entry, outcome)
            _settle(entry, outcome)

    async def _failed_alone(self, entry: Entry, exc: Exception) -> None:
        if isinstance(exc, IntegrityError):
            # Another process committed the same mail between our check and now.
            _settle(entry, Outcome(Action.DUPLICATE, reason="already received (concurrent intake)"))
            return
        if entry.stop is not None and entry.stop.kind == "internal":
            raise exc  # even keeping it failed: the source keeps the mail
        # A bug must not stop intake: keep the mail with the reason.
        entry.log.error("ingest.failed", exc_info=exc)
        entry.stop = Stop(
            Action.QUARANTINED,
            f"internal error: {type(exc).__name__}: {exc}"[:500],
            kind="internal",
        )
        await self._write([entry])

    # -- inside the group's transaction -------------------------------------------------
    async def _apply(self, session: AsyncSession, group: list[Entry]) -> list[Outcome]:
        by_dedup, by_source = await intake.find_many(
            session,
            [e.job.dedup_key for e in group],
            [e.job.received.source.key for e in group if e.job.received.source.key],
        )
        outcomes: list[Outcome | None] = [None] * len(group)
        seen_keys: set[str] = set()
        seen_sources: set[str] = set()
        waiting: list[tuple[int, NewTicket]] = []

        async def open_waiting() -> None:
            applied = await apply.open_tickets(
                session, [item for _, item in waiting], self.desk.policy
            )
            for (index, _), done in zip(waiting, applied, strict=True):
                outcomes[index] = self._outcome(done)
            waiting.clear()

        for index, entry in enumerate(group):
            job, source_key = entry.job, entry.job.received.source.key
            earlier = by_dedup.get(job.dedup_key) or (
                by_source.get(source_key) if source_key else None
            )
            if earlier is not None:
                reason = f"already received as intake #{earlier.id} ({earlier.action})"
                outcomes[index] = Outcome(Action.DUPLICATE, reason=reason)
                continue
            if job.dedup_key in seen_keys or source_key in seen_sources:
                outcomes[index] = Outcome(Action.DUPLICATE, reason="already received in this batch")
                continue
            seen_keys.add(job.dedup_key)
            if source_key:
                seen_sources.add(source_key)
            if entry.stop is not None:
                outcomes[index] = await self._record_stop(session, job, entry.stop)
                continue
            if job.may_thread and waiting:
                await open_waiting()  # the conversation may have started earlier in this group
            applied, new = await self._continue(session, job)
            if applied is not None:
                outcomes[index] = self._outcome(applied)
            else:
                waiting.append((index, new))
        await open_waiting()
        done = [outcome for outcome in outcomes if outcome is not None]
        assert len(done) == len(group), "every mail of a group gets an outcome"
        return done

    async def _continue(self, session: AsyncSession, job: Job) -> tuple[Applied | None, NewTicket]:
        """Add the mail to the ticket it answers; or say how to open a new one."""
        assert job.mail is not None and job.decision is not None
        new = NewTicket(job.received, job.mail, job.decision)
        if not job.may_thread or job.hints is None:
            return None, new
        match = await find_thread(session, job.hints)
        if match is None:
            return None, new
        number = self.desk.numbering.format(match.ticket.id)
        job.trail.append(f"thread: {number} via {match.via}")
        # Row-locked, so an agent's change to the same ticket waits for us.
        await session.get(Ticket, match.ticket.id, with_for_update=True)
        applied = await apply.continue_ticket(
            session, job.received, job.mail, match, self.desk.policy, strip_quoted(job.mail.text)
        )
        if applied is not None:
            return applied, new
        linked = match.ticket.id
        return None, NewTicket(
            job.received, job.mail, job.decision, linked, f"follow-up of {number}"
        )

    def _outcome(self, applied: Applied) -> Outcome:
        number = self.desk.numbering.format(applied.ticket_id)
        return Outcome(Action(applied.action), ticket=number, reason=applied.reason)

    async def _record_stop(self, session: AsyncSession, job: Job, stop: Stop) -> Outcome:
        """Ignored and quarantined mail keep raw bytes and reason; duplicates never get here."""
        row = await intake.record(
            session, job.received, job.dedup_key, stop.action.value, stop.reason
        )
        await self._follow_up(session, job, stop, row)
        return Outcome(stop.action, reason=stop.reason, intake_id=row.id)

    async def _follow_up(self, session: AsyncSession, job: Job, stop: Stop, row: Intake) -> None:
        """Note bounces on our ticket; tell senders of oversize mail why nothing happened."""
        mail = job.mail
        if mail is None:
            return
        if stop.kind == "bounce":
            row.ticket_id = await record_bounce(session, mail, job.received.raw)
        elif (
            stop.kind == "too_large"
            and mail.sender
            and automatic(mail, self.desk.own_addresses) is None
        ):
            await enqueue_rejection(
                session, mail.sender.email, reason="too_large", subject=mail.subject,
                in_reply_to=mail.message_id, name=mail.sender.name,
                detail=f"{len(job.received.raw) // (1024 * 1024)} MB",
            )  # fmt: skip


def _notifies(entry: Entry, outcome: Outcome) -> bool:
    """Whether the commit may have queued mail for the outbox to send."""
    if outcome.action in (Action.CREATED, Action.UPDATED):
        return True
    return entry.stop is not None and entry.stop.kind == "too_large"


def _report(entry: Entry, outcome: Outcome) -> None:
    mail = entry.job.mail
    message_id = mail.message_id if mail else ""
    if outcome.action in (Action.CREATED, Action.UPDATED):
        entry.log.info(
            "ingest.done", action=outcome.action.value, ticket=outcome.ticket,
            message_id=message_id, trail=entry.job.trail,
        )  # fmt: skip
    else:
        entry.log.info(
            f"ingest.{outcome.action.value}", message_id=message_id, reason=outcome.reason,
            intake=outcome.intake_id,
        )  # fmt: skip


def _settle(entry: Entry, outcome: Outcome) -> None:
    if not entry.done.done():
        entry.done.set_result(outcome)
