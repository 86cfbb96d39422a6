"""Which existing ticket, if any, a mail continues: the hints, without any lookups.

Order of trust: a reply token in the recipient address (secret, proves the
link), the ticket tag in the subject, then In-Reply-To/References. The store
resolves the hints; this module only reads the mail.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from ingest.mail import InboundMail

_TOKEN = re.compile(r"^[A-Za-z2-7]{32}$")


@dataclass(frozen=True, slots=True)
class ThreadHints:
    reply_token: str
    ticket_number: int | None
    message_ids: tuple[str, ...]


@lru_cache(maxsize=16)
def subject_tag_pattern(prefix: str) -> re.Pattern[str]:
    return re.compile(rf"\[{re.escape(prefix)}0*(\d{{1,12}})\]", re.IGNORECASE)


def hints(mail: InboundMail, desk_address: str, prefix: str) -> ThreadHints:
    local, _, domain = desk_address.lower().partition("@")
    token = ""
    for address in mail.recipients:
        base, plus, tag = address.local.partition("+")
        if plus and base == local and address.domain == domain and _TOKEN.match(tag):
            token = tag
            break
    match = subject_tag_pattern(prefix).search(mail.subject)
    number = int(match.group(1)) if match else None
    ids = tuple(
        dict.fromkeys(
            ([mail.in_reply_to] if mail.in_reply_to else []) + list(reversed(mail.references))
        )
    )
    return ThreadHints(reply_token=token, ticket_number=number, message_ids=ids)
