"""Parsing off the event loop, in worker processes that can be killed.

One hostile mail (HTML that pins the CPU, a MIME bomb, a decoder bug) must not
stall the loop that serves IMAP IDLE, SMTP and HTTP, nor the mails behind it.
``concurrent.futures.ProcessPoolExecutor`` cannot cancel a running task, and
killing one of its processes breaks the whole pool; so this is a small pool of
our own (the process side is ingest.parse_worker). A mail over its wall-time
budget gets its worker killed (SIGKILL) and replaced, and comes back as
``Unparseable`` with the reason, so the pipeline quarantines it and moves on.

Each worker is driven by a feeder thread of its own that takes mails from one
shared queue. The loop only queues a mail and receives its result; while a
worker parses one mail, the next small one already waits in its pipe. When
every hand-over went through the loop instead, a busy loop (writing a group
of tickets) left the workers waiting: measured, each spent more than half
of every round trip idle. A mail is only queued behind another in a pipe
when no other feeder is free, so a hostile mail delays at most the one mail
behind it, and that one is retried on a fresh worker when its neighbour is
killed.

Memory is bounded twice: each worker runs under an address-space rlimit (a
mail that needs more gets ``MemoryError`` inside the worker, reported as
unparseable), and a worker whose resident size has grown past
``recycle_rss_bytes`` after a job is retired, so fragmentation from one large
mail never accumulates.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import pickle
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from classify.router import Router
from ingest.parse import ParseLimits, Unparseable, parse_mail
from ingest.parse_worker import ParseFunc, Result, Worker, WorkerDied, context

__all__ = ["BudgetParser", "BudgetSettings", "Result", "make_budget_parser"]

# Mails in one worker's pipe at once: the one being parsed and those queued
# behind it. A feeder needs the GIL to take an answer and send the next mail,
# and the event loop may hold it for a switch interval (5 ms) at a time: with
# one mail queued a worker ran dry and waited, with several it keeps parsing.
DEPTH = 8
# Mails wait in a busy worker's pipe only while all of them together fit the
# socket buffer, so sending can never block while the worker is answering.
PREFETCH_BYTES = 64 * 1024

_WARM_UP_MAIL = (
    b"From: warm-up@localhost\r\nTo: servicedesk@localhost\r\nSubject: Tulostin ei toimi\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n\r\nHei, salasana vanhentui. Kiitos!\r\n"
)


@dataclass(frozen=True, slots=True)
class BudgetSettings:
    """How much one mail may cost; defaults suit a 50 MB message limit."""

    seconds: float = 20.0
    workers: int = 0  # 0: one per core
    # Address-space cap per worker: generous for a 50 MB mail (~6x in the
    # parser), small enough that a bomb cannot take the host down.
    max_worker_bytes: int = 2 * 1024**3
    recycle_rss_bytes: int = 400 * 1024**2
    max_jobs_per_worker: int = 1000


@dataclass(eq=False, slots=True)
class _Job:
    raw: bytes
    future: asyncio.Future[Result]
    loop: asyncio.AbstractEventLoop
    router: tuple[str, bytes] | None
    slot: int | None = None  # only this feeder may take it (warm-up)
    running_on: Worker | None = None  # set while a worker parses it (under the lock)
    cancelled: bool = False

    def settle(self, result: Result | BaseException) -> None:
        """Hand the outcome to the loop; from a feeder thread."""
        with contextlib.suppress(RuntimeError):  # the loop is gone: nobody is waiting
            self.loop.call_soon_threadsafe(_settle, self.future, result)

    def frame_bytes(self, worker: Worker) -> int:
        router = self.router
        extra = len(router[1]) if router is not None and router[0] != worker.router_version else 0
        return len(self.raw) + extra


def _settle(future: asyncio.Future[Result], result: Result | BaseException) -> None:
    if future.done():
        return
    if isinstance(result, BaseException):
        future.set_exception(result)
    else:
        future.set_result(result)


class BudgetParser:
    """A ``Parser`` (see ingest.pipeline) that bounds time and memory per mail.

    Call it with raw bytes; ``await aclose()`` when done (workers are also
    daemonic, so a crashed parent never leaves them behind).
    """

    def __init__(
        self,
        limits: ParseLimits,
        budget: BudgetSettings | None = None,
        func: ParseFunc = parse_mail,
        router: Callable[[], Router] | None = None,
    ) -> None:
        """``router`` gives the routing live now; with it, workers classify too."""
        self.limits = limits
        self.router = router
        self._router_frame: tuple[str, bytes] | None = None
        self.func = func  # module-level, so workers can import it (tests inject slow ones)
        self.budget = budget or BudgetSettings()
        self.size = self.budget.workers or max(1, len(os.sched_getaffinity(0)))
        self._ctx = context()
        self._lock = threading.Condition()
        self._queue: deque[_Job] = deque()
        self._workers: list[Worker | None] = [None] * self.size
        # Per feeder, the mails in its worker's pipe, oldest (being parsed) first.
        self._sent: list[deque[_Job]] = [deque() for _ in range(self.size)]
        self._feeders: list[threading.Thread] = []
        self._closed = False
        self.killed = 0  # workers killed (over budget, or their caller gave up)
        self.recycled = 0

    async def __call__(self, raw: bytes, *, slot: int | None = None) -> Result:
        if self._closed:
            raise RuntimeError("BudgetParser is closed")
        self._start_feeders()
        loop = asyncio.get_running_loop()
        job = _Job(raw, loop.create_future(), loop, self._router_now(), slot)
        with self._lock:
            self._queue.append(job)
            self._lock.notify_all()  # a feeder may wait for a job of its own slot
        try:
            return await job.future
        except asyncio.CancelledError:
            self._cancel(job)
            raise

    async def warm_up(self) -> None:
        """Start every worker and route one small mail through each.

        A cold worker (process start, imports, rules unpickled, stemmer
        caches empty) takes most of a second on its first mail; a daemon
        pays that at start, not on the first requester's mail.
        """
        await asyncio.gather(*(self(_WARM_UP_MAIL, slot=slot) for slot in range(self.size)))

    def worker_pids(self) -> list[int]:
        return [w.pid for w in self._workers if w is not None and w.pid is not None]

    async def aclose(self) -> None:
        """Refuse new mail, let the mails in the workers finish, stop the workers."""
        with self._lock:
            self._closed = True
            queued, self._queue = list(self._queue), deque()
            self._lock.notify_all()
        for job in queued:
            _settle(job.future, RuntimeError("BudgetParser closed"))
        for feeder in self._feeders:
            await asyncio.to_thread(feeder.join)

    # -- on the loop ---------------------------------------------------------------
    def _start_feeders(self) -> None:
        if self._feeders:
            return
        for slot in range(self.size):
            feeder = threading.Thread(
                target=self._feed, args=(slot,), name=f"sd-parse-{slot}", daemon=True
            )
            feeder.start()
            self._feeders.append(feeder)

    def _router_now(self) -> tuple[str, bytes] | None:
        if self.router is None:
            return None
        router = self.router()
        if self._router_frame is None or self._router_frame[0] != router.version:
            self._router_frame = (router.version, pickle.dumps(router, pickle.HIGHEST_PROTOCOL))
        return self._router_frame

    def _cancel(self, job: _Job) -> None:
        """The caller gave up (shutdown, the pipeline's own deadline): free its worker."""
        with self._lock:
            job.cancelled = True
            worker = job.running_on
            if worker is not None:
                worker.killed_on_purpose = True
                self.killed += 1
        if worker is not None:
            worker.kill()

    # -- in a feeder thread ------------------------------------------------------
    def _feed(self, slot: int) -> None:
        """Keep one worker busy: send what it may take, then wait for its oldest mail."""
        sent = self._sent[slot]
        started = 0.0  # when the oldest began
        while True:
            job = self._next(slot, sent)
            if job is None and not sent:
                break  # closed, nothing in hand
            if job is None:
                started = self._await_oldest(slot, sent, started)
                continue
            worker = self._workers[slot]
            try:
                if worker is None:
                    worker = self._workers[slot] = Worker(
                        self._ctx, self.limits, self.budget.max_worker_bytes, self.func
                    )
            except Exception as exc:  # cannot start a process: not the mail's fault
                job.settle(exc)
                time.sleep(0.5)
                continue
            if not sent:
                started = time.monotonic()
                with self._lock:
                    job.running_on = worker
            sent.append(job)
            try:
                worker.send(job.raw, job.router)
            except WorkerDied:
                if len(sent) == 1 and worker.jobs > 0:
                    # A worker that served before died while idle (killed from
                    # outside, the OOM killer): not this mail's doing.
                    self._lose_worker(slot, sent)
                # Otherwise the wait that follows reports it for the mail in hand.
        worker = self._workers[slot]
        self._workers[slot] = None
        if worker is not None:
            worker.close()

    def _next(self, slot: int, sent: deque[_Job]) -> _Job | None:
        """The next mail this feeder should send; None: wait for the worker (or stop)."""
        with self._lock:
            while True:
                if not sent:
                    while not self._closed and self._first_for(slot) is None:
                        self._lock.wait()
                elif not self._may_prefetch(slot, sent):
                    return None
                index = self._first_for(slot)
                if index is None:
                    return None  # closed, and nothing left for this feeder
                job = self._queue[index]
                del self._queue[index]
                if not job.cancelled:
                    return job

    def _first_for(self, slot: int) -> int | None:
        """Where in the queue the next mail this feeder may take is (a warm-up
        mail is for its own feeder only)."""
        for index, job in enumerate(self._queue):
            if job.slot in (None, slot):
                return index
        return None

    def _may_prefetch(self, slot: int, sent: deque[_Job]) -> bool:
        worker = self._workers[slot]
        if worker is None or len(sent) >= DEPTH or self._worn(worker, pending=len(sent)):
            return False
        if not all(self._sent):  # another feeder is free: it takes the mail at once
            return False
        index = self._first_for(slot)
        if index is None:
            return False
        queued = sum(job.frame_bytes(worker) for job in itertools.islice(sent, 1, None))
        return queued + self._queue[index].frame_bytes(worker) <= PREFETCH_BYTES

    def _worn(self, worker: Worker, pending: int = 0) -> bool:
        """Due for recycling, counting ``pending`` mails already in its pipe."""
        return (
            worker.rss > self.budget.recycle_rss_bytes
            or worker.jobs + pending >= self.budget.max_jobs_per_worker
        )

    def _await_oldest(self, slot: int, sent: deque[_Job], started: float) -> float:
        """Wait for the oldest mail's answer within its budget; return when the next began."""
        worker = self._workers[slot]
        assert worker is not None
        remaining = started + self.budget.seconds - time.monotonic()
        if not worker.poll(max(0.0, remaining)):
            with self._lock:
                self.killed += 1
            worker.kill()
            oldest = sent.popleft()
            oldest.settle(Unparseable(f"exceeded processing budget of {self.budget.seconds:g} s"))
            self._lose_worker(slot, sent)
            return 0.0
        try:
            result = worker.receive()
        except WorkerDied:
            # Killed because its caller gave up: whatever it held is retried
            # (the abandoned mail itself is dropped there). Otherwise the mail
            # being parsed killed it.
            if not worker.killed_on_purpose:
                worker.process.join(1)
                code = worker.process.exitcode
                sent.popleft().settle(Unparseable(f"parser process died (exit code {code})"))
            self._lose_worker(slot, sent)
            return 0.0
        oldest = sent.popleft()
        with self._lock:
            oldest.running_on = None
            if sent:
                sent[0].running_on = worker
        if self._worn(worker) and not sent:
            self._workers[slot] = None
            with self._lock:  # feeders count concurrently
                self.recycled += 1
            oldest.settle(result)
            worker.close()
        else:
            oldest.settle(result)
        return time.monotonic()

    def _lose_worker(self, slot: int, sent: deque[_Job]) -> None:
        """The worker is gone; mails still in its pipe go back to the front of the queue."""
        worker = self._workers[slot]
        self._workers[slot] = None
        if worker is not None:
            worker.close()
        with self._lock:
            while sent:
                job = sent.pop()
                job.running_on = None
                if not job.cancelled:
                    self._queue.appendleft(job)
            self._lock.notify_all()


def make_budget_parser(
    limits: ParseLimits,
    seconds: float,
    workers: int = 0,
    router: Callable[[], Router] | None = None,
    **budget: Any,
) -> BudgetParser:
    """The wiring entry point: ``Pipeline(..., parser=make_budget_parser(...))``."""
    settings = BudgetSettings(seconds=seconds, workers=workers, **budget)
    return BudgetParser(limits, settings, router=router)
