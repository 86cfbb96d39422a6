"""The plain data that flows from parsing into guards, threading and classification.

Nothing here touches I/O: every later step reads these objects, so they stay
small, immutable and free of library types (no ``email.message.Message``).
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Address:
    """One mailbox from an address header, lower-cased for comparisons."""

    email: str
    name: str = ""

    @property
    def domain(self) -> str:
        return self.email.rpartition("@")[2]

    @property
    def local(self) -> str:
        return self.email.rpartition("@")[0]


@dataclass(frozen=True, slots=True)
class Attachment:
    """A decoded attachment or inline image; ``data`` may be empty when dropped."""

    filename: str
    content_type: str
    data: bytes
    size: int
    content_id: str = ""
    inline: bool = False
    dropped_reason: str = ""


@dataclass(frozen=True, slots=True)
class InboundMail:
    """One parsed message.

    ``headers`` keeps only the first value of each header, lower-cased names,
    decoded to text; the raw bytes stay with the caller for storage.
    """

    message_id: str
    subject: str
    sender: Address | None
    to: tuple[Address, ...]
    cc: tuple[Address, ...]
    reply_to: tuple[Address, ...]
    in_reply_to: str
    references: tuple[str, ...]
    date: str
    text: str
    html: str
    headers: dict[str, str]
    attachments: tuple[Attachment, ...] = ()
    size: int = 0
    defects: tuple[str, ...] = ()
    notes: tuple[str, ...] = field(default=())
    # ``html`` sanitised for display, computed where parsing runs (off the loop).
    safe_html: str = ""

    @property
    def recipients(self) -> tuple[Address, ...]:
        return self.to + self.cc

    def header(self, name: str) -> str:
        return self.headers.get(name.lower(), "")
