"""An SMTP server on 127.0.0.1 that keeps every message it receives, in memory.

Built on aiosmtpd's threaded Controller, so it serves sync and async tests
alike. The port is chosen once and kept across stop()/start(), which is what
an "SMTP down, then up again" retry test needs: the sender's configuration
stays the same while the server comes and goes. ``fail_next`` makes the sink
answer the next N transactions with a temporary 451, to test retries
without stopping it.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import Message
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from tests.servers.ports import LOOPBACK, free_port, wait_closed


@dataclass(frozen=True)
class ReceivedMail:
    mail_from: str
    rcpt_tos: tuple[str, ...]
    data: bytes
    received_at: float = field(default_factory=time.time)

    @property
    def message(self) -> Message:
        return message_from_bytes(self.data)


class _Collector:
    """aiosmtpd handler: store the envelope, or refuse it while failures are queued."""

    def __init__(self, sink: SmtpSink) -> None:
        self.sink = sink

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        with self.sink.lock:
            if self.sink.fail_next > 0:
                self.sink.fail_next -= 1
                return "451 4.3.0 try again later (test sink)"
            raw = envelope.original_content or envelope.content or b""
            data = raw if isinstance(raw, bytes) else raw.encode()
            self.sink.messages.append(
                ReceivedMail(str(envelope.mail_from), tuple(envelope.rcpt_tos), data)
            )
        return "250 2.0.0 OK"


class SmtpSink:
    def __init__(self, port: int | None = None) -> None:
        self.host = LOOPBACK
        self.port = port or free_port()
        self.messages: list[ReceivedMail] = []
        self.fail_next = 0
        self.lock = threading.Lock()
        self._controller: Controller | None = None

    @property
    def running(self) -> bool:
        return self._controller is not None

    def start(self) -> SmtpSink:
        if self._controller is None:
            controller = Controller(
                _Collector(self), hostname=self.host, port=self.port, ready_timeout=10
            )
            controller.start()
            self._controller = controller
        return self

    def stop(self) -> None:
        controller, self._controller = self._controller, None
        if controller is not None:
            controller.stop()
            wait_closed(self.port, timeout=10)

    def clear(self) -> None:
        with self.lock:
            self.messages.clear()

    def wait_for(self, count: int, timeout: float = 10.0) -> list[ReceivedMail]:
        """Block until at least ``count`` messages arrived; return them all."""
        deadline = time.monotonic() + timeout
        while True:
            with self.lock:
                if len(self.messages) >= count:
                    return list(self.messages)
            if time.monotonic() > deadline:
                raise TimeoutError(f"{len(self.messages)} of {count} mails after {timeout}s")
            time.sleep(0.02)

    def settings_overrides(self) -> dict[str, Any]:
        """The ``[smtp]`` keys that point the sender at this sink."""
        return {"host": self.host, "port": self.port, "security": "none"}
