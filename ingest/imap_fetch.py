"""A UID FETCH whose bookkeeping costs the same for every line of the response.

aioimaplib's ``FetchCommand`` does two things per response line that grow
with the response: ``wait_data`` rescans every line received so far for the
last ``* n FETCH (`` and joins the lines after it to count parentheses, and
every line cancels the command's inactivity timer and schedules a new one.
With a hundred mails per drain batch and two hundred sizes per size query,
this was over a third of the daemon's IMAP receiving time (py-spy, GIL
samples), all of it on the event loop that also writes the tickets.

``LinearFetch`` keeps the parenthesis balance since the last FETCH line as
lines arrive, and keeps one timer that, when it fires, re-arms itself for
the rest of the quiet period if data came meanwhile. The answer to "is the
response complete" and the timeout are the same as aioimaplib's; only the
cost differs. It overrides documented-by-code internals of aioimaplib 2.x
(``append_to_resp``, ``wait_data``, ``_set_timer``, ``_reset_timer``);
the real-Dovecot tests fetch through it, so a release that changes them
fails the suite rather than silently misreading a response.
"""

from __future__ import annotations

from typing import Any

import aioimaplib


class LinearFetch(aioimaplib.FetchCommand):  # type: ignore[misc]
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._balance = 0  # "(" minus ")" since the last FETCH line, literals excluded
        self._quiet_since = 0.0
        super().__init__(*args, **kwargs)

    def append_to_resp(self, line: bytes, result: str = "Pending") -> None:
        super().append_to_resp(line, result)
        # Literal data arrives as a bytearray and is not counted, as in aioimaplib.
        if type(line) is bytes:
            if self.FETCH_MESSAGE_DATA_RE.match(line):
                self._balance = 0
            self._balance += line.count(b"(") - line.count(b")")

    def wait_data(self) -> bool:
        return self._balance != 0

    def _set_timer(self) -> None:
        self._quiet_since = self._loop.time()
        if self._timeout is not None:
            self._timer = self._loop.call_later(self._timeout, self._quiet_check)

    def _reset_timer(self) -> None:
        self._quiet_since = self._loop.time()

    def _quiet_check(self) -> None:
        quiet = self._loop.time() - self._quiet_since
        if quiet >= self._timeout:
            self._timeout_callback()
        else:
            self._timer = self._loop.call_later(self._timeout - quiet, self._quiet_check)


async def uid_fetch(protocol: Any, uids: str, items: str, quiet_limit: float | None) -> Any:
    """``UID FETCH uids items`` as aioimaplib's ``protocol.fetch(..., by_uid=True)`` sends
    it; ``quiet_limit`` is how long the server may send nothing."""
    command = LinearFetch(
        protocol.new_tag(), uids, items, prefix="UID", loop=protocol.loop, timeout=quiet_limit
    )
    return await protocol.execute(command)
