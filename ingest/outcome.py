"""Where a mail came from and what became of it: the values every intake returns.

Outcomes are values, not exceptions, so an intake loop (IMAP, Maildir, the
``ingest`` command) decides how to acknowledge a mail without knowing why the
pipeline made its choice.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Action(StrEnum):
    CREATED = "created"
    UPDATED = "updated"
    DUPLICATE = "duplicate"
    IGNORED = "ignored"
    QUARANTINED = "quarantined"
    # A transient failure (database away, disk full): nothing was stored and
    # the mail must stay where it is to be tried again. MTAs get exit 75.
    DEFERRED = "deferred"

    @property
    def acknowledged(self) -> bool:
        """May the source forget this mail (move it off the IMAP inbox, delete the file)?"""
        return self is not Action.DEFERRED


@dataclass(frozen=True, slots=True)
class SourceRef:
    """Identity of a mail at its source.

    ``key`` is unique per mail at that source and survives restarts: for IMAP
    ``mailbox:UIDVALIDITY:UID``; empty for stdin and files, where only
    Message-ID and the raw hash identify a mail.
    """

    kind: str
    name: str
    key: str = ""


@dataclass(frozen=True, slots=True)
class Outcome:
    action: Action
    ticket: str | None = None
    reason: str = ""
    intake_id: int | None = None
