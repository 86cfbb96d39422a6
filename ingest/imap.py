"""Watch one IMAP mailbox and hand every mail to the pipeline, exactly once in effect.

The rule that makes a crash harmless: a mail is acknowledged on the server
(moved, flagged or deleted) only after the handler returned, i.e. after its
ticket was committed. A crash between the two leaves the mail where it was;
on restart it is offered again, the handler recognises it (unique
``mailbox:UIDVALIDITY:UID`` key and Message-ID) and answers DUPLICATE, and
only then is it acknowledged. Nothing is lost and nothing is created twice.

What to search for follows from the acknowledgement mode: with ``move`` and
``delete`` every mail still in the folder is by definition unacknowledged,
so all of them are offered; with ``flag`` the mail stays, so the search skips
mail carrying the keyword and starts above the checkpoint. The checkpoint is
a low-water mark: every UID at or below it is acknowledged, so a mail that
was deferred or whose handler raised keeps the mark below it and is searched
again after a restart.

The loop never ends on its own: connection loss, server restarts and
timeouts lead to a reconnect with exponential backoff and jitter; a refused
login is retried slowly; a handler that raises is a bug, logged with the
mail's key, and the mail stays on the server for a later attempt.
"""

from __future__ import annotations

import asyncio
import functools
import ssl
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Sequence
from typing import Protocol

import structlog

from ingest.imap_ack import Acks, acknowledge
from ingest.imap_flow import BatchFlow
from ingest.imap_health import RetryPolicy, WatcherHealth, sleep_unless_stopped, unless_stopped
from ingest.imap_session import ImapAuthError, ImapError, ImapSession, describe
from ingest.imap_wire import check_keyword, size_batches
from ingest.outcome import Outcome, SourceRef
from servicedesk.settings import ImapSettings

__all__ = [
    "CheckpointStore",
    "Handler",
    "MailboxWatcher",
    "RetryPolicy",
    "WatcherHealth",
]

Handler = Callable[[bytes, SourceRef], Awaitable[Outcome]]

SIZE_CHUNK = 200  # UIDs per RFC822.SIZE fetch: keeps every response small
MAX_FETCH_COUNT = 100  # mails per batch, whatever batch_size says
DEFAULT_BATCH_BYTES = 16 * 1024 * 1024
# The checkpoint is stored at most this often during a drain, and at its end.
# Storing it per batch took the database's write lock from the ticket writer
# every hundred mails (and on SQLite waited for it, about 80 ms each time). A
# checkpoint that lags only makes a restart search a few more UIDs: mail is
# found by being in the folder (move, delete) or by lacking the keyword (flag).
CHECKPOINT_SECONDS = 1.0


class CheckpointStore(Protocol):
    """Per-mailbox (UIDVALIDITY, last acknowledged UID), kept in the store."""

    async def load(self, mailbox: str) -> tuple[int, int] | None: ...

    async def save(self, mailbox: str, uidvalidity: int, last_uid: int) -> None: ...


