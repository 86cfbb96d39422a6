"""Parsing off the event loop, in worker processes that can be killed.

One hostile mail (HTML that pins the CPU, a MIME bomb, a decoder bug) must not
stall the loop that serves IMAP IDLE, SMTP and HTTP, nor the mails behind it.
``concurrent.futures.ProcessPoolExecutor`` cannot cancel a running task, and
killing one of its processes breaks the whole pool; so this is a small pool of
our own: each worker is one ``multiprocessing`` process with one pipe, used by
one mail at a time. A mail over its wall-time budget gets its worker killed
(SIGKILL) and replaced, and comes back as ``Unparseable`` with the reason, so
the pipeline quarantines it and moves on.

Memory is bounded twice: each worker runs under an address-space rlimit (a
mail that needs more gets ``MemoryError`` inside the worker, reported as
unparseable), and a worker whose resident size has grown past
``recycle_rss_bytes`` after a job is retired, so fragmentation from one large
mail never accumulates. Raw bytes go over the pipe with ``send_bytes`` (no
pickling of the input; measured faster than a temp file, see bench/hostile.py).

Workers are started with the ``forkserver`` method: forking the daemon itself
(threads, sockets, an event loop) is unsafe, and ``spawn`` would re-import
everything per worker. The fork server preloads the parser once.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import os
import pickle
import resource
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

from classify.router import Routed, Router
from ingest.mail import InboundMail
from ingest.parse import ParseLimits, Unparseable, parse_mail

Result = InboundMail | Unparseable | Routed
_PAGE = os.sysconf("SC_PAGE_SIZE")


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


def _rss() -> int:
    with open("/proc/self/statm", "rb") as statm:
        return int(statm.read().split()[1]) * _PAGE


ParseFunc = Callable[[bytes, ParseLimits], Result]


# Frames from the daemon come in pairs, a tag and its payload, so no byte of
# a mail can ever be mistaken for an instruction. An empty tag means stop.
_MAIL = b"m"
_ROUTER = b"r"
_WARM_UP_MAIL = (
    b"From: warm-up@localhost\r\nTo: servicedesk@localhost\r\nSubject: Tulostin ei toimi\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n\r\nHei, salasana vanhentui. Kiitos!\r\n"
)


def _route(result: Result, router: Router | None) -> Result:
    if router is None or not isinstance(result, InboundMail):
        return result
    try:
        return Routed(result, router.route(result))
    except Exception:  # the daemon classifies it again and reports the error with the mail
        return result


def _serve(conn: Connection, limits: ParseLimits, max_bytes: int, func: ParseFunc) -> None:
    """Worker main loop: raw bytes in, pickled result and resident size out."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the daemon decides when we stop
    if max_bytes > 0:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_AS, (max_bytes, max_bytes))
    router: Router | None = None
    while True:
        try:
            tag = conn.recv_bytes()
            if not tag:
                return
            raw = conn.recv_bytes()
        except (EOFError, OSError):
            return
        if tag == _ROUTER:
            router = pickle.loads(raw)  # our own object, from the daemon that started us
            continue
        result: Result = _route(func(raw, limits), router)
        del raw
        try:
            payload = pickle.dumps(result, protocol=pickle.HIGHEST_PROTOCOL)
        except MemoryError:
            payload = pickle.dumps(Unparseable("parsed mail too large to hand back"))
        del result
        conn.send_bytes(payload)
        del payload
        conn.send(_rss())


class WorkerDied(Exception):
    """The worker process ended in the middle of a mail."""


_START_LOCK = threading.Lock()


@contextlib.contextmanager
def _main_not_reimported() -> Iterator[None]:
    """Start a worker without it importing the daemon's main script.

    multiprocessing re-runs the parent's ``__main__`` file in every new
    process. Under the ``servicedesk`` console script that is the whole
    application (SQLAlchemy, Starlette, ...): measured 0.44 s of CPU and
    hundreds of modules per worker, paid again at every recycle. Workers
    need only what the fork server preloaded, so the path is hidden while
    the process is started (``python -m servicedesk`` never had the cost).
    """
    main = sys.modules.get("__main__")
    with _START_LOCK:
        path = main.__dict__.pop("__file__", None) if main is not None else None
        try:
            yield
        finally:
            if path is not None and main is not None:
                main.__file__ = path


