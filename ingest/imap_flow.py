"""One drain of a mailbox as a stream: fetch by batch, handle by mail, acknowledge by batch.

Mails are offered with ``concurrency`` in hand across batch boundaries: the
next batch's first mails start while the last ones of the batch before are
still being parsed and written. Waiting for a whole batch before starting the
next left the parse workers idle for its tail, every hundred mails (measured:
a drain with batches of 400 instead of 100 ran about a tenth faster, for that
reason alone).

Each batch is acknowledged once all its mails are answered, and batches are
acknowledged in order, so the checkpoint (a low-water mark) never passes a
mail that is not acknowledged yet. The session runs one command at a time:
the next fetch and the acknowledgements take turns on one lock, which the
checkpoint's database write does not hold (it can wait for the ticket
writer's lock, and the next fetch must not wait with it).

In memory at once: the not yet started rest of one batch, the next batch
(fetched while this one is handled), and the mails in hand: at most
``concurrency`` of them and at most ``max_bytes`` together (a lone larger
mail is let in alone). Counting mails only, a backlog of large mails would
have put every batch the gate allows in memory at once.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

from ingest.imap_ack import Acks
from ingest.imap_session import ImapSession
from ingest.outcome import Action, Outcome

Offer = Callable[[int, bytes], Awaitable[Outcome | None]]
Acknowledge = Callable[[Acks], Awaitable[list[int]]]
Advance = Callable[[list[int]], Awaitable[None]]
Started = list[tuple[int, "asyncio.Task[Outcome | None]"]]


@dataclass
class BatchFlow:
    session: ImapSession
    batches: AsyncIterator[list[int]]
    offer: Offer  # None: the handler failed; the mail stays for a later attempt
    acknowledge: Acknowledge  # on the server; returns the UIDs acknowledged
    advance: Advance  # the checkpoint; needs no IMAP, so not under the session's lock
    concurrency: int
    max_bytes: int
    stop: asyncio.Event
    attempted: set[int] | None = None
    _gate: asyncio.Semaphore = field(init=False)
    _session_lock: asyncio.Lock = field(default_factory=asyncio.Lock, init=False)
    _room: asyncio.Condition = field(default_factory=asyncio.Condition, init=False)
    _bytes: int = field(default=0, init=False)  # raw bytes of the mails in hand

    def __post_init__(self) -> None:
        self._gate = asyncio.Semaphore(self.concurrency)

    async def run(self) -> int:
        """Mails answered (acknowledged or not); returns once every batch is settled."""
        settled: list[asyncio.Task[int]] = []
        started: Started = []  # the batch being started, not yet handed to its settling
        upcoming: asyncio.Task[list[tuple[int, bytes]] | None] | None = None
        try:
            mails = await self._fetch()
            while mails is not None and not self.stop.is_set():
                upcoming = asyncio.create_task(self._fetch())
                started = []
                await self._start(mails, started)
                previous = settled[-1] if settled else None
                settled.append(asyncio.create_task(self._settle(started, previous)))
                started = []
                mails = await upcoming
                upcoming = None
            return sum(await asyncio.gather(*settled))
        except BaseException:
            # Mails in hand are cancelled like any caller's; the writer finishes
            # a commit it began, and such a mail is a duplicate next time.
            pending = [*settled, *(task for _, task in started)]
            for task in [*pending, *([upcoming] if upcoming else [])]:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
            raise

    async def _fetch(self) -> list[tuple[int, bytes]] | None:
        """The next batch's mails (possibly none left on the server); None after the last."""
        if self.stop.is_set():
            return None
        async with self._session_lock:
            batch = await anext(self.batches, None)
            if batch is None:
                return None
            mails = await self.session.fetch_bodies(batch)
        # Highest UID first so pop() hands them out in UID order and each raw
        # message is freed as soon as it has been handled.
        mails.sort(key=lambda mail: mail[0], reverse=True)
        return mails

    async def _start(self, mails: list[tuple[int, bytes]], started: Started) -> None:
        """Start a batch's mails as the gate lets them in; after stop, no new mail."""
        while mails and not self.stop.is_set():
            await self._gate.acquire()
            size = len(mails[-1][1])
            async with self._room:
                await self._room.wait_for(functools.partial(self._fits, size))
                self._bytes += size
            if self.stop.is_set():
                await self._release(size)
                break
            uid, raw = mails.pop()
            if self.attempted is not None:
                self.attempted.add(uid)
            started.append((uid, asyncio.create_task(self._offer(uid, raw))))
            del raw

    async def _offer(self, uid: int, raw: bytes) -> Outcome | None:
        try:
            return await self.offer(uid, raw)
        finally:
            await self._release(len(raw))

    def _fits(self, size: int) -> bool:
        return self._bytes == 0 or self._bytes + size <= self.max_bytes

    async def _release(self, size: int) -> None:
        self._gate.release()
        async with self._room:
            self._bytes -= size
            self._room.notify_all()

    async def _settle(self, started: Started, previous: asyncio.Task[int] | None) -> int:
        outcomes = await asyncio.gather(*(task for _, task in started))
        if previous is not None:
            await previous  # in order: the checkpoint must not pass an unacknowledged mail
        acks = Acks()
        handled = 0
        for (uid, _), outcome in zip(started, outcomes, strict=True):
            if outcome is None:
                continue
            handled += 1
            if outcome.action is Action.QUARANTINED:
                acks.quarantine.append(uid)
            elif outcome.action.acknowledged:
                acks.done.append(uid)
        async with self._session_lock:
            acked = await self.acknowledge(acks)
        await self.advance(acked)
        return handled
