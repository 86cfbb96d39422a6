"""The watcher against the real Dovecot: what gets acknowledged, where, and when."""

from __future__ import annotations

import asyncio
import ssl
import tracemalloc
from collections.abc import Sequence
from typing import Any

import pytest

from ingest.imap import MailboxWatcher
from ingest.imap_session import ImapConnectionError, ImapSession
from ingest.outcome import Action, SourceRef
from tests.imap.conftest import MemoryCheckpoints, Recorder, capturing_logger, events
from tests.servers.dovecot import DovecotServer
from tests.servers.mailbox import TestMailbox, make_mail

pytestmark = pytest.mark.imap


def _watcher(
    mailbox: TestMailbox,
    handler: Recorder,
    checkpoints: MemoryCheckpoints,
    settings: dict[str, Any] | None = None,
    **kwargs: Any,
) -> MailboxWatcher:
    log, _ = capturing_logger()
    return MailboxWatcher(mailbox.settings(**(settings or {})), handler, checkpoints, log, **kwargs)


async def test_moves_to_processed_only_after_handler_returned(
    imap_mailbox: TestMailbox, checkpoints: MemoryCheckpoints
) -> None:
    raws = [make_mail(f"mail {i}") for i in range(3)]
    imap_mailbox.append_many(raws)
    still_in_inbox: list[int] = []

    async def check_inbox(_raw: bytes, _ref: SourceRef) -> Action | None:
        # While the handler runs, the mail must still sit in INBOX, untouched.
        still_in_inbox.append(await imap_mailbox.acount("INBOX"))
        return None

    handler = Recorder(check_inbox)
    watcher = _watcher(imap_mailbox, handler, checkpoints)

    assert await watcher.drain_once() == 3

    assert still_in_inbox == [3, 3, 3]
    assert imap_mailbox.count("INBOX") == 0
    assert sorted(imap_mailbox.messages("Processed")) == sorted(raws)
    uidvalidity = imap_mailbox.uidvalidity()
    name = imap_mailbox.user
    assert handler.keys == [f"{name}:{uidvalidity}:{uid}" for uid in (1, 2, 3)]
    assert checkpoints.saved[name] == (uidvalidity, 3)
    assert "\\Seen" not in imap_mailbox.flags("Processed")[1]  # fetched with BODY.PEEK


async def test_outcomes_quarantine_defer_and_raising_handler(
    imap_mailbox: TestMailbox, checkpoints: MemoryCheckpoints
) -> None:
    for subject in ("ok", "bad", "later", "boom", "ok too"):
        imap_mailbox.append(make_mail(subject))

    async def decide(raw: bytes, _ref: SourceRef) -> Action | None:
        if b"Subject: bad" in raw:
            return Action.QUARANTINED
        if b"Subject: later" in raw:
            return Action.DEFERRED
        if b"Subject: boom" in raw:
            raise RuntimeError("handler bug")
        return None

    handler = Recorder(decide)
    log, sink = capturing_logger()
    watcher = MailboxWatcher(imap_mailbox.settings(), handler, checkpoints, log)

    assert await watcher.drain_once() == 4  # the raising one does not count as handled

    assert handler.subjects == ["ok", "bad", "later", "boom", "ok too"]  # one after the other
    assert imap_mailbox.count("Processed") == 2
    assert imap_mailbox.count("Quarantine") == 1
    assert imap_mailbox.uids("INBOX") == [3, 4]  # deferred and failed mail stay
    failed = events(sink, "imap.handler_failed")
    assert len(failed) == 1 and failed[0]["key"].endswith(":4")
    assert "handler bug" in failed[0]["exception"]
    # The low-water checkpoint stays below the first mail still waiting.
    assert checkpoints.saved[imap_mailbox.user][1] == 2

    # A second drain offers the two again; now they succeed and leave INBOX.
    handler.decide = None
    watcher.settings = imap_mailbox.settings(poll_seconds=0.01)
    watcher._retry_at.clear()
    assert await watcher.drain_once() == 2
    assert imap_mailbox.count("INBOX") == 0
    assert checkpoints.saved[imap_mailbox.user][1] == 4


