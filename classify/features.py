"""One mail prepared for matching: tokenised and stemmed once, not once per rule.

Everything is computed lazily and memoised, so a rule set that only looks at
subjects never pays for indexing a long forwarded body.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from classify.body import own_text
from classify.text import FieldIndex
from ingest.htmltext import html_to_text
from ingest.mail import InboundMail

# Long forwarded threads say nothing more about routing after this point and
# would only slow the hot path down.
MAX_BODY_CHARS = 20_000


def body_text(mail: InboundMail) -> str:
    """Plain text of the body; HTML-only mail is reduced to its text."""
    text = mail.text
    if not text.strip() and mail.html:
        text = html_to_text(mail.html)
    return text[:MAX_BODY_CHARS]


def plus_tag(email: str) -> str:
    """``servicedesk+hr@x`` -> ``hr``; empty when the address has no tag."""
    local = email.rpartition("@")[0]
    return local.partition("+")[2] if "+" in local else ""


@dataclass(slots=True)
class MailFeatures:
    """What conditions look at; ``language``/``organisation`` are decided first.

    ``body`` is the sender's own words (see classify.body); ``full_body`` keeps
    signatures and quotes for the rare rule that needs them.
    """

    mail: InboundMail
    language: str = ""
    organisation: str = ""
    category: str = ""
    subcategory: str = ""
    body: str = ""
    full_body: str = ""
    _indexes: dict[str, FieldIndex] = field(default_factory=dict)
    memo: dict[tuple[int, str], str | None] = field(default_factory=dict)

    @classmethod
    def of(cls, mail: InboundMail) -> MailFeatures:
        full = body_text(mail)
        return cls(mail=mail, body=own_text(full), full_body=full)

    def raw(self, name: str) -> str:
        """Field text as written, for regexes (``header:x-priority`` for headers)."""
        if name == "subject":
            return self.mail.subject
        if name == "body":
            return self.body
        if name == "full_body":
            return self.full_body
        if name.startswith("header:"):
            return self.mail.header(name[7:])
        raise KeyError(name)

    def index(self, name: str) -> FieldIndex:
        found = self._indexes.get(name)
        if found is None:
            found = FieldIndex.build(self.raw(name))
            self._indexes[name] = found
        return found

    @property
    def sender(self) -> str:
        return self.mail.sender.email.lower() if self.mail.sender else ""

    @property
    def recipients(self) -> tuple[str, ...]:
        return tuple(a.email.lower() for a in self.mail.recipients)

    @property
    def attachment_names(self) -> tuple[str, ...]:
        return tuple(a.filename for a in self.mail.attachments if a.filename)

    @property
    def attachment_types(self) -> tuple[str, ...]:
        return tuple(a.content_type.lower() for a in self.mail.attachments)
