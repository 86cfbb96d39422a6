"""Hostile mail in a real mailbox never stalls the running daemon for the mail behind it."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.exc import DBAPIError

from store.db import create_engine, session_factory
from store.models import Intake
from tests.daemon.test_daemon import daemon_env, wait_for_tickets
from tests.hostile import mails as hostile
from tests.servers.mailbox import TestMailbox, make_mail

pytestmark = pytest.mark.imap


async def intake_actions(db_url: str) -> dict[str, str]:
    engine = create_engine(db_url)
    try:
        async with session_factory(engine)() as session:
            try:
                rows = (await session.execute(select(Intake.source_key, Intake.action))).all()
            except DBAPIError:  # schema not created yet
                return {}
            return {str(key).rsplit(":", 1)[1]: action for key, action in rows}
    finally:
        await engine.dispose()


async def test_hostile_mail_is_bounded_and_others_flow(
    imap_mailbox: TestMailbox, db_url: str, tmp_path: Path
) -> None:
    bad = {
        imap_mailbox.append(hostile.html_links(50_000, "links")): "over budget",
        imap_mailbox.append(hostile.many_parts(10_000, "parts")): "quarantined",
        imap_mailbox.append(hostile.header_bomb(100_000, "hbomb")): "quarantined",
    }
    good = imap_mailbox.append_many([make_mail(f"Näyttö {i} pimeänä") for i in range(10)])
    env = daemon_env(
        imap_mailbox, db_url, tmp_path / "data",
        # Tight enough that the 50,000-link HTML cannot finish in time.
        SERVICEDESK_LIMITS__PROCESSING_SECONDS="0.3",
    )  # fmt: skip
    proc = subprocess.Popen(
        [sys.executable, "-m", "servicedesk", "run", "--only", "ingest"], env=env,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        await wait_for_tickets(db_url, len(good), 60)
        for _ in range(100):
            if len(await intake_actions(db_url)) == len(good) + len(bad):
                break
            await asyncio.sleep(0.2)
        actions = await intake_actions(db_url)
        assert all(actions[str(uid)] == "created" for uid in good)
        assert all(actions[str(uid)] == "quarantined" for uid in bad)
        await asyncio.sleep(1)
        assert imap_mailbox.count("Quarantine") == len(bad)
        assert imap_mailbox.count("Processed") == len(good)
        assert imap_mailbox.count("INBOX") == 0
        # And the daemon still takes new mail after all that.
        imap_mailbox.append(make_mail("Hiiri rikki"))
        await wait_for_tickets(db_url, len(good) + 1, 30)
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) == 0
