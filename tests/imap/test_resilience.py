"""The long-running loop: IDLE pushes, restarts, cut connections, bad passwords, crashes."""

from __future__ import annotations

import asyncio
import email
import time
from collections.abc import Callable

import pytest

from ingest.imap import MailboxWatcher, RetryPolicy
from ingest.imap_session import ImapSession
from ingest.outcome import Action, SourceRef
from servicedesk.settings import ImapSettings
from tests.imap.conftest import (
    MemoryCheckpoints,
    Recorder,
    capturing_logger,
    events,
    wait_until,
    watching,
)
from tests.servers.dovecot import DovecotServer
from tests.servers.mailbox import TestMailbox, make_mail
from tests.servers.proxy import TcpProxy

pytestmark = pytest.mark.imap

FAST_RETRY = RetryPolicy(initial_seconds=0.1, max_seconds=0.5, auth_initial_seconds=0.4)


async def test_idle_push_delivers_without_waiting_for_poll(
    imap_mailbox: TestMailbox, checkpoints: MemoryCheckpoints
) -> None:
    handler = Recorder()
    log, _ = capturing_logger()
    watcher = MailboxWatcher(imap_mailbox.settings(poll_seconds=60), handler, checkpoints, log)
    async with watching(watcher):
        await wait_until(lambda: watcher.health.idling)
        latencies: list[float] = []
        for i in range(3):
            sent = time.monotonic()
            await imap_mailbox.aappend(make_mail(f"pushed {i}"))
            await wait_until(lambda: len(handler.offers) == len(latencies) + 1, timeout=5)
            latencies.append(handler.arrived[-1] - sent)
            await wait_until(lambda: watcher.health.idling)
    assert imap_mailbox.count("Processed") == 3
    print(f"IDLE append->handler latencies: {[round(x, 3) for x in latencies]}")


async def test_poll_mode_without_idle(
    imap_mailbox: TestMailbox, checkpoints: MemoryCheckpoints
) -> None:
    handler = Recorder()
    log, _ = capturing_logger()
    settings = imap_mailbox.settings(poll_seconds=0.3)
    watcher = MailboxWatcher(settings, handler, checkpoints, log, ignore_capabilities=["IDLE"])
    async with watching(watcher):
        await wait_until(lambda: watcher.health.last_success is not None)
        await imap_mailbox.aappend(make_mail("polled"))
        await wait_until(lambda: len(handler.offers) == 1, timeout=5)
        assert not watcher.health.idling


async def test_graceful_stop_while_idling_is_quick(
    imap_mailbox: TestMailbox, checkpoints: MemoryCheckpoints
) -> None:
    log, sink = capturing_logger()
    watcher = MailboxWatcher(imap_mailbox.settings(), Recorder(), checkpoints, log)
    stop = asyncio.Event()
    task = asyncio.create_task(watcher.run(stop))
    await wait_until(lambda: watcher.health.idling)
    started = time.monotonic()
    stop.set()
    await asyncio.wait_for(task, timeout=5)
    assert time.monotonic() - started < 2
    assert events(sink, "imap.watch_stop")
    assert not watcher.health.connected


async def test_server_restart_reconnects_and_delivers(
    dovecot: DovecotServer, imap_mailbox: TestMailbox, checkpoints: MemoryCheckpoints
) -> None:
    handler = Recorder()
    log, sink = capturing_logger()
    watcher = MailboxWatcher(
        imap_mailbox.settings(poll_seconds=60), handler, checkpoints, log, retry=FAST_RETRY
    )
    async with watching(watcher):
        await wait_until(lambda: watcher.health.idling)
        await asyncio.to_thread(dovecot.stop)
        await wait_until(lambda: not watcher.health.connected, timeout=5)
        await asyncio.sleep(0.5)  # a few refused reconnects while the server is down
        await asyncio.to_thread(dovecot.start)
        await imap_mailbox.aappend(make_mail("after restart"))
        await wait_until(lambda: len(handler.offers) == 1, timeout=10)
        await wait_until(lambda: watcher.health.idling, timeout=5)
    assert watcher.health.consecutive_failures == 0 and watcher.health.healthy
    failures = events(sink, "imap.connection_failed")
    assert failures and all("retry_in" in f for f in failures)
    assert imap_mailbox.count("Processed") == 1


async def test_proxy_cut_reconnects_and_delivers(
    imap_mailbox: TestMailbox,
    checkpoints: MemoryCheckpoints,
    make_proxy: Callable[[str, int], TcpProxy],
) -> None:
    proxy = make_proxy(imap_mailbox.server.host, imap_mailbox.server.port)
    handler = Recorder()
    log, sink = capturing_logger()
    settings = imap_mailbox.settings(port=proxy.port, poll_seconds=60)
    watcher = MailboxWatcher(settings, handler, checkpoints, log, retry=FAST_RETRY)
    async with watching(watcher):
        await wait_until(lambda: watcher.health.idling)
        assert proxy.cut() == 1
        await imap_mailbox.aappend(make_mail("while cut"))  # direct to the server
        await wait_until(lambda: len(handler.offers) == 1, timeout=10)
    assert events(sink, "imap.connection_failed")
    assert proxy.accepted >= 2
    assert imap_mailbox.count("Processed") == 1


