"""Parse functions for the budget tests; module-level so worker processes can import them."""

from __future__ import annotations

import time

from ingest.mail import InboundMail
from ingest.parse import ParseLimits, Unparseable, parse_mail


def stuck(raw: bytes, limits: ParseLimits) -> InboundMail | Unparseable:
    """Spins (CPU, not sleep) on mails whose subject says so: a pinned sanitiser."""
    if b"Subject: spin" in raw:
        while True:
            time.perf_counter()
    return parse_mail(raw, limits)


def crash(raw: bytes, limits: ParseLimits) -> InboundMail | Unparseable:
    """Dies like a segfaulting C extension on mails that say so."""
    if b"Subject: crash" in raw:
        import os

        os._exit(139)
    return parse_mail(raw, limits)


def hog(raw: bytes, limits: ParseLimits) -> InboundMail | Unparseable:
    """Allocates without bound on mails that say so: hits the worker's memory cap."""
    if b"Subject: hog" in raw:
        blocks = []
        while True:
            blocks.append(bytearray(64 * 1024 * 1024))
    return parse_mail(raw, limits)


def report_feedparser_re(raw: bytes, limits: ParseLimits) -> InboundMail | Unparseable:
    """Says which ``re`` the feedparser sees inside a worker process."""
    import email.feedparser

    return Unparseable(type(email.feedparser.re).__name__)  # type: ignore[attr-defined]