async def test_flag_mode_keeps_mail_and_never_offers_it_twice(
    imap_mailbox: TestMailbox, checkpoints: MemoryCheckpoints
) -> None:
    imap_mailbox.append_many([make_mail("one"), make_mail("two")])
    handler = Recorder()
    watcher = _watcher(imap_mailbox, handler, checkpoints, settings={"ack": "flag"})

    assert await watcher.drain_once() == 2
    flags = imap_mailbox.flags("INBOX")
    assert all({"\\Seen", "ServiceDeskDone"} <= f for f in flags.values())
    assert "Processed" not in imap_mailbox.folders()

    imap_mailbox.append(make_mail("three"))
    assert await watcher.drain_once() == 1
    assert handler.subjects == ["one", "two", "three"]
    assert checkpoints.saved[imap_mailbox.user][1] == 3


async def test_flag_mode_reoffers_mail_below_checkpoint_without_keyword(
    imap_mailbox: TestMailbox, checkpoints: MemoryCheckpoints
) -> None:
    """Checkpoint is a low-water mark: deferred mail below acked mail is searched again."""
    imap_mailbox.append_many([make_mail("later"), make_mail("ok")])

    async def decide(raw: bytes, _ref: SourceRef) -> Action | None:
        return Action.DEFERRED if b"Subject: later" in raw else None

    handler = Recorder(decide)
    settings = {"ack": "flag", "poll_seconds": 0.01}
    assert await _watcher(imap_mailbox, handler, checkpoints, settings=settings).drain_once() == 2
    assert checkpoints.saved[imap_mailbox.user][1] == 0

    handler.decide = None  # a restarted daemon with the database back
    assert await _watcher(imap_mailbox, handler, checkpoints, settings=settings).drain_once() == 1
    assert handler.subjects == ["later", "ok", "later"]
    # The mark may lag (it only rises over UIDs known to be acknowledged), never lead.
    assert checkpoints.saved[imap_mailbox.user][1] >= 1
    assert await _watcher(imap_mailbox, handler, checkpoints, settings=settings).drain_once() == 0


async def test_delete_mode_expunges(
    imap_mailbox: TestMailbox, checkpoints: MemoryCheckpoints
) -> None:
    imap_mailbox.append_many([make_mail("a"), make_mail("b")])
    watcher = _watcher(imap_mailbox, Recorder(), checkpoints, settings={"ack": "delete"})
    assert await watcher.drain_once() == 2
    assert imap_mailbox.count("INBOX") == 0
    assert "Processed" not in imap_mailbox.folders()


@pytest.mark.parametrize("ignored", [("MOVE",), ("MOVE", "UIDPLUS")])
async def test_move_without_move_capability(
    imap_mailbox: TestMailbox, checkpoints: MemoryCheckpoints, ignored: tuple[str, ...]
) -> None:
    """COPY + \\Deleted + UID EXPUNGE (or plain EXPUNGE without UIDPLUS)."""
    imap_mailbox.append_many([make_mail("a"), make_mail("b"), make_mail("c")])
    watcher = _watcher(imap_mailbox, Recorder(), checkpoints, ignore_capabilities=ignored)
    assert await watcher.drain_once() == 3
    assert imap_mailbox.count("INBOX") == 0
    assert imap_mailbox.count("Processed") == 3


async def test_uidvalidity_change_resets_checkpoint_and_reoffers(
    imap_mailbox: TestMailbox, checkpoints: MemoryCheckpoints
) -> None:
    folder = "Palvelupyyntö"  # non-ASCII on purpose: modified UTF-7 on the wire
    imap_mailbox.create(folder)
    imap_mailbox.append_many([make_mail("a"), make_mail("b")], folder=folder)
    handler = Recorder()
    settings = {"ack": "flag", "folder": folder}
    assert await _watcher(imap_mailbox, handler, checkpoints, settings=settings).drain_once() == 2
    old = checkpoints.saved[imap_mailbox.user]

    imap_mailbox.recreate(folder)
    imap_mailbox.append(make_mail("c"), folder=folder)  # gets UID 1 again
    log, sink = capturing_logger()
    watcher = MailboxWatcher(imap_mailbox.settings(**settings), handler, checkpoints, log)
    assert await watcher.drain_once() == 1

    new = checkpoints.saved[imap_mailbox.user]
    assert new[0] != old[0] and new[1] == 1
    assert handler.subjects == ["a", "b", "c"]
    assert handler.keys[-1] == f"{imap_mailbox.user}:{new[0]}:1"
    assert events(sink, "imap.uidvalidity_changed")[0]["old"] == old[0]


