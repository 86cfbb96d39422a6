"""How the IMAP watcher paces reconnects and reports whether it is well.

Kept apart from the loop so the pacing rules can be read (and tested) on
their own, with the waits that give way to a shutdown: a dropped connection
is retried within a second or two, a refused login only every half minute
and slower, never in a hot loop, and the health state turns unhealthy after
N consecutive failures so the health endpoint can page someone.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable
from dataclasses import dataclass
from datetime import UTC, datetime


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Exponential backoff with jitter; auth failures start (and cap) much higher."""

    initial_seconds: float = 1.0
    max_seconds: float = 60.0
    auth_initial_seconds: float = 30.0
    auth_max_seconds: float = 600.0
    factor: float = 2.0
    jitter: float = 0.25  # +-25 %: many daemons after one server restart do not stampede

    def delay(
        self, failures: int, *, auth: bool = False, rng: random.Random | None = None
    ) -> float:
        """Seconds to wait after the ``failures``-th consecutive failure (1-based)."""
        initial = self.auth_initial_seconds if auth else self.initial_seconds
        cap = self.auth_max_seconds if auth else self.max_seconds
        base = min(cap, initial * self.factor ** max(0, failures - 1))
        spread = (rng or random).uniform(-self.jitter, self.jitter)
        return max(0.0, min(cap, base * (1.0 + spread)))


@dataclass(slots=True)
class WatcherHealth:
    """Live state of one mailbox watcher, read by the health endpoint and metrics."""

    mailbox: str
    unhealthy_after: int
    connected: bool = False
    consecutive_failures: int = 0
    last_error: str = ""
    last_success: datetime | None = None
    idling: bool = False
    mails_handled: int = 0

    @property
    def healthy(self) -> bool:
        return self.consecutive_failures < self.unhealthy_after

    def failed(self, error: str) -> None:
        self.connected = False
        self.idling = False
        self.consecutive_failures += 1
        self.last_error = error

    def succeeded(self) -> None:
        self.connected = True
        self.consecutive_failures = 0
        self.last_success = datetime.now(UTC)

    def as_dict(self) -> dict[str, object]:
        return {
            "mailbox": self.mailbox,
            "healthy": self.healthy,
            "connected": self.connected,
            "idling": self.idling,
            "consecutive_failures": self.consecutive_failures,
            "last_error": self.last_error,
            "last_success": self.last_success.isoformat() if self.last_success else None,
            "mails_handled": self.mails_handled,
        }


async def unless_stopped(work: Awaitable[None], stop: asyncio.Event) -> bool:
    """Run ``work`` but abandon it when ``stop`` is set first (a connect to a dead
    host must not hold up shutdown for a whole timeout). True when it finished."""
    task = asyncio.ensure_future(work)
    stopped = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({task, stopped}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopped.cancel()
        if not task.done():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
    if task.cancelled():
        return False
    task.result()  # re-raise the failure, if any
    return True


async def sleep_unless_stopped(seconds: float, stop: asyncio.Event) -> None:
    """Back off, but wake at once when asked to stop."""
    try:
        await asyncio.wait_for(stop.wait(), timeout=seconds)
    except TimeoutError:
        pass
