"""A drain streams across batch boundaries but acknowledges batches in order.

The checkpoint is a low-water mark: with ``flag`` acknowledgement a restart
searches above it only, so a checkpoint past a mail not yet acknowledged
would lose that mail. These tests make an early batch slow and a later one
fast, on the real Dovecot.
"""

from __future__ import annotations

import asyncio
import time

import pytest

from ingest import imap as imap_module
from ingest.imap import MailboxWatcher
from ingest.imap_ack import Acks
from ingest.outcome import Action, SourceRef
from tests.imap.conftest import MemoryCheckpoints, Recorder, capturing_logger
from tests.servers.mailbox import TestMailbox, make_mail

SLOW = {"n0", "n1", "n2"}  # the first batch of three


def _slow_first_batch(finished: dict[str, float]) -> Recorder:
    async def decide(raw: bytes, _ref: SourceRef) -> Action | None:
        subject = raw.split(b"Subject: ", 1)[1].split(b"\n", 1)[0].strip().decode()
        if subject in SLOW:
            await asyncio.sleep(0.4)
        finished[subject] = time.monotonic()
        return None

    return Recorder(decide)


async def test_later_batches_start_while_an_early_one_is_slow_and_acks_stay_in_order(
    imap_mailbox: TestMailbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(imap_module, "CHECKPOINT_SECONDS", 0.0)  # store it after every batch
    imap_mailbox.append_many([make_mail(f"n{i}") for i in range(12)])
    finished: dict[str, float] = {}
    handler = _slow_first_batch(finished)
    log, _ = capturing_logger()
    watcher = MailboxWatcher(
        imap_mailbox.settings(ack="flag", batch_size=3, concurrency=12),
        handler, MemoryCheckpoints(), log,
    )  # fmt: skip
    keyword = watcher._keyword
    acked_batches: list[list[int]] = []
    acknowledge = watcher._acknowledge

    async def recording_ack(session: object, acks: Acks) -> list[int]:
        acked = await acknowledge(session, acks)  # type: ignore[arg-type]
        acked_batches.append(sorted(acked))
        return acked

    violations: list[str] = []

    class CheckingCheckpoints(MemoryCheckpoints):
        async def save(self, mailbox: str, uidvalidity: int, last_uid: int) -> None:
            flags = await asyncio.to_thread(imap_mailbox.flags)
            unacked = [uid for uid, f in flags.items() if uid <= last_uid and keyword not in f]
            if unacked:
                violations.append(f"checkpoint {last_uid} passes unacknowledged {unacked}")
            await super().save(mailbox, uidvalidity, last_uid)

    watcher.checkpoints = CheckingCheckpoints()
    setattr(watcher, "_acknowledge", recording_ack)  # noqa: B010 - a spy, on purpose

    assert await watcher.drain_once() == 12

    started = dict(zip(handler.subjects, handler.arrived, strict=True))
    # Streaming: the second and third batches began while the first was still in hand.
    assert started["n3"] < finished["n0"] and started["n8"] < finished["n0"]
    assert all(finished[f"n{i}"] < finished["n0"] for i in range(3, 12))
    # ...yet they were acknowledged after it, batch by batch, in UID order.
    firsts = [batch[0] for batch in acked_batches if batch]
    assert firsts == sorted(firsts) and len(firsts) == 4
    assert not violations
    assert watcher.checkpoints.saved[imap_mailbox.user][1] == max(imap_mailbox.uids())
    assert all(keyword in f for f in imap_mailbox.flags().values())


async def test_checkpoint_is_stored_once_per_drain_when_batches_are_quick(
    imap_mailbox: TestMailbox,
) -> None:
    """Storing it per batch took the ticket writer's lock every hundred mails."""
    imap_mailbox.append_many([make_mail(f"q{i}") for i in range(30)])
    checkpoints = MemoryCheckpoints()
    log, _ = capturing_logger()
    watcher = MailboxWatcher(imap_mailbox.settings(batch_size=5), Recorder(), checkpoints, log)
    assert await watcher.drain_once() == 30
    assert imap_mailbox.count("Processed") == 30
    assert checkpoints.saves <= 2  # the first UIDVALIDITY, then the end of the drain
    assert checkpoints.saved[imap_mailbox.user][1] > 0


async def test_large_mails_in_hand_stay_within_the_byte_budget(
    imap_mailbox: TestMailbox,
) -> None:
    """Counting mails alone, a backlog of large mails would all be in memory at once."""
    imap_mailbox.append_many([make_mail(f"big{i}", body="x" * 300_000) for i in range(12)])
    in_hand = [0, 0]  # now, most

    async def decide(raw: bytes, _ref: SourceRef) -> Action | None:
        in_hand[0] += len(raw)
        in_hand[1] = max(in_hand)
        await asyncio.sleep(0.05)
        in_hand[0] -= len(raw)
        return None

    log, _ = capturing_logger()
    watcher = MailboxWatcher(
        imap_mailbox.settings(concurrency=192), Recorder(decide), MemoryCheckpoints(), log,
        max_batch_bytes=1_000_000,
    )  # fmt: skip
    assert await watcher.drain_once() == 12
    assert imap_mailbox.count("Processed") == 12
    assert 600_000 < in_hand[1] <= 1_000_000  # several at once, never more than the budget


async def test_a_cancelled_drain_leaves_no_mail_running_and_the_next_drain_finishes(
    imap_mailbox: TestMailbox,
) -> None:
    imap_mailbox.append_many([make_mail(f"c{i}") for i in range(20)])
    running = [0]

    async def slow(_raw: bytes, _ref: SourceRef) -> Action | None:
        running[0] += 1
        try:
            await asyncio.sleep(0.3)
        finally:
            running[0] -= 1
        return None

    log, _ = capturing_logger()
    handler = Recorder(slow)
    watcher = MailboxWatcher(
        imap_mailbox.settings(batch_size=5, concurrency=3), handler, MemoryCheckpoints(), log
    )  # fmt: skip
    drain = asyncio.create_task(watcher.drain_once())
    await asyncio.sleep(0.15)  # three mails in hand, the rest of their batch waiting
    assert running[0] == 3
    drain.cancel()
    with pytest.raises(asyncio.CancelledError):
        await drain
    await asyncio.sleep(0.05)
    assert running[0] == 0  # nothing left running in the background
    assert imap_mailbox.count("Processed") == 0

    handler.decide = None
    assert await watcher.drain_once() == 20
    assert imap_mailbox.count("Processed") == 20 and imap_mailbox.count("INBOX") == 0
