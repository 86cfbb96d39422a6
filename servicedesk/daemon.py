"""``servicedesk run``: intake, outbox, web and periodic jobs in one process.

Each part is a task that watches one shared ``stop`` event; SIGTERM/SIGINT
set it, every part finishes what it has in hand, and the process exits 0.
``--only`` runs one part so intake, sending and web can be scaled apart;
``--once`` drains mailboxes and outbox and exits (cron, tests, the demo).
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import structlog
from apscheduler.schedulers.asyncio import AsyncIOScheduler

from ingest.imap import MailboxWatcher
from notify.webhooks import WebhookWorker
from servicedesk.runtime import Runtime
from servicedesk.settings import ImapSettings
from store.checkpoints import Checkpoints
from store.housekeeping import auto_close, remind_waiting
from store.leases import leadership

log = structlog.get_logger("servicedesk.daemon")

PARTS = ("ingest", "notify", "web")


@dataclass
class DaemonState:
    """What health and metrics read about this process."""

    watchers: dict[str, MailboxWatcher] = field(default_factory=dict)
    leading: set[str] = field(default_factory=set)


class Daemon:
    def __init__(
        self,
        runtime: Runtime,
        parts: tuple[str, ...] = PARTS,
        *,
        stop: asyncio.Event | None = None,
    ) -> None:
        """``stop`` may already be set: a stop asked for while starting up."""
        self.runtime = runtime
        self.parts = parts
        self.stop = stop or asyncio.Event()
        self.state = DaemonState()

    # -- one mailbox ----------------------------------------------------------

    def _watcher(self, mailbox: ImapSettings) -> MailboxWatcher:
        watcher = MailboxWatcher(
            mailbox,
            self.runtime.pipeline.process,
            Checkpoints(self.runtime.sessions),
            log.bind(mailbox=mailbox.name),
        )
        self.state.watchers[mailbox.name] = watcher
        return watcher

    async def _lead_mailbox(self, mailbox: ImapSettings) -> None:
        """Ingest the mailbox while we lead it; wait as standby otherwise."""
        settings = self.runtime.settings
        while not self.stop.is_set():
            async with leadership(
                self.runtime.engine, mailbox.name, settings.data_dir, self.stop
            ) as lease:
                if lease is None:
                    return
                self.state.leading.add(mailbox.name)
                log.info("mailbox.leading", mailbox=mailbox.name)
                watcher_stop = asyncio.Event()
                relay = asyncio.create_task(_first_of(self.stop, lease.lost, watcher_stop))
                try:
                    await self._watcher(mailbox).run(watcher_stop)
                finally:
                    relay.cancel()
                    self.state.leading.discard(mailbox.name)
                if lease.lost.is_set():
                    log.warning("mailbox.lease_lost", mailbox=mailbox.name)

    # -- the process ----------------------------------------------------------

    async def drain_once(self) -> int:
        """Everything waiting now, then return: mailboxes first, then the outbox."""
        handled = 0
        if "ingest" in self.parts:
            # Parse workers start while the mailbox is being logged into, not
            # on the first mail (a cold worker costs most of a second).
            warming = asyncio.create_task(self.runtime.parser.warm_up())
            try:
                for mailbox in self.runtime.settings.all_mailboxes():
                    async with leadership(
                        self.runtime.engine, mailbox.name, self.runtime.settings.data_dir, self.stop
                    ) as lease:
                        if lease is not None:
                            handled += await self._watcher(mailbox).drain_once(self.stop)
            finally:
                await warming
        if "notify" in self.parts:
            handled += await self.runtime.outbox.drain_once()
            if self.runtime.settings.webhooks.urls:
                handled += await WebhookWorker(
                    self.runtime.sessions, self.runtime.settings.webhooks
                ).drain_once()
        return handled

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, self.request_stop, signum)
        scheduler = self._scheduler()
        scheduler.start()
        tasks: list[asyncio.Task[None]] = []
        if "ingest" in self.parts:
            tasks.append(asyncio.create_task(self.runtime.parser.warm_up()))
            for mailbox in self.runtime.settings.all_mailboxes():
                tasks.append(asyncio.create_task(self._lead_mailbox(mailbox)))
        if "notify" in self.parts:
            tasks.append(asyncio.create_task(self.runtime.outbox.run(self.stop)))
            if self.runtime.settings.webhooks.urls:
                hooks = WebhookWorker(self.runtime.sessions, self.runtime.settings.webhooks)
                tasks.append(asyncio.create_task(hooks.run(self.stop)))
        if "web" in self.parts:
            tasks.append(asyncio.create_task(self._serve_web()))
        log.info("daemon.started", parts=list(self.parts), mailboxes=len(self.state.watchers))
        try:
            await self.stop.wait()
            log.info("daemon.stopping")
            await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), 15)
        except TimeoutError:
            log.error("daemon.stop_timeout")
            for task in tasks:
                task.cancel()
        finally:
            scheduler.shutdown(wait=False)
            for signum in (signal.SIGTERM, signal.SIGINT):
                loop.remove_signal_handler(signum)
        log.info("daemon.stopped")
        return 0

    def request_stop(self, signum: int | None = None) -> None:
        log.info("daemon.signal", signal=signum)
        self.stop.set()

    def _jobs(self) -> list[Job]:
        rules = self.runtime.rules

        async def refresh_rules() -> None:
            rules.refresh()

        async def close_resolved() -> None:
            closed = await auto_close(
                self.runtime.sessions, self.runtime.settings.notify.auto_close_days
            )
            if closed:
                log.info("tickets.auto_closed", count=closed)

        async def remind() -> None:
            sent = await remind_waiting(
                self.runtime.sessions, self.runtime.settings.notify.remind_waiting_days
            )
            if sent:
                log.info("tickets.reminded", count=sent)

        jobs = [Job("rules.refresh", self.runtime.settings.rules.reload_seconds, refresh_rules)]
        if "notify" in self.parts:
            jobs.append(Job("tickets.auto_close", 3600, close_resolved))
            jobs.append(Job("tickets.remind_waiting", 3600, remind))
        return jobs

    def _scheduler(self) -> AsyncIOScheduler:
        scheduler = AsyncIOScheduler(timezone="UTC")
        for job in self._jobs():
            scheduler.add_job(job.func, "interval", seconds=job.seconds, id=job.name,
                              max_instances=1, coalesce=True)  # fmt: skip
        return scheduler

    async def _serve_web(self) -> None:
        from servicedesk.web import create_app
        from servicedesk.web.health import HealthState
        from servicedesk.web.server import serve

        settings = self.runtime.settings.web
        health = HealthState(
            watchers=lambda: [w.health for w in self.state.watchers.values()],
            rules=self.runtime.rules.status,
            latency=lambda: self.runtime.pipeline.latency if "ingest" in self.parts else None,
        )
        app = create_app(self.runtime, health)
        await serve(
            app, settings.host, settings.port, self.stop,
            forwarded_allow_ips=settings.forwarded_allow_ips,
        )  # fmt: skip


async def _first_of(*events: asyncio.Event) -> None:
    """Set the last event as soon as any of the others is set."""
    *sources, target = events
    waiters = [asyncio.create_task(e.wait()) for e in sources]
    try:
        await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        target.set()
    finally:
        for waiter in waiters:
            waiter.cancel()


@dataclass(frozen=True)
class Job:
    name: str
    seconds: float
    func: Callable[[], Awaitable[None]]
