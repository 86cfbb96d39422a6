"""One mail through an explicit, ordered list of small steps.

Each step either lets the mail go on or stops it with a ``Stop`` (duplicate,
ignored, quarantined) and a reason; the trail of what every step saw is kept
on the ``Job`` so any ticket or rejection can be explained. Only the last step
writes, in one transaction; a crash anywhere before it leaves nothing behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

import structlog
from sqlalchemy.exc import IntegrityError, InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from classify.decision import Decision
from ingest.conversation import ThreadHints, hints
from ingest.guards import automatic
from ingest.latency import Histogram
from ingest.mail import InboundMail
from ingest.mime_limits import header_end
from ingest.outcome import Action, Outcome, SourceRef
from ingest.parse import Unparseable, parse_mail
from ingest.quotes import strip_quoted
from store import apply, intake
from store.apply import DeskPolicy
from store.bounces import record_bounce
from store.db import transaction
from store.intake import Received
from store.models import Intake
from store.outbox import enqueue_rejection
from store.threads import ThreadMatch, find_thread
from store.tickets import Numbering

log = structlog.get_logger("servicedesk.ingest")

Parser = Callable[[bytes], Awaitable[InboundMail | Unparseable]]
Classifier = Callable[[InboundMail], Decision]

# Errors after which trying again later can succeed: nothing is stored, the
# source keeps the mail (IMAP leaves it, the MTA gets exit 75).
TRANSIENT = (OperationalError, InterfaceError, OSError, ConnectionError, asyncio.TimeoutError)


@dataclass(frozen=True, slots=True)
class Stop:
    action: Action
    reason: str
    # What kind of stop, for follow-up in the same transaction: "bounce"
    # (note it on our ticket), "too_large" (tell the sender why), "" (nothing).
    kind: str = ""


@dataclass(slots=True)
class Job:
    """The mail in hand and what the steps learned about it so far."""

    received: Received
    mail: InboundMail | None = None
    hints: ThreadHints | None = None
    thread: ThreadMatch | None = None
    decision: Decision | None = None
    trail: list[str] = field(default_factory=list)

    @property
    def dedup_key(self) -> str:
        return self.received.dedup_key(self.mail)


@dataclass(frozen=True, slots=True)
class Desk:
    """Everything the steps need from settings, as plain values."""

    policy: DeskPolicy
    numbering: Numbering
    max_message_bytes: int
    processing_seconds: float = 20.0
    own_addresses: tuple[str, ...] = ()


class Pipeline:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        desk: Desk,
        classifier: Classifier,
        parser: Parser,
        *,
        on_commit: Callable[[], None] | None = None,
        serial_writes: bool = False,
    ) -> None:
        self.sessions = sessions
        self.on_commit = on_commit
        self.latency = Histogram()
        # SQLite has one writer; queueing writers here beats SQLITE_BUSY retries.
        self._write_lock: asyncio.Lock | None = asyncio.Lock() if serial_writes else None
        self.desk = desk
        self.classifier = classifier
        self.parser = parser
        self.steps: Sequence[Callable[[Job], Awaitable[Stop | None]]] = (
            self.check_size,
            self.parse,
            self.check_duplicate,
            self.check_automatic,
            self.find_thread,
            self.classify,
        )

    async def process(self, raw: bytes, source: SourceRef) -> Outcome:
        started = time.perf_counter()
        try:
            return await self._process(raw, source)
        finally:
            self.latency.observe(time.perf_counter() - started)

    async def _process(self, raw: bytes, source: SourceRef) -> Outcome:
        job = Job(Received.of(raw, source))
        bound = log.bind(
            source=source.kind,
            source_key=source.key or source.name,
            sha256=job.received.sha256[:16],
        )
        try:
            for step in self.steps:
                stop = await step(job)
                if stop is not None:
                    return await self._finish_stopped(job, stop, bound)
            return await self._commit(job, bound)
        except TRANSIENT as exc:
            bound.warning("ingest.deferred", error=f"{type(exc).__name__}: {exc}"[:300])
            return Outcome(Action.DEFERRED, reason=f"temporary failure: {type(exc).__name__}")
        except Exception as exc:  # a bug must not stop intake: keep the mail, say why
            bound.exception("ingest.failed")
            return await self._finish_stopped(
                job,
                Stop(Action.QUARANTINED, f"internal error: {type(exc).__name__}: {exc}"[:500]),
                bound,
            )

    # -- the steps, in order ------------------------------------------------

    async def check_size(self, job: Job) -> Stop | None:
        size = len(job.received.raw)
        if size > self.desk.max_message_bytes:
            # Only the header block is read, to know whom to tell and whether they are a person.
            end, _ = header_end(job.received.raw, 0, 256 * 1024)
            headers = parse_mail(job.received.raw[:end] + b"\r\n")
            job.mail = None if isinstance(headers, Unparseable) else headers
            return Stop(
                Action.QUARANTINED,
                f"message is {size} bytes, over the limit of {self.desk.max_message_bytes}",
                kind="too_large",
            )
        return None

    async def parse(self, job: Job) -> Stop | None:
        try:
            # The parser enforces the budget itself and says so; this is the backstop.
            result = await asyncio.wait_for(
                self.parser(job.received.raw), self.desk.processing_seconds + 1
            )
        except TimeoutError:
            return Stop(
                Action.QUARANTINED, f"parsing took longer than {self.desk.processing_seconds:g} s"
            )
        if isinstance(result, Unparseable):
            return Stop(Action.QUARANTINED, f"unparseable: {result.reason}")
        job.mail = result
        job.trail.append(f"parsed: message-id {result.message_id or '(none)'}")
        return None

    async def check_duplicate(self, job: Job) -> Stop | None:
        async with self.sessions() as session:
            existing = await intake.find_existing(session, job.dedup_key, job.received.source.key)
        if existing is not None:
            return Stop(
                Action.DUPLICATE, f"already received as intake #{existing.id} ({existing.action})"
            )
        return None

    async def check_automatic(self, job: Job) -> Stop | None:
        assert job.mail is not None
        hit = automatic(job.mail, self.desk.own_addresses)
        if hit is not None:
            return Stop(Action.IGNORED, f"{hit.kind}: {hit.reason}", kind=hit.kind)
        return None

    async def find_thread(self, job: Job) -> Stop | None:
        assert job.mail is not None
        job.hints = hints(job.mail, self.desk.policy.address, self.desk.numbering.prefix)
        async with self.sessions() as session:
            job.thread = await find_thread(session, job.hints)
        if job.thread:
            job.trail.append(
                f"thread: {self.desk.numbering.format(job.thread.ticket.id)} via {job.thread.via}"
            )
        return None

    async def classify(self, job: Job) -> Stop | None:
        assert job.mail is not None
        job.decision = self.classifier(job.mail)
        job.trail.append(
            f"classified: {job.decision.subcategory or job.decision.category} by {job.decision.rule}"
        )
        return None

    # -- writing ------------------------------------------------------------

    def _writing(self) -> contextlib.AbstractAsyncContextManager[object]:
        return self._write_lock if self._write_lock is not None else contextlib.nullcontext()

    async def _commit(self, job: Job, bound: structlog.typing.FilteringBoundLogger) -> Outcome:
        assert job.mail is not None and job.decision is not None
        mail, policy = job.mail, self.desk.policy
        try:
            async with self._writing(), transaction(self.sessions) as session:
                applied = None
                linked = None
                if job.thread is None and job.hints is not None:
                    # Mails are handled a few at a time: the ticket this one
                    # answers may have been committed since the thread step.
                    job.thread = await find_thread(session, job.hints)
                if job.thread is not None:
                    thread = await _reload(session, job.thread)
                    applied = await apply.continue_ticket(
                        session, job.received, mail, thread, policy, strip_quoted(mail.text)
                    )
                    linked = thread.ticket
                if applied is None:
                    why = f"follow-up of {self.desk.numbering.format(linked.id)}" if linked else ""
                    applied = await apply.open_ticket(
                        session, job.received, mail, job.decision, policy, linked=linked, why=why
                    )
        except IntegrityError:
            # Another process committed the same mail between our check and now.
            return Outcome(Action.DUPLICATE, reason="already received (concurrent intake)")
        if self.on_commit is not None:
            self.on_commit()
        number = self.desk.numbering.format(applied.ticket_id)
        bound.info(
            "ingest.done",
            action=applied.action,
            ticket=number,
            message_id=mail.message_id,
            trail=job.trail,
        )
        return Outcome(Action(applied.action), ticket=number, reason=applied.reason)

    async def _follow_up(self, session: AsyncSession, job: Job, stop: Stop, row: Intake) -> None:
        """In the stop's transaction: note bounces on our ticket, tell senders of oversize mail."""
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

    async def _finish_stopped(
        self, job: Job, stop: Stop, bound: structlog.typing.FilteringBoundLogger
    ) -> Outcome:
        """Duplicates leave no trace; ignored and quarantined mail keep raw bytes and reason."""
        message_id = job.mail.message_id if job.mail else ""
        if stop.action is Action.DUPLICATE:
            bound.info("ingest.duplicate", message_id=message_id, reason=stop.reason)
            return Outcome(stop.action, reason=stop.reason)
        try:
            async with self._writing(), transaction(self.sessions) as session:
                existing = await intake.find_existing(
                    session, job.dedup_key, job.received.source.key
                )
                if existing is not None:
                    reason = f"already received as intake #{existing.id} ({existing.action})"
                    return Outcome(Action.DUPLICATE, reason=reason)
                row = await intake.record(
                    session, job.received, job.dedup_key, stop.action.value, stop.reason
                )
                intake_id = row.id
                await self._follow_up(session, job, stop, row)
        except IntegrityError:
            return Outcome(Action.DUPLICATE, reason="already received (concurrent intake)")
        except TRANSIENT as exc:
            bound.warning("ingest.deferred", error=f"{type(exc).__name__}: {exc}"[:300])
            return Outcome(Action.DEFERRED, reason=f"temporary failure: {type(exc).__name__}")
        if stop.kind == "too_large" and self.on_commit is not None:
            self.on_commit()
        bound.info(
            f"ingest.{stop.action.value}",
            message_id=message_id,
            reason=stop.reason,
            intake=intake_id,
        )
        return Outcome(stop.action, reason=stop.reason, intake_id=intake_id)


async def _reload(session: AsyncSession, match: ThreadMatch) -> ThreadMatch:
    """The match was found in another session; bind its ticket to this one."""
    from store.models import Ticket

    ticket = await session.get(Ticket, match.ticket.id, with_for_update=True)
    assert ticket is not None
    return ThreadMatch(ticket, match.via, match.by_token)