async def test_proxy_refusing_shows_backoff_then_recovers(
    imap_mailbox: TestMailbox,
    checkpoints: MemoryCheckpoints,
    make_proxy: Callable[[str, int], TcpProxy],
) -> None:
    proxy = make_proxy(imap_mailbox.server.host, imap_mailbox.server.port)
    proxy.refuse()
    settings = imap_mailbox.settings(port=proxy.port, unhealthy_after_failures=3)
    log, _ = capturing_logger()
    retry = RetryPolicy(initial_seconds=0.1, max_seconds=0.8, jitter=0.0)
    watcher = MailboxWatcher(settings, Recorder(), checkpoints, log, retry=retry)
    async with watching(watcher):
        await asyncio.sleep(2.0)
        attempts = proxy.accepted
        # 0.1 + 0.2 + 0.4 + 0.8 + 0.8 ... : about 5 attempts in 2 s, never dozens.
        assert 3 <= attempts <= 8, attempts
        assert not watcher.health.healthy
        proxy.accept()
        await wait_until(lambda: watcher.health.idling, timeout=5)
        assert watcher.health.healthy


async def test_wrong_password_is_reported_and_retried_slowly(
    imap_mailbox: TestMailbox, checkpoints: MemoryCheckpoints
) -> None:
    wrong = "not-the-password"
    settings = imap_mailbox.settings(password=wrong, unhealthy_after_failures=2)
    log, sink = capturing_logger()
    retry = RetryPolicy(auth_initial_seconds=0.4, auth_max_seconds=10, jitter=0.0)
    watcher = MailboxWatcher(settings, Recorder(), checkpoints, log, retry=retry)
    async with watching(watcher):
        await asyncio.sleep(2.5)
    # 0, 0.4, 1.2 (+0.8), next at 2.8: three attempts, not a hot loop.
    failed = events(sink, "imap.login_failed")
    assert 2 <= len(failed) <= 4, len(failed)
    assert not watcher.health.healthy
    assert "login refused" in watcher.health.last_error
    assert failed[0]["user"] == imap_mailbox.user
    assert wrong not in repr(sink.calls)  # never log the password


async def test_crash_between_handler_and_ack_reoffers_then_acks(
    imap_mailbox: TestMailbox, checkpoints: MemoryCheckpoints
) -> None:
    """Kill the watcher after the handler committed but before the server copy moved."""
    imap_mailbox.append(make_mail("crashy"))
    in_handler = asyncio.Event()
    committed: list[str] = []

    async def commit_then_hang(_raw: bytes, ref: SourceRef) -> Action | None:
        committed.append(ref.key)  # the ticket is in the database now
        in_handler.set()
        await asyncio.Event().wait()  # the process dies here
        return None

    handler = Recorder(commit_then_hang)
    log, _ = capturing_logger()
    watcher = MailboxWatcher(imap_mailbox.settings(), handler, checkpoints, log)
    task = asyncio.create_task(watcher.run(asyncio.Event()))
    await asyncio.wait_for(in_handler.wait(), timeout=5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert imap_mailbox.count("INBOX") == 1  # not acknowledged

    # Restart: the mail is offered again under the same key, and the
    # "database" recognises it (DUPLICATE); only then is it acknowledged.
    handler.decide = None
    handler.message_ids.add(_message_id(imap_mailbox))
    restarted = MailboxWatcher(imap_mailbox.settings(), handler, checkpoints, log)
    assert await restarted.drain_once() == 1
    assert handler.keys == committed * 2
    assert imap_mailbox.count("INBOX") == 0
    assert imap_mailbox.count("Processed") == 1


def _message_id(mailbox: TestMailbox) -> str:
    return str(email.message_from_bytes(mailbox.messages("INBOX")[0])["Message-ID"])


async def test_stop_during_a_hanging_connect_is_quick(checkpoints: MemoryCheckpoints) -> None:
    """A server that accepts TCP but never greets must not delay shutdown by the timeout."""
    server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        settings = ImapSettings(host="127.0.0.1", port=port, security="none", user="u",
                                password="p", timeout_seconds=30)  # fmt: skip
        log, _ = capturing_logger()
        watcher = MailboxWatcher(settings, Recorder(), checkpoints, log)
        stop = asyncio.Event()
        task = asyncio.create_task(watcher.run(stop))
        await asyncio.sleep(0.3)
        started = time.monotonic()
        stop.set()
        await asyncio.wait_for(task, timeout=5)
        assert time.monotonic() - started < 1
    finally:
        server.close()


async def test_search_reports_mail_that_arrived_since_the_last_command(
    imap_mailbox: TestMailbox,
) -> None:
    """The server announces new mail with the next answer, and only once, even
    when that answer's results miss it (Dovecot does exactly that here): the
    session must keep the announcement, and the watcher searches again
    instead of idling until the poll interval."""
    session = ImapSession(imap_mailbox.settings())
    await session.open()
    try:
        await session.select("INBOX")
        assert await session.uid_search("UNDELETED") == []
        assert session.mail_arrived is False
        imap_mailbox.append(make_mail("saapui juuri"))  # over another connection
        found = await session.uid_search("UNDELETED")
        assert session.mail_arrived is True
        if not found:
            found = await session.uid_search("UNDELETED")  # what the watcher does next
        assert len(found) == 1
        assert await session.uid_search("UNDELETED") == found
        assert session.mail_arrived is False  # announced once, not again
    finally:
        await session.logout()
