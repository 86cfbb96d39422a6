"""Helpers for the IMAP watcher tests: an in-memory checkpoint store, a recording
handler that dedups like the real pipeline, a capturing logger, and a context
manager that runs a watcher in the background.

The server fixtures come from ``tests.servers.fixtures``; they are imported
here too so this folder runs on its own (the Dovecot instance is shared and
reference-counted, so a second import does not start a second server).
"""

from __future__ import annotations

import asyncio
import email
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest
import structlog
from structlog.testing import CapturingLogger

from ingest.imap import MailboxWatcher
from ingest.outcome import Action, Outcome, SourceRef
from tests.servers.fixtures import dovecot, imap_mailbox, make_proxy, smtp_sink

__all__ = ["dovecot", "imap_mailbox", "make_proxy", "smtp_sink"]


class MemoryCheckpoints:
    def __init__(self) -> None:
        self.saved: dict[str, tuple[int, int]] = {}
        self.saves = 0

    async def load(self, mailbox: str) -> tuple[int, int] | None:
        return self.saved.get(mailbox)

    async def save(self, mailbox: str, uidvalidity: int, last_uid: int) -> None:
        self.saves += 1
        self.saved[mailbox] = (uidvalidity, last_uid)


Decide = Callable[[bytes, SourceRef], Awaitable[Action | None]]


class Recorder:
    """Handler that records every offer and answers DUPLICATE for a Message-ID seen before.

    ``decide`` may force an action (or raise); returning None means "normal".
    """

    def __init__(self, decide: Decide | None = None) -> None:
        self.offers: list[SourceRef] = []
        self.subjects: list[str] = []
        self.arrived: list[float] = []
        self.message_ids: set[str] = set()
        self.decide = decide

    async def __call__(self, raw: bytes, ref: SourceRef) -> Outcome:
        self.offers.append(ref)
        self.arrived.append(time.monotonic())
        msg = email.message_from_bytes(raw)
        self.subjects.append(str(msg["Subject"]))
        forced = await self.decide(raw, ref) if self.decide else None
        if forced is not None:
            return Outcome(forced, reason="forced by test")
        message_id = str(msg["Message-ID"])
        if message_id in self.message_ids:
            return Outcome(Action.DUPLICATE)
        self.message_ids.add(message_id)
        return Outcome(Action.CREATED, ticket=f"SD-{len(self.message_ids):06d}")

    @property
    def keys(self) -> list[str]:
        return [ref.key for ref in self.offers]


def capturing_logger() -> tuple[Any, CapturingLogger]:
    """A structlog logger whose calls (event name + fields) land in a list."""
    sink = CapturingLogger()
    logger = structlog.wrap_logger(
        sink,
        processors=[structlog.processors.format_exc_info],
        wrapper_class=structlog.make_filtering_bound_logger(0),
    )
    return logger, sink


def events(sink: CapturingLogger, name: str) -> list[dict[str, Any]]:
    return [call.kwargs for call in sink.calls if call.kwargs.get("event") == name]


async def wait_until(predicate: Callable[[], bool], timeout: float = 5.0) -> float:
    """Poll ``predicate`` every 10 ms; return the seconds it took or fail the test."""
    start = time.monotonic()
    while not predicate():
        if time.monotonic() - start > timeout:
            pytest.fail(f"condition not met within {timeout}s")
        await asyncio.sleep(0.01)
    return time.monotonic() - start


@asynccontextmanager
async def watching(watcher: MailboxWatcher) -> AsyncIterator[asyncio.Event]:
    """Run ``watcher.run`` in a task; on exit set stop and require a prompt return."""
    stop = asyncio.Event()
    task = asyncio.create_task(watcher.run(stop))
    try:
        yield stop
    finally:
        stop.set()
        await asyncio.wait_for(task, timeout=10)


@pytest.fixture
def checkpoints() -> MemoryCheckpoints:
    return MemoryCheckpoints()
