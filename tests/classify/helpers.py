"""Small builders shared by the classify tests."""

from __future__ import annotations

from pathlib import Path

from classify.loader import load_rules_bytes
from classify.model import RuleSet
from ingest.mail import Address, Attachment, InboundMail

REPO = Path(__file__).resolve().parents[2]
DEFAULT_RULES = REPO / "config" / "rules.yaml"
LABELLED = REPO / "tests" / "labelled"


def mail(
    subject: str = "",
    body: str = "",
    *,
    sender: str = "someone@example.org",
    to: tuple[str, ...] = ("servicedesk@example.org",),
    cc: tuple[str, ...] = (),
    html: str = "",
    headers: dict[str, str] | None = None,
    attachments: tuple[tuple[str, str], ...] = (),
) -> InboundMail:
    return InboundMail(
        message_id="m@test",
        subject=subject,
        sender=Address(sender),
        to=tuple(Address(a) for a in to),
        cc=tuple(Address(a) for a in cc),
        reply_to=(),
        in_reply_to="",
        references=(),
        date="",
        text=body,
        html=html,
        headers={k.lower(): v for k, v in (headers or {}).items()},
        attachments=tuple(Attachment(n, t, b"", 0) for n, t in attachments),
    )


def rules(text: str, name: str = "rules.yaml") -> RuleSet:
    """Load rules from text; fail the test with every problem if they do not load."""
    result = load_rules_bytes(text.encode(), name)
    assert not isinstance(result, list), "\n".join(str(p) for p in result)
    return result


def problems(text: str, name: str = "rules.yaml") -> list[str]:
    result = load_rules_bytes(text.encode(), name)
    assert isinstance(result, list), "expected problems, the rules loaded"
    return [str(p) for p in result]
