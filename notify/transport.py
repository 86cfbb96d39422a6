"""Where a composed mail goes: an SMTP server, or a folder when none is configured.

Both sit behind ``Transport`` so the worker's retry and exactly-once logic is
the same whichever is used. A transport says only *how* a send failed:
``TransientSendError`` (try again later) or ``PermanentSendError`` (never
retry); the worker decides what that means for the outbox row.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
from email.message import EmailMessage
from email.policy import SMTP
from pathlib import Path
from typing import Protocol

import aiosmtplib

from servicedesk.settings import SmtpSettings


class SendError(Exception):
    """A send did not succeed; the message is safe to log (no body, no password)."""


class TransientSendError(SendError):
    """Connection refused, timeouts, 4xx replies: the same mail may go through later."""


class PermanentSendError(SendError):
    """A 5xx reply about this mail (recipient unknown, message refused): retrying is spam."""


class Transport(Protocol):
    async def send(
        self, message: EmailMessage, *, outbox_id: int, sender: str, recipients: list[str]
    ) -> None: ...


def _code_error(code: int, text: str, where: str) -> SendError:
    detail = f"{where}: {code} {text}".strip()[:500]
    return PermanentSendError(detail) if 500 <= code < 600 else TransientSendError(detail)


class SmtpTransport:
    """aiosmtplib, one connection per mail: simple, and nothing stale to recover.

    ``security``: ``tls`` is implicit TLS (port 465), ``starttls`` upgrades a
    plain connection and fails if the server cannot, ``none`` is for loopback
    relays only. AUTH is used when ``user`` is set.

    Authentication failures count as transient even when the server says
    5xx: they are about our configuration, not about the mail, and must not
    permanently fail every queued reply while an operator fixes a password.
    """

    def __init__(self, settings: SmtpSettings) -> None:
        self.settings = settings

    async def send(
        self, message: EmailMessage, *, outbox_id: int, sender: str, recipients: list[str]
    ) -> None:
        s = self.settings
        user = s.user or None
        password = s.secret() if s.user else None
        # Each SMTP step has its own timeout; the total is bounded too, so a
        # trickling server cannot outlive the worker's lease on the row.
        budget = s.timeout_seconds * 6
        try:
            async with asyncio.timeout(budget):
                await aiosmtplib.send(
                    message,
                    sender=sender,
                    recipients=recipients,
                    hostname=s.host,
                    port=s.port,
                    username=user,
                    password=password,
                    use_tls=s.security == "tls",
                    start_tls=s.security == "starttls",
                    timeout=s.timeout_seconds,
                )
        except aiosmtplib.SMTPAuthenticationError as exc:
            raise TransientSendError(f"authentication failed: {exc.code}") from exc
        except aiosmtplib.SMTPRecipientsRefused as exc:
            codes = [r.code for r in exc.recipients] or [550]
            text = exc.recipients[0].message if exc.recipients else "refused"
            raise _code_error(min(codes), text, "recipient refused") from exc
        except aiosmtplib.SMTPResponseException as exc:
            raise _code_error(exc.code, exc.message, type(exc).__name__) from exc
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            raise TransientSendError(f"{type(exc).__name__}: {exc}"[:500]) from exc


class FolderTransport:
    """Writes ``<folder>/<outbox id>.eml`` atomically (temp file, then rename).

    The name is the outbox id, so a resend after a crash replaces the file
    instead of adding a second copy: the folder holds each mail exactly once.
    """

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    async def send(
        self, message: EmailMessage, *, outbox_id: int, sender: str, recipients: list[str]
    ) -> None:
        data = message.as_bytes(policy=SMTP)
        try:
            await asyncio.to_thread(self._write, outbox_id, data)
        except OSError as exc:
            raise TransientSendError(f"cannot write to {self.folder}: {exc.strerror}") from exc

    def _write(self, outbox_id: int, data: bytes) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        target = self.folder / f"{outbox_id}.eml"
        fd, temp = tempfile.mkstemp(dir=self.folder, prefix=f".{outbox_id}.", suffix=".part")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temp, target)
        except BaseException:
            Path(temp).unlink(missing_ok=True)
            raise


def transport_for(settings: SmtpSettings, data_dir: Path) -> Transport:
    """SMTP when a host is configured, else the ``sent/`` folder of the embedded defaults."""
    if settings.host:
        return SmtpTransport(settings)
    return FolderTransport(data_dir / "sent")
