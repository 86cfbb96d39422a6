"""A test user's mailbox on the private Dovecot, driven with the stdlib imaplib.

Tests APPEND mail and look at folders through a second, independent client,
so an assertion never trusts the code under test. Every call opens its own
short connection: simple, and safe from any thread or event loop. The
``a*`` variants run the same call in a worker thread for async tests, so the
event loop (and the watcher on it) keeps running meanwhile.
"""

from __future__ import annotations

import asyncio
import imaplib
import os
import re
import secrets
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from email.message import EmailMessage
from email.utils import make_msgid
from pathlib import Path
from typing import Any

from ingest.imap_wire import encode_mailbox
from servicedesk.settings import ImapSettings
from tests.servers.dovecot import DovecotServer

_APPENDUID = re.compile(rb"APPENDUID (\d+) (\d+)")
_LIST_NAME = re.compile(rb'\) "[^"]*" (.+)$')


def make_mail(
    subject: str = "Printer broken", body: str = "It does not print.", **headers: str
) -> bytes:
    """A small, valid RFC 5322 message with a unique Message-ID."""
    msg = EmailMessage()
    msg["From"] = headers.pop("from_", "Maija Meikäläinen <maija@example.org>")
    msg["To"] = headers.pop("to", "servicedesk@example.org")
    msg["Subject"] = subject
    msg["Message-ID"] = make_msgid(domain="test.example.org")
    for name, value in headers.items():
        msg[name.replace("_", "-")] = value
    msg.set_content(body)
    return msg.as_bytes().replace(b"\n", b"\r\n")


def _quote(folder: str) -> str:
    """Quoted, modified UTF-7 (the unit-tested encoder from ingest; the stdlib has none)."""
    return encode_mailbox(folder)


