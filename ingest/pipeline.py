"""One mail through an explicit, ordered list of small steps.

Each step either lets the mail go on or stops it with a ``Stop`` (ignored,
quarantined) and a reason; the trail of what every step saw is kept on the
``Job`` so any ticket or rejection can be explained. The steps read nothing
from the database: the last step, the ``GroupWriter``, checks for duplicates,
finds the conversation and writes, in one transaction for all mails ready at
that moment. A crash anywhere before its commit leaves nothing behind.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Awaitable, Callable, Sequence

import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from classify.decision import Decision
from classify.router import Routed
from ingest.conversation import hints
from ingest.guards import automatic
from ingest.job import Desk, Job, Stop
from ingest.latency import Histogram
from ingest.mail import InboundMail
from ingest.mime_limits import header_end
from ingest.outcome import Action, Outcome, SourceRef
from ingest.parse import Unparseable, parse_mail
from ingest.writer import TRANSIENT, GroupWriter
from store.intake import Received

__all__ = ["TRANSIENT", "Classifier", "Desk", "Job", "Parser", "Pipeline", "Stop"]

log = structlog.get_logger("servicedesk.ingest")

# A parser may route the mail too (workers do, see classify.router).
Parser = Callable[[bytes], Awaitable[InboundMail | Unparseable | Routed]]
Classifier = Callable[[InboundMail], Decision]


class Pipeline:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        desk: Desk,
        classifier: Classifier,
        parser: Parser,
        *,
        on_commit: Callable[[], None] | None = None,
    ) -> None:
        self.sessions = sessions
        self.latency = Histogram()
        self.desk = desk
        self.classifier = classifier
        self.parser = parser
        self._upstream = 0  # mails in the steps, not yet handed to the writer
        self.writer = GroupWriter(
            sessions, desk, on_commit=on_commit, upstream=lambda: self._upstream
        )
        # Mails are in hand several at a time and finish parsing in any order;
        # a reply must still be written after the mails offered before it.
        self._numbers = itertools.count()
        self._in_hand: set[int] = set()
        self._handed_over = asyncio.Condition()
        self.steps: Sequence[Callable[[Job], Awaitable[Stop | None]]] = (
            self.check_size,
            self.parse,
            self.check_automatic,
            self.thread_hints,
            self.classify,
        )

    async def process(self, raw: bytes, source: SourceRef) -> Outcome:
        started = time.perf_counter()
        number = next(self._numbers)
        self._in_hand.add(number)
        try:
            return await self._process(raw, source, number)
        finally:
            self._in_hand.discard(number)
            async with self._handed_over:
                self._handed_over.notify_all()
            self.latency.observe(time.perf_counter() - started)

    async def _after_earlier_mails(self, number: int) -> None:
        """Wait until every mail offered before this one is written (or stopped).

        Only mails that may continue a conversation wait: the mail they answer
        may be among those. New mail never waits behind a slow neighbour.
        """
        async with self._handed_over:
            await self._handed_over.wait_for(lambda: min(self._in_hand) >= number)

    async def _process(self, raw: bytes, source: SourceRef, number: int) -> Outcome:
        self._upstream += 1
        try:
            job, stop, bound = await self._steps(raw, source)
        finally:
            self._upstream -= 1
        if isinstance(stop, Outcome):
            return stop
        if stop is None and job.may_thread:
            await self._after_earlier_mails(number)
        return await self.writer.write(job, stop, bound)

    async def _steps(
        self, raw: bytes, source: SourceRef
    ) -> tuple[Job, Stop | Outcome | None, structlog.typing.FilteringBoundLogger]:
        """Run the steps; an Outcome means done already (deferred), nothing to write."""
        job = Job(Received.of(raw, source))
        bound = log.bind(
            source=source.kind,
            source_key=source.key or source.name,
            sha256=job.received.sha256[:16],
        )
        stop: Stop | None = None
        try:
            for step in self.steps:
                stop = await step(job)
                if stop is not None:
                    break
        except TRANSIENT as exc:
            bound.warning("ingest.deferred", error=f"{type(exc).__name__}: {exc}"[:300])
            reason = f"temporary failure: {type(exc).__name__}"
            return job, Outcome(Action.DEFERRED, reason=reason), bound
        except Exception as exc:  # a bug must not stop intake: keep the mail, say why
            bound.exception("ingest.failed")
            reason = f"internal error: {type(exc).__name__}: {exc}"[:500]
            stop = Stop(Action.QUARANTINED, reason, kind="internal")
        return job, stop, bound

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
            # The parser enforces the budget itself and says so; this is the backstop
            # (a timeout scope: wait_for's extra future per mail showed in profiles).
            async with asyncio.timeout(self.desk.processing_seconds + 1):
                result = await self.parser(job.received.raw)
        except TimeoutError:
            return Stop(
                Action.QUARANTINED, f"parsing took longer than {self.desk.processing_seconds:g} s"
            )
        if isinstance(result, Unparseable):
            return Stop(Action.QUARANTINED, f"unparseable: {result.reason}")
        if isinstance(result, Routed):
            job.decision = result.decision
            result = result.mail
        job.mail = result
        job.trail.append(f"parsed: message-id {result.message_id or '(none)'}")
        return None

    async def check_automatic(self, job: Job) -> Stop | None:
        assert job.mail is not None
        hit = automatic(job.mail, self.desk.own_addresses)
        if hit is not None:
            return Stop(Action.IGNORED, f"{hit.kind}: {hit.reason}", kind=hit.kind)
        return None

    async def thread_hints(self, job: Job) -> Stop | None:
        """What the mail names (reply token, ticket tag, Message-IDs); the writer looks them up."""
        assert job.mail is not None
        job.hints = hints(job.mail, self.desk.policy.address, self.desk.numbering.prefix)
        return None

    async def classify(self, job: Job) -> Stop | None:
        assert job.mail is not None
        if job.decision is None:  # not routed by the parse worker
            job.decision = self.classifier(job.mail)
        job.trail.append(
            f"classified: {job.decision.subcategory or job.decision.category} by {job.decision.rule}"
        )
        return None
