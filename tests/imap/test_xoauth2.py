"""XOAUTH2 login against the real Dovecot, token from a file or a command.

The test server accepts XOAUTH2 with its shared password as the token (its
static passdb verifies the token like a password), so a good and a bad token
both travel the real SASL exchange, including the error challenge.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest

from ingest.imap import MailboxWatcher, RetryPolicy
from ingest.imap_session import ImapAuthError, ImapSession
from servicedesk.settings import ConfigError, load_settings
from tests.imap.conftest import (
    MemoryCheckpoints,
    Recorder,
    capturing_logger,
    events,
    wait_until,
    watching,
)
from tests.servers.mailbox import TestMailbox, make_mail


async def test_token_file_logs_in_and_mail_is_ingested(
    imap_mailbox: TestMailbox, checkpoints: MemoryCheckpoints, tmp_path: Path
) -> None:
    token_file = tmp_path / "token"
    token_file.write_text(imap_mailbox.password + "\n", encoding="utf-8")
    imap_mailbox.append(make_mail("via oauth"))
    settings = imap_mailbox.settings(password="", oauth2_token_file=str(token_file))
    log, sink = capturing_logger()
    recorder = Recorder()
    watcher = MailboxWatcher(settings, recorder, checkpoints, log)
    assert await watcher.drain_once() == 1
    assert recorder.subjects == ["via oauth"]
    assert imap_mailbox.password not in repr(sink.calls)  # the token is never logged


async def test_token_command_runs_at_login(imap_mailbox: TestMailbox, tmp_path: Path) -> None:
    command = f"{sys.executable} -c \"print('{imap_mailbox.password}')\""
    session = ImapSession(imap_mailbox.settings(password="", oauth2_token_command=command))
    await session.open()
    try:
        assert await session.select("INBOX") > 0
    finally:
        await session.logout()


async def test_refused_token_is_a_login_failure_at_once_not_a_timeout(
    imap_mailbox: TestMailbox, tmp_path: Path
) -> None:
    token_file = tmp_path / "token"
    token_file.write_text("expired-token", encoding="utf-8")
    settings = imap_mailbox.settings(
        password="", oauth2_token_file=str(token_file), timeout_seconds=20
    )
    session = ImapSession(settings)
    started = asyncio.get_running_loop().time()
    with pytest.raises(ImapAuthError, match="login refused"):
        await session.open()
    session.abort()
    # The server's error challenge was answered: refused in well under the timeout.
    assert asyncio.get_running_loop().time() - started < 10


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        (f"{sys.executable} -c \"import sys; sys.exit('no refresh token')\"", "no refresh token"),
        (f'{sys.executable} -c "pass"', "no output"),
        ("/nonexistent/token-helper", "cannot run imap.oauth2_token_command"),
    ],
)
async def test_broken_token_command_is_reported_as_a_login_failure(
    imap_mailbox: TestMailbox, checkpoints: MemoryCheckpoints, command: str, expected: str
) -> None:
    settings = imap_mailbox.settings(
        password="", oauth2_token_command=command, unhealthy_after_failures=1
    )
    log, sink = capturing_logger()
    retry = RetryPolicy(auth_initial_seconds=5, jitter=0.0)
    watcher = MailboxWatcher(settings, Recorder(), checkpoints, log, retry=retry)
    async with watching(watcher):
        await wait_until(lambda: bool(events(sink, "imap.login_failed")), timeout=10)
    assert expected in events(sink, "imap.login_failed")[0]["error"]
    assert not watcher.health.healthy


def test_token_file_and_command_together_are_refused() -> None:
    environ = {
        "SERVICEDESK_IMAP__OAUTH2_TOKEN_FILE": "/run/secrets/token",
        "SERVICEDESK_IMAP__OAUTH2_TOKEN_COMMAND": "token-helper",
    }
    with pytest.raises(ConfigError, match="set one, not both"):
        load_settings(None, environ=environ)