class TestMailbox:
    """One user on one server; ``settings()`` gives the watcher's view of it."""

    __test__ = False  # not a pytest test class

    def __init__(self, server: DovecotServer, user: str | None = None) -> None:
        """A new user name is a new, empty mailbox (the server accepts any name)."""
        self.server = server
        self.user = user or f"u{secrets.token_hex(4)}"
        self.password = server.password

    def settings(self, **overrides: Any) -> ImapSettings:
        """Watcher settings for this mailbox: plain IMAP on loopback, fast timers."""
        values: dict[str, Any] = {
            "name": self.user,
            "host": self.server.host,
            "port": self.server.port,
            "security": "none",
            "user": self.user,
            "password": self.password,
            "poll_seconds": 30.0,
            "timeout_seconds": 5.0,
        }
        values.update(overrides)
        return ImapSettings(**values)

    def daemon_env(self, db_url: str, data: Path, **extra: str) -> dict[str, str]:
        """``SERVICEDESK_*`` variables for a daemon on this mailbox (no other SERVICEDESK_ kept)."""
        env = {
            "SERVICEDESK_DATABASE__URL": db_url,
            "SERVICEDESK_DATA__DIR": str(data),
            "SERVICEDESK_IMAP__NAME": self.user,
            "SERVICEDESK_IMAP__HOST": self.server.host,
            "SERVICEDESK_IMAP__PORT": str(self.server.port),
            "SERVICEDESK_IMAP__SECURITY": "none",
            "SERVICEDESK_IMAP__USER": self.user,
            "SERVICEDESK_IMAP__PASSWORD": self.password,
            "SERVICEDESK_IMAP__POLL_SECONDS": "30",
            "SERVICEDESK_IMAP__BATCH_SIZE": "20",
            "SERVICEDESK_LOGGING__LEVEL": "warning",
        }
        env.update(extra)
        return env

    @contextmanager
    def client(self) -> Iterator[imaplib.IMAP4]:
        conn = imaplib.IMAP4(self.server.host, self.server.port, timeout=10)
        try:
            conn.login(self.user, self.password)
            yield conn
        finally:
            try:
                conn.logout()
            except (imaplib.IMAP4.error, OSError):
                pass

    # -- writing -----------------------------------------------------------------
    def append(self, raw: bytes, folder: str = "INBOX", flags: str = "") -> int:
        """APPEND one message; return its UID (Dovecot has UIDPLUS)."""
        with self.client() as conn:
            self._ensure(conn, folder)
            typ, data = conn.append(_quote(folder), f"({flags})" if flags else None, None, raw)
            if typ != "OK":
                raise RuntimeError(f"APPEND failed: {data!r}")
            found = _APPENDUID.search(data[0] if data and isinstance(data[0], bytes) else b"")
            return int(found.group(2)) if found else 0

    def append_many(self, raws: list[bytes], folder: str = "INBOX") -> list[int]:
        with self.client() as conn:
            self._ensure(conn, folder)
            uids = []
            for raw in raws:
                typ, data = conn.append(_quote(folder), None, None, raw)
                if typ != "OK":
                    raise RuntimeError(f"APPEND failed: {data!r}")
                found = _APPENDUID.search(data[0] if isinstance(data[0], bytes) else b"")
                uids.append(int(found.group(2)) if found else 0)
            return uids

    def deliver_to_maildir(self, raws: Iterable[bytes]) -> int:
        """Drop messages straight into INBOX's Maildir ``new/``, as a local MDA would.

        Orders of magnitude faster than APPEND for the 10,000-mail backlogs of
        benchmarks; Dovecot assigns UIDs when it next looks at the folder.
        """
        self.count()  # the first SELECT makes Dovecot create the Maildir
        base = self.server.mail_root / self.user
        owner = base.stat()
        written = 0
        for raw in raws:
            name = f"{time.time_ns()}.P{os.getpid()}Q{written}.sd-test"
            tmp = base / "tmp" / name
            tmp.write_bytes(raw)
            if os.geteuid() == 0:
                os.chown(tmp, owner.st_uid, owner.st_gid)
            os.rename(tmp, base / "new" / name)
            written += 1
        return written

    def create(self, folder: str) -> None:
        with self.client() as conn:
            self._ensure(conn, folder)

    def recreate(self, folder: str) -> None:
        """DELETE and CREATE a folder: the server gives it a new UIDVALIDITY."""
        with self.client() as conn:
            conn.delete(_quote(folder))
            conn.create(_quote(folder))

    @staticmethod
    def _ensure(conn: imaplib.IMAP4, folder: str) -> None:
        if folder.upper() != "INBOX":
            conn.create(_quote(folder))  # NO [ALREADYEXISTS] is fine

    # -- reading -----------------------------------------------------------------
    def folders(self) -> set[str]:
        with self.client() as conn:
            typ, data = conn.list()
        names = set()
        for line in data if typ == "OK" else []:
            if isinstance(line, bytes):
                found = _LIST_NAME.search(line)
                if found:
                    names.add(found.group(1).decode().strip('"'))
        return names

    def uids(self, folder: str = "INBOX", criteria: str = "ALL") -> list[int]:
        with self.client() as conn:
            typ, _ = conn.select(_quote(folder), readonly=True)
            if typ != "OK":
                return []
            typ, data = conn.uid("SEARCH", criteria)
        return [int(x) for x in (data[0] or b"").split()] if typ == "OK" else []

    def count(self, folder: str = "INBOX") -> int:
        return len(self.uids(folder))

    def messages(self, folder: str = "INBOX") -> list[bytes]:
        """Raw bytes of every message in the folder, in UID order."""
        with self.client() as conn:
            typ, _ = conn.select(_quote(folder), readonly=True)
            if typ != "OK":
                return []
            typ, data = conn.uid("FETCH", "1:*", "(BODY.PEEK[])")
        return [part[1] for part in data if isinstance(part, tuple)] if typ == "OK" else []

    def flags(self, folder: str = "INBOX") -> dict[int, set[str]]:
        with self.client() as conn:
            typ, _ = conn.select(_quote(folder), readonly=True)
            if typ != "OK":
                return {}
            typ, data = conn.uid("FETCH", "1:*", "(UID FLAGS)")
        found: dict[int, set[str]] = {}
        for line in data if typ == "OK" else []:
            if not isinstance(line, bytes):
                continue
            match = re.search(rb"UID (\d+) FLAGS \(([^)]*)\)", line) or re.search(
                rb"FLAGS \(([^)]*)\) UID (\d+)", line
            )
            if match is None:
                continue
            a, b = match.group(1), match.group(2)
            uid, flags = (a, b) if a.isdigit() else (b, a)
            found[int(uid)] = set(flags.decode().split())
        return found

    def uidvalidity(self, folder: str = "INBOX") -> int:
        with self.client() as conn:
            typ, data = conn.status(_quote(folder), "(UIDVALIDITY)")
        match = re.search(rb"UIDVALIDITY (\d+)", data[0] if typ == "OK" and data[0] else b"")
        return int(match.group(1)) if match else 0

    # -- async wrappers ----------------------------------------------------------
    async def aappend(self, raw: bytes, folder: str = "INBOX", flags: str = "") -> int:
        return await asyncio.to_thread(self.append, raw, folder, flags)

    async def acount(self, folder: str = "INBOX") -> int:
        return await asyncio.to_thread(self.count, folder)

    async def auids(self, folder: str = "INBOX", criteria: str = "ALL") -> list[int]:
        return await asyncio.to_thread(self.uids, folder, criteria)
