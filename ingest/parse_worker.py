"""One parse worker process and the daemon's handle on it.

The worker reads tagged frames from its pipe, parses (and routes) one mail at
a time, in order, and answers each mail with one frame: the pickled result
and its own resident size. Frames come in pairs, a tag and its payload, so no
byte of a mail can ever be mistaken for an instruction; an empty tag means
stop. Raw bytes go over the pipe with ``send_bytes`` (no pickling of the
input; measured faster than a temp file, see bench/hostile.py).

Workers are started with the ``forkserver`` method: forking the daemon itself
(threads, sockets, an event loop) is unsafe, and ``spawn`` would re-import
everything per worker. The fork server preloads the parser once.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import pickle
import resource
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from multiprocessing.connection import Connection
from typing import Any

from classify.router import Routed, Router
from ingest.boundary import fast_boundaries
from ingest.mail import InboundMail
from ingest.parse import ParseLimits, Unparseable

Result = InboundMail | Unparseable | Routed
ParseFunc = Callable[[bytes, ParseLimits], Result]

_PAGE = os.sysconf("SC_PAGE_SIZE")
_MAIL = b"m"
_ROUTER = b"r"


class WorkerDied(Exception):
    """The worker process ended (or was killed) before it answered."""


def _rss() -> int:
    with open("/proc/self/statm", "rb") as statm:
        return int(statm.read().split()[1]) * _PAGE


def _route(result: Result, router: Router | None) -> Result:
    if router is None or not isinstance(result, InboundMail):
        return result
    try:
        return Routed(result, router.route(result))
    except Exception:  # the daemon classifies it again and reports the error with the mail
        return result


def _serve(conn: Connection, limits: ParseLimits, max_bytes: int, func: ParseFunc) -> None:
    """Worker process entry: signals and memory cap set, then answer mails."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the daemon decides when we stop
    if max_bytes > 0:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_AS, (max_bytes, max_bytes))
    with fast_boundaries():  # the daemon's parsing only, see ingest.boundary
        _answer(conn, limits, func)


def _answer(conn: Connection, limits: ParseLimits, func: ParseFunc) -> None:
    """Frames in, one (result, resident size) frame out per mail, until told to stop."""
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
            payload = pickle.dumps((result, _rss()), protocol=pickle.HIGHEST_PROTOCOL)
        except MemoryError:
            payload = pickle.dumps((Unparseable("parsed mail too large to hand back"), _rss()))
        del result
        conn.send_bytes(payload)
        del payload


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


def context() -> Any:
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(["ingest.parse", "classify.router"])
    return ctx


class Worker:
    """One process and its pipe, driven by one feeder thread (ingest.budget)."""

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
        # Set when the daemon killed us for a reason other than the mail in hand
        # (its caller gave up): the feeder then retries the others elsewhere.
        self.killed_on_purpose = False

    @property
    def pid(self) -> int | None:
        pid: int | None = self.process.pid
        return pid

    def send(self, raw: bytes, router: tuple[str, bytes] | None) -> None:
        """Queue one mail; ``router`` is (version, pickled Router), sent when new to us."""
        try:
            if router is not None and router[0] != self.router_version:
                self.conn.send_bytes(_ROUTER)
                self.conn.send_bytes(router[1])
                self.router_version = router[0]
            self.conn.send_bytes(_MAIL)
            self.conn.send_bytes(raw)
        except (OSError, ValueError) as exc:
            raise WorkerDied(str(exc)) from exc

    def poll(self, seconds: float) -> bool:
        """Whether an answer (or EOF) is ready within ``seconds``."""
        try:
            return self.conn.poll(seconds)
        except (OSError, ValueError):
            return True  # closed under us: receive() reports it

    def receive(self) -> Result:
        try:
            payload = self.conn.recv_bytes()
        except (EOFError, OSError, ValueError) as exc:
            raise WorkerDied(str(exc)) from exc
        result, self.rss = pickle.loads(payload)
        self.jobs += 1
        return result  # type: ignore[no-any-return]

    def kill(self) -> None:
        with contextlib.suppress(OSError, ValueError, AttributeError):
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