class _Worker:
    """One process and its pipe; used by one mail at a time."""

    def __init__(self, ctx: Any, limits: ParseLimits, max_bytes: int, func: ParseFunc) -> None:
        parent, child = ctx.Pipe(duplex=True)
        self.process = ctx.Process(
            target=_serve,
            args=(child, limits, max_bytes, func),
            name="servicedesk-parse",
            daemon=True,
        )
        with _main_not_reimported():
            self.process.start()
        child.close()
        self.conn: Connection = parent
        self.rss = 0
        self.jobs = 0
        self.router_version = ""

    def call(self, raw: bytes, router: tuple[str, bytes] | None = None) -> Result:
        """Blocking round trip; runs in a thread so the loop stays free.

        ``router`` is (version, pickled Router): sent only when this worker
        has not seen that version yet.
        """
        try:
            if router is not None and router[0] != self.router_version:
                self.conn.send_bytes(_ROUTER)
                self.conn.send_bytes(router[1])
                self.router_version = router[0]
            self.conn.send_bytes(_MAIL)
            self.conn.send_bytes(raw)
            payload = self.conn.recv_bytes()
            self.rss = int(self.conn.recv())
        except (EOFError, OSError) as exc:
            raise WorkerDied(str(exc)) from exc
        self.jobs += 1
        result: Result = pickle.loads(payload)
        return result

    def kill(self) -> None:
        with contextlib.suppress(OSError, ValueError):
            self.process.kill()

    def close(self) -> None:
        """Ask politely, then kill; always reap the process and close the pipe."""
        if self.process.is_alive():
            with contextlib.suppress(OSError, ValueError):
                self.conn.send_bytes(b"")
            self.process.join(2)
            self.kill()
        self.process.join(5)
        self.conn.close()
        with contextlib.suppress(ValueError):
            self.process.close()


def _context() -> Any:
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(["ingest.parse", "classify.router"])
    return ctx


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
        self._ctx = _context()
        self._threads = ThreadPoolExecutor(self.size + 1, thread_name_prefix="sd-parse")
        self._slots = asyncio.Semaphore(self.size)
        self._idle: list[_Worker] = []
        self._closed = False
        self.killed = 0  # workers killed over budget: for metrics and tests
        self.recycled = 0

    async def __call__(self, raw: bytes) -> Result:
        if self._closed:
            raise RuntimeError("BudgetParser is closed")
        async with self._slots:
            loop = asyncio.get_running_loop()
            worker = self._idle.pop() if self._idle else await self._spawn()
            job = loop.run_in_executor(self._threads, worker.call, raw, self._router_now())
            try:
                result = await asyncio.wait_for(asyncio.shield(job), self.budget.seconds)
            except TimeoutError:
                await self._discard(worker, job)
                return Unparseable(f"exceeded processing budget of {self.budget.seconds:g} s")
            except WorkerDied:
                code = worker.process.exitcode
                await self._discard(worker, job)
                return Unparseable(f"parser process died (exit code {code})")
            except BaseException:  # cancelled by the pipeline's own deadline, or shutdown
                await asyncio.shield(self._discard(worker, job))
                raise
            self._release(worker)
            return result

    async def warm_up(self) -> None:
        """Start every worker and route one small mail through each.

        A cold worker (process start, imports, rules unpickled, stemmer
        caches empty) takes most of a second on its first mail; a daemon
        pays that at start, not on the first requester's mail.
        """
        await asyncio.gather(*(self(_WARM_UP_MAIL) for _ in range(self.size)))

    def _router_now(self) -> tuple[str, bytes] | None:
        if self.router is None:
            return None
        router = self.router()
        if self._router_frame is None or self._router_frame[0] != router.version:
            self._router_frame = (router.version, pickle.dumps(router, pickle.HIGHEST_PROTOCOL))
        return self._router_frame

    async def _spawn(self) -> _Worker:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(
            self._threads, _Worker, self._ctx, self.limits, self.budget.max_worker_bytes, self.func
        )

    async def _discard(self, worker: _Worker, job: asyncio.Future[Result]) -> None:
        """Kill a worker mid-mail; its thread then sees EOF and ends."""
        worker.kill()
        self.killed += 1
        with contextlib.suppress(BaseException):
            await job
        await asyncio.get_running_loop().run_in_executor(self._threads, worker.close)

    def _release(self, worker: _Worker) -> None:
        worn = (
            worker.rss > self.budget.recycle_rss_bytes
            or worker.jobs >= self.budget.max_jobs_per_worker
        )
        if worn or self._closed:
            self.recycled += 1
            self._threads.submit(worker.close)
        else:
            self._idle.append(worker)

    def worker_pids(self) -> list[int]:
        return [w.process.pid for w in self._idle if w.process.pid is not None]

    async def aclose(self) -> None:
        self._closed = True
        idle, self._idle = self._idle, []
        loop = asyncio.get_running_loop()
        await asyncio.gather(*(loop.run_in_executor(self._threads, w.close) for w in idle))
        self._threads.shutdown(wait=True)


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
