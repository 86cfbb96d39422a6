"""The daemon as an operator runs it: a subprocess against the real Dovecot and database.

These are the guarantees of DESIGN.md that only a whole process can show:
killed at random moments it neither loses nor duplicates mail; it reacts to
IDLE pushes; it stops cleanly on SIGTERM; two daemons share one mailbox.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import DBAPIError

from store.db import create_engine, session_factory
from store.models import Intake, Ticket
from tests.servers.mailbox import TestMailbox, make_mail

pytestmark = pytest.mark.imap


def daemon_env(mailbox: TestMailbox, db_url: str, data: Path, **extra: str) -> dict[str, str]:
    """The process environment for a daemon subprocess on ``mailbox``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SERVICEDESK_")}
    env.update(mailbox.daemon_env(db_url, data, **extra))
    return env


def start(env: dict[str, str], *args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "servicedesk", "run", "--only", "ingest", *args],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip


@pytest.fixture
def processes() -> Iterator[list[subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for proc in started:
        if proc.poll() is None:
            proc.kill()
        proc.wait(10)


async def counts(db_url: str) -> tuple[int, int]:
    """(tickets, intake rows that created a ticket); (0, 0) while the schema is being made."""
    engine = create_engine(db_url)
    try:
        async with session_factory(engine)() as session:
            try:
                tickets = await session.scalar(select(func.count()).select_from(Ticket))
                created = await session.scalar(
                    select(func.count()).select_from(Intake).where(Intake.action == "created")
                )
            except DBAPIError:  # the daemon is still migrating (tables appear one by one)
                return 0, 0
            return int(tickets or 0), int(created or 0)
    finally:
        await engine.dispose()


async def wait_for_tickets(db_url: str, expected: int, seconds: float) -> float:
    started = time.monotonic()
    while time.monotonic() - started < seconds:
        if (await counts(db_url))[0] >= expected:
            return time.monotonic() - started
        await asyncio.sleep(0.1)
    raise AssertionError(f"{expected} tickets not reached in {seconds} s: {await counts(db_url)}")


def drain(env: dict[str, str]) -> dict[str, int]:
    result = subprocess.run(
        [sys.executable, "-m", "servicedesk", "run", "--once", "--only", "ingest"],
        env=env, capture_output=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr.decode()[-3000:]
    return dict(json.loads(result.stdout.decode().strip().splitlines()[-1]))


async def test_once_drains_mailbox_and_moves_mail(
    imap_mailbox: TestMailbox, db_url: str, tmp_path: Path
) -> None:
    imap_mailbox.append_many([make_mail(f"Tulostin {i} rikki") for i in range(5)])
    imap_mailbox.append(make_mail("Automatic reply: away", Auto_Submitted="auto-replied"))
    env = daemon_env(imap_mailbox, db_url, tmp_path / "data")
    assert drain(env)["handled"] == 6
    assert await counts(db_url) == (5, 5)
    assert imap_mailbox.count("INBOX") == 0
    assert imap_mailbox.count("Processed") == 6
    assert drain(env)["handled"] == 0  # nothing left, nothing twice


async def test_killed_at_random_moments_loses_and_duplicates_nothing(
    imap_mailbox: TestMailbox, db_url: str, tmp_path: Path, processes: list[subprocess.Popen[bytes]]
) -> None:
    total = 200
    imap_mailbox.append_many([make_mail(f"Hiiri {i} ei toimi") for i in range(total)])
    env = daemon_env(imap_mailbox, db_url, tmp_path / "data")
    rng = random.Random(7)
    for _ in range(4):
        proc = start(env)
        processes.append(proc)
        await asyncio.sleep(rng.uniform(0.8, 2.5))
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    drain(env)
    tickets, created = await counts(db_url)
    assert (tickets, created) == (total, total)
    assert imap_mailbox.count("INBOX") == 0
    assert imap_mailbox.count("Processed") == total


async def test_idle_push_turns_new_mail_into_ticket_quickly(
    imap_mailbox: TestMailbox, db_url: str, tmp_path: Path, processes: list[subprocess.Popen[bytes]]
) -> None:
    env = daemon_env(imap_mailbox, db_url, tmp_path / "data", SERVICEDESK_IMAP__POLL_SECONDS="600")
    proc = start(env)
    processes.append(proc)
    await asyncio.sleep(3)  # connected and idling
    imap_mailbox.append(make_mail("Näyttö pimeänä"))
    waited = await wait_for_tickets(db_url, 1, 10)
    assert waited < 10  # poll interval is 600 s: only IDLE can explain this
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(10) == 0


async def test_sigterm_stops_cleanly_within_seconds(
    imap_mailbox: TestMailbox, db_url: str, tmp_path: Path, processes: list[subprocess.Popen[bytes]]
) -> None:
    imap_mailbox.append_many([make_mail(f"Asia {i}") for i in range(30)])
    proc = start(daemon_env(imap_mailbox, db_url, tmp_path / "data"))
    processes.append(proc)
    await asyncio.sleep(2.0)
    began = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(15) == 0
    assert time.monotonic() - began < 10
    drain(daemon_env(imap_mailbox, db_url, tmp_path / "data"))
    assert await counts(db_url) == (30, 30)


async def test_two_daemons_share_a_mailbox_and_standby_takes_over(
    imap_mailbox: TestMailbox, db_url: str, tmp_path: Path, processes: list[subprocess.Popen[bytes]]
) -> None:
    # Both processes share the data folder, as on one host (SQLite's lock is a
    # file lock there); on PostgreSQL the advisory lock decides.
    env = daemon_env(imap_mailbox, db_url, tmp_path / "data", SERVICEDESK_IMAP__POLL_SECONDS="1")
    first = start(env)
    processes.append(first)
    await asyncio.sleep(2.5)
    second = start(env)
    processes.append(second)
    imap_mailbox.append_many([make_mail(f"Kone {i}") for i in range(20)])
    await wait_for_tickets(db_url, 20, 30)
    first.send_signal(signal.SIGKILL)
    first.wait(10)
    imap_mailbox.append_many([make_mail(f"Puhelin {i}") for i in range(10)])
    await wait_for_tickets(db_url, 30, 30)
    assert await counts(db_url) == (30, 30)
    second.send_signal(signal.SIGTERM)
    assert second.wait(15) == 0


async def test_sigterm_while_starting_up_is_a_clean_exit(
    imap_mailbox: TestMailbox, db_url: str, tmp_path: Path, processes: list[subprocess.Popen[bytes]]
) -> None:
    """A stop during migrations and worker start: exit 0, and the next start is sound."""
    imap_mailbox.append_many([make_mail(f"Aloitus {i}") for i in range(5)])
    env = daemon_env(imap_mailbox, db_url, tmp_path / "data", SERVICEDESK_LOGGING__LEVEL="info")
    proc = start(env)
    processes.append(proc)
    assert proc.stderr is not None
    for line in proc.stderr:  # the first log line: settings read, nothing opened yet
        if b"daemon.starting" in line:
            break
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(15) == 0
    drain(daemon_env(imap_mailbox, db_url, tmp_path / "data"))
    assert await counts(db_url) == (5, 5)
