"""pytest fixtures for the real servers; ``tests/conftest.py`` imports them.

    from tests.servers.fixtures import dovecot, imap_mailbox, make_proxy, smtp_sink

The Dovecot instance is shared by the whole session (start-up costs about a
second) but every test gets a fresh user, so mailboxes never leak between
tests and nothing needs cleaning. The instance is reference-counted, so
importing these fixtures into more than one conftest still starts one
server. When Dovecot can be neither found nor installed the dependent tests
are skipped, except under CI=true where that is a failure.
"""

from __future__ import annotations

import atexit
import os
import threading
from collections.abc import Callable, Iterator

import pytest

from tests.servers.dovecot import DovecotServer, DovecotUnavailable
from tests.servers.mailbox import TestMailbox
from tests.servers.proxy import TcpProxy
from tests.servers.smtp_sink import SmtpSink

IN_CI = os.environ.get("CI", "").lower() == "true"

_lock = threading.Lock()
_shared: DovecotServer | None = None
_users = 0


def acquire_dovecot() -> DovecotServer:
    """The process-wide Dovecot, started on first use."""
    global _shared, _users
    with _lock:
        if _shared is None:
            server = DovecotServer()
            # Safety net: even if pytest dies before fixture teardown, no
            # Dovecot process group outlives the test process.
            atexit.register(server.close)
            server.start()
            _shared = server
        _users += 1
        return _shared


def release_dovecot() -> None:
    global _shared, _users
    with _lock:
        _users -= 1
        if _users <= 0 and _shared is not None:
            _shared.close()
            _shared = None


@pytest.fixture(scope="session")
def dovecot() -> Iterator[DovecotServer]:
    """The private Dovecot on 127.0.0.1 (plain+STARTTLS on ``port``, TLS on ``tls_port``)."""
    try:
        server = acquire_dovecot()
    except DovecotUnavailable as exc:
        if IN_CI:
            pytest.fail(f"Dovecot required under CI: {exc}")
        pytest.skip(str(exc))
    try:
        yield server
    finally:
        release_dovecot()


@pytest.fixture
def imap_mailbox(dovecot: DovecotServer) -> Iterator[TestMailbox]:
    """A new user with an empty INBOX; ``.settings(**overrides)`` gives ImapSettings.

    A test that stopped the shared server gets it restarted afterwards, so one
    failing restart test does not take the rest of the session down with it.
    """
    if not dovecot.running:
        dovecot.start()
    yield TestMailbox(dovecot)
    if not dovecot.running:
        dovecot.start()


@pytest.fixture
def smtp_sink() -> Iterator[SmtpSink]:
    """A started SMTP sink; ``.messages`` holds what arrived, ``.stop()``/``.start()`` work."""
    sink = SmtpSink().start()
    try:
        yield sink
    finally:
        sink.stop()


@pytest.fixture
def make_proxy() -> Iterator[Callable[[str, int], TcpProxy]]:
    """Factory: ``make_proxy(host, port)`` -> a started TcpProxy, stopped after the test."""
    proxies: list[TcpProxy] = []

    def make(host: str, port: int) -> TcpProxy:
        proxy = TcpProxy(host, port).start()
        proxies.append(proxy)
        return proxy

    try:
        yield make
    finally:
        for proxy in proxies:
            proxy.stop()