async def test_backlog_is_fetched_in_bounded_batches(
    imap_mailbox: TestMailbox, checkpoints: MemoryCheckpoints
) -> None:
    """More mails than one size query (200) and batches bounded by count and bytes."""
    raws = [make_mail(f"n{i}", body="x" * 2000) for i in range(230)]
    imap_mailbox.append_many(raws)
    handler = Recorder()
    watcher = _watcher(
        imap_mailbox, handler, checkpoints, settings={"batch_size": 40}, max_batch_bytes=20_000
    )
    fetched: list[int] = []
    original = watcher._session

    def spying_session() -> ImapSession:
        session = original()
        fetch = session.fetch_bodies

        async def fetch_bodies(uids: Sequence[int]) -> list[tuple[int, bytes]]:
            fetched.append(len(uids))
            return await fetch(uids)

        setattr(session, "fetch_bodies", fetch_bodies)  # noqa: B010 - a spy, on purpose
        return session

    setattr(watcher, "_session", spying_session)  # noqa: B010
    assert await watcher.drain_once() == 230
    assert imap_mailbox.count("Processed") == 230
    assert max(fetched) <= 9  # ~2.2 kB each, 20 kB budget
    assert handler.subjects == [f"n{i}" for i in range(230)]


@pytest.mark.parametrize("security", ["tls", "starttls"])
async def test_tls_and_starttls(
    dovecot: DovecotServer,
    imap_mailbox: TestMailbox,
    checkpoints: MemoryCheckpoints,
    security: str,
) -> None:
    imap_mailbox.append(make_mail("secure"))
    port = dovecot.tls_port if security == "tls" else dovecot.port
    settings = {"security": security, "port": port}
    watcher = _watcher(
        imap_mailbox, Recorder(), checkpoints, settings=settings, ssl_context=dovecot.ssl_context()
    )
    assert await watcher.drain_once() == 1

    # Without trusting the self-signed certificate the connection must fail.
    untrusted = _watcher(
        imap_mailbox, Recorder(), checkpoints, settings=settings,
        ssl_context=ssl.create_default_context(),
    )  # fmt: skip
    with pytest.raises(ImapConnectionError):
        await untrusted.drain_once()


@pytest.mark.parametrize("concurrency", [1, 3])
async def test_stop_during_drain_finishes_mail_in_hand(
    imap_mailbox: TestMailbox, checkpoints: MemoryCheckpoints, concurrency: int
) -> None:
    """The mails already in hand (``imap.concurrency`` of them) finish and are acked; no more start."""
    imap_mailbox.append_many([make_mail(f"m{i}") for i in range(5)])
    stop = asyncio.Event()

    async def slow(_raw: bytes, _ref: SourceRef) -> Action | None:
        stop.set()  # shutdown requested while this mail is in hand
        await asyncio.sleep(0.2)
        return None

    handler = Recorder(slow)
    watcher = _watcher(imap_mailbox, handler, checkpoints, {"concurrency": concurrency})
    assert await watcher.drain_once(stop) == concurrency
    assert imap_mailbox.count("Processed") == concurrency  # those in hand finished and acked
    assert imap_mailbox.count("INBOX") == 5 - concurrency


async def test_memory_stays_bounded_by_the_batch_budget(
    imap_mailbox: TestMailbox, checkpoints: MemoryCheckpoints
) -> None:
    """A 24 MB backlog drained with a 1 MB batch budget never holds much more than that."""
    big = [make_mail(f"big {i}", body=("lorem ipsum " * 8000)) for i in range(250)]  # ~96 kB
    imap_mailbox.append_many(big)
    del big
    watcher = _watcher(imap_mailbox, Recorder(), checkpoints, max_batch_bytes=1_000_000)
    tracemalloc.start()
    try:
        assert await watcher.drain_once() == 250
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    print(f"tracemalloc peak while draining 24 MB: {peak / 1e6:.1f} MB")
    assert peak < 6_000_000
