"""The values that travel between the pipeline's steps and its writer."""

from __future__ import annotations

from dataclasses import dataclass, field

from classify.decision import Decision
from ingest.conversation import ThreadHints
from ingest.mail import InboundMail
from ingest.outcome import Action
from store.apply import DeskPolicy
from store.intake import Received
from store.tickets import Numbering


@dataclass(frozen=True, slots=True)
class Stop:
    action: Action
    reason: str
    # What kind of stop, for follow-up in the same transaction: "bounce"
    # (note it on our ticket), "too_large" (tell the sender why), "internal"
    # (our own bug: quarantined so the mail is kept), "" (nothing).
    kind: str = ""


@dataclass(slots=True)
class Job:
    """The mail in hand and what the steps learned about it so far."""

    received: Received
    mail: InboundMail | None = None
    hints: ThreadHints | None = None
    decision: Decision | None = None
    trail: list[str] = field(default_factory=list)

    @property
    def dedup_key(self) -> str:
        return self.received.dedup_key(self.mail)

    @property
    def may_thread(self) -> bool:
        """Whether the mail names anything an existing ticket could be found by."""
        h = self.hints
        return h is not None and bool(h.reply_token or h.ticket_number is not None or h.message_ids)


@dataclass(frozen=True, slots=True)
class Desk:
    """Everything the steps need from settings, as plain values."""

    policy: DeskPolicy
    numbering: Numbering
    max_message_bytes: int
    processing_seconds: float = 20.0
    own_addresses: tuple[str, ...] = ()
