"""Acknowledging handled mail on the IMAP server: the last step, after the commit.

Quarantined mail always moves to the quarantine folder; the rest is moved,
flagged or deleted as configured. A refused command leaves the mail where it
is: its ticket exists, so it comes back as a duplicate and is acknowledged then.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import structlog

from ingest.imap_session import ImapCommandError, ImapSession
from servicedesk.settings import ImapSettings


@dataclass(slots=True)
class Acks:
    """What to do on the server once a batch has been handled."""

    done: list[int] = field(default_factory=list)
    quarantine: list[int] = field(default_factory=list)


async def acknowledge(
    session: ImapSession,
    settings: ImapSettings,
    keyword: str,
    acks: Acks,
    log: structlog.typing.FilteringBoundLogger,
) -> tuple[list[int], list[int]]:
    """(UIDs acknowledged, UIDs whose acknowledgement the server refused)."""
    s = settings
    steps: list[tuple[list[int], str, Callable[[list[int]], Awaitable[None]]]] = [
        (acks.quarantine, "quarantine", lambda u: session.move(u, s.quarantine_folder))
    ]
    if s.ack == "move":
        steps.append((acks.done, "move", lambda u: session.move(u, s.processed_folder)))
    elif s.ack == "flag":
        flags = f"\\Seen {keyword}"
        steps.append((acks.done, "flag", lambda u: session.add_flags(u, flags)))
    else:
        steps.append((acks.done, "delete", session.delete))
    acked: list[int] = []
    failed: list[int] = []
    for uids, how, action in steps:
        if not uids:
            continue
        try:
            await action(uids)
        except ImapCommandError as exc:
            log.error("imap.ack_failed", how=how, uids=len(uids), error=str(exc))
            failed.extend(uids)
            continue
        acked.extend(uids)
    return acked, failed