class MailboxWatcher:
    """One mailbox: connect, drain, acknowledge, IDLE or poll; reconnect forever."""

    def __init__(
        self,
        settings: ImapSettings,
        handler: Handler,
        checkpoints: CheckpointStore,
        log: structlog.typing.FilteringBoundLogger,
        *,
        ssl_context: ssl.SSLContext | None = None,
        ignore_capabilities: Collection[str] = (),
        retry: RetryPolicy | None = None,
        max_batch_bytes: int = DEFAULT_BATCH_BYTES,
    ) -> None:
        """``ignore_capabilities`` pretends the server lacks e.g. MOVE or IDLE
        (a workaround for servers whose implementation is broken, and how the
        fallbacks are tested against a server that has them)."""
        self.settings = settings
        self.name = settings.name
        self.handler = handler
        self.checkpoints = checkpoints
        self.retry = retry or RetryPolicy()
        self.max_batch_bytes = max_batch_bytes
        self.health = WatcherHealth(settings.name, settings.unhealthy_after_failures)
        self._keyword = check_keyword(settings.flag_keyword) if settings.ack == "flag" else ""
        self._ssl_context = ssl_context
        self._ignore = tuple(ignore_capabilities)
        self._log = log.bind(mailbox=settings.name)
        self._uidvalidity = 0
        self._last_uid = 0
        self._saved_uid = 0  # what the store holds
        self._saved_at = 0.0
        # UID -> monotonic time before which it is not offered again (deferred,
        # handler raised, acknowledgement refused): no hot loop on one mail.
        self._retry_at: dict[int, float] = {}

    # -- public ------------------------------------------------------------------
    async def run(self, stop: asyncio.Event) -> None:
        """Watch until ``stop`` is set; then finish the mail in hand, log out, return."""
        s = self.settings
        self._log.info(
            "imap.watch_start", host=s.host, port=s.port, security=s.security,
            folder=s.folder, ack=s.ack, idle=s.idle,
        )  # fmt: skip
        while not stop.is_set():
            session = self._session()
            try:
                if not await unless_stopped(self._open(session), stop):
                    session.abort()
                    break
                await self._serve(session, stop)
            except asyncio.CancelledError:
                session.abort()
                self.health.connected = False
                raise
            except ImapAuthError as exc:
                session.abort()
                delay = self._failed(exc, auth=True)
            except Exception as exc:
                session.abort()
                delay = self._failed(exc, auth=False)
            else:
                await session.logout()
                break
            await sleep_unless_stopped(delay, stop)
        self.health.connected = False
        self._log.info("imap.watch_stop")

    async def drain_once(self, stop: asyncio.Event | None = None) -> int:
        """Process everything now in the folder once, log out; return how many were handled.

        For ``servicedesk run --once``: no retry loop, a failure is raised.
        Mail deferred or failed during this drain is not offered twice.
        """
        session = self._session()
        try:
            await self._open(session)
            count = await self._drain(session, stop or asyncio.Event(), attempted=set())
        except asyncio.CancelledError:
            session.abort()
            raise
        except Exception as exc:
            session.abort()
            self.health.failed(describe(exc))
            raise
        self.health.succeeded()
        await session.logout()
        self.health.connected = False
        self._log.info("imap.drained", handled=count)
        return count

    # -- connection ----------------------------------------------------------------
    def _session(self) -> ImapSession:
        return ImapSession(
            self.settings, ssl_context=self._ssl_context, ignore_capabilities=self._ignore
        )

    async def _open(self, session: ImapSession) -> None:
        s = self.settings
        self._log.info("imap.connecting", attempt=self.health.consecutive_failures + 1)
        await session.open()
        folders = [s.quarantine_folder] + ([s.processed_folder] if s.ack == "move" else [])
        for folder in folders:
            if await session.ensure_folder(folder):
                self._log.info("imap.folder_created", folder=folder)
        uidvalidity = await session.select(s.folder)
        await self._load_checkpoint(uidvalidity)
        self.health.connected = True
        self._log.info(
            "imap.connected", uidvalidity=uidvalidity, last_uid=self._last_uid,
            idle=session.has("IDLE"), move=session.has("MOVE"), uidplus=session.has("UIDPLUS"),
        )  # fmt: skip

    async def _load_checkpoint(self, uidvalidity: int) -> None:
        stored = await self.checkpoints.load(self.name)
        if stored is not None and stored[0] == uidvalidity:
            self._uidvalidity, self._last_uid = uidvalidity, stored[1]
            self._saved_uid, self._saved_at = stored[1], time.monotonic()
            return
        if stored is not None:
            # The folder was recreated or the server rebuilt its index: old UIDs
            # mean nothing now. Offer everything again; dedup by Message-ID and
            # raw hash keeps tickets unique.
            self._log.warning(
                "imap.uidvalidity_changed", old=stored[0], new=uidvalidity, old_last_uid=stored[1]
            )
        self._uidvalidity, self._last_uid = uidvalidity, 0
        self._retry_at.clear()
        await self.checkpoints.save(self.name, uidvalidity, 0)
        self._saved_uid, self._saved_at = 0, time.monotonic()

    def _failed(self, exc: BaseException, *, auth: bool) -> float:
        self.health.failed(describe(exc))
        failures = self.health.consecutive_failures
        delay = self.retry.delay(failures, auth=auth)
        fields = {
            "error": describe(exc), "failures": failures, "retry_in": round(delay, 2),
            "healthy": self.health.healthy,
        }  # fmt: skip
        if auth:
            self._log.error("imap.login_failed", user=self.settings.user, **fields)
        elif isinstance(exc, ImapError):
            self._log.warning("imap.connection_failed", **fields)
        else:
            self._log.error("imap.watch_error", exc_info=exc, **fields)
        return delay

    # -- the work ------------------------------------------------------------------
    async def _serve(self, session: ImapSession, stop: asyncio.Event) -> None:
        while not stop.is_set():
            await self._drain(session, stop, attempted=None)
            self.health.succeeded()
            if stop.is_set():
                return
            await self._wait_for_mail(session, stop)

    async def _wait_for_mail(self, session: ImapSession, stop: asyncio.Event) -> None:
        s = self.settings
        if not (s.idle and session.has("IDLE")):
            await session.wait_poll(s.poll_seconds, stop)
            return
        # poll_seconds doubles as the safety net: even if a push is missed we
        # look again; idle_renew_seconds re-issues IDLE before servers drop it.
        self.health.idling = True
        try:
            result = await session.idle(min(s.idle_renew_seconds, s.poll_seconds), stop)
        finally:
            self.health.idling = False
        self._log.debug("imap.idle_end", reason=result)

    async def _drain(
        self, session: ImapSession, stop: asyncio.Event, attempted: set[int] | None
    ) -> int:
        """Search and process until nothing offerable is left (new mail may arrive meanwhile)."""
        handled = 0
        while not stop.is_set():
            uids = await self._offerable(session, attempted)
            if not uids and not session.mail_arrived:
                break
            handled += await self._process(session, uids, stop, attempted)
        return handled

    async def _offerable(self, session: ImapSession, attempted: set[int] | None) -> list[int]:
        if self.settings.ack == "flag":
            uids = await session.uid_search(
                "UID", f"{self._last_uid + 1}:*", "UNDELETED", "UNKEYWORD", self._keyword
            )
            uids = [uid for uid in uids if uid > self._last_uid]  # "n:*" also matches the max
        else:
            uids = await session.uid_search("UNDELETED")
        present = set(uids)
        for uid in [uid for uid in self._retry_at if uid not in present]:
            del self._retry_at[uid]
        now = time.monotonic()
        return [
            uid
            for uid in uids
            if self._retry_at.get(uid, 0.0) <= now and (attempted is None or uid not in attempted)
        ]

    async def _process(
        self,
        session: ImapSession,
        uids: Sequence[int],
        stop: asyncio.Event,
        attempted: set[int] | None,
    ) -> int:
        """Fetch in bounded batches; handler per mail; acknowledge per batch (ingest.imap_flow)."""
        acknowledge = functools.partial(self._acknowledge, session)
        flow = BatchFlow(
            session, self._batches(session, uids), self._offer, acknowledge, self._advance,
            self.settings.concurrency, self.max_batch_bytes, stop, attempted,
        )  # fmt: skip
        handled = await flow.run()  # after a failure, the next drain stores the checkpoint
        await self._save_checkpoint()
        return handled

    async def _batches(self, session: ImapSession, uids: Sequence[int]) -> AsyncIterator[list[int]]:
        count = min(self.settings.batch_size, MAX_FETCH_COUNT)
        for start in range(0, len(uids), SIZE_CHUNK):
            chunk = uids[start : start + SIZE_CHUNK]
            sizes = await session.fetch_sizes(chunk)
            for batch in size_batches(chunk, sizes, count, self.max_batch_bytes):
                yield batch

    async def _offer(self, uid: int, raw: bytes) -> Outcome | None:
        key = f"{self.name}:{self._uidvalidity}:{uid}"
        ref = SourceRef(kind="imap", name=self.name, key=key)
        try:
            outcome = await self.handler(raw, ref)
        except Exception:
            # A raising handler is a bug (the pipeline quarantines bad mail
            # itself): keep the mail on the server and carry on with the next.
            self._log.exception("imap.handler_failed", key=key, size=len(raw))
            self._retry_later(uid)
            return None
        self.health.mails_handled += 1
        self._log.info(
            "imap.mail", key=key, action=outcome.action.value, ticket=outcome.ticket,
            reason=outcome.reason or None, size=len(raw),
        )  # fmt: skip
        if not outcome.action.acknowledged:
            self._retry_later(uid)
        return outcome

    def _retry_later(self, uid: int) -> None:
        self._retry_at[uid] = time.monotonic() + self.settings.poll_seconds

    async def _acknowledge(self, session: ImapSession, acks: Acks) -> list[int]:
        """Acknowledge on the server; mail whose acknowledgement failed is retried later."""
        acked, failed = await acknowledge(session, self.settings, self._keyword, acks, self._log)
        for uid in failed:
            self._retry_later(uid)
        return acked

    async def _advance(self, acked: list[int]) -> None:
        """Raise the low-water checkpoint as far as no unacknowledged UID lies below it."""
        if not acked:
            return
        top = max(acked)
        blockers = [uid for uid in self._retry_at if uid <= top]
        mark = min(blockers) - 1 if blockers else top
        if mark > self._last_uid:
            self._last_uid = mark
            if time.monotonic() - self._saved_at >= CHECKPOINT_SECONDS:
                await self._save_checkpoint()

    async def _save_checkpoint(self) -> None:
        if self._last_uid == self._saved_uid:
            return
        uid = self._last_uid
        await self.checkpoints.save(self.name, self._uidvalidity, uid)
        self._saved_uid, self._saved_at = uid, time.monotonic()
