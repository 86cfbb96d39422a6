"""Reply templates: which file speaks for a ticket, and rendering it strictly.

Every outgoing mail is three templates found along one lookup chain: a
``.subject`` (one line), a ``.txt`` (plain-text part) and an ``.html`` (HTML
part, autoescaped). Each extension is looked up on its own, so an override
may replace only the body and keep the base subject.

Lookup order, most specific first (``org`` is the ticket's organisation id,
``sub`` its subcategory id such as ``it.password``, ``cat`` its category)::

    <template>.org.<org>.<sub>.<lang>.<ext>   e.g. ack_new.org.pohjois-karjala-edu.order.workstation.fi.txt
    <template>.org.<org>.<cat>.<lang>.<ext>   e.g. ack_new.org.pohjois-karjala-edu.order.fi.txt
    <template>.org.<org>.<lang>.<ext>         e.g. ack_new.org.siun-sote.fi.txt
    <template>.<sub>.<lang>.<ext>             e.g. ack_new.it.password.fi.txt
    <template>.<cat>.<lang>.<ext>             e.g. ack_new.hr.sv.txt
    <template>.<lang>.<ext>                   the base, which must exist

Organisation first, because an organisation's variant is a promise made to
that organisation (its own shop, its own process); an override that still
wants the subject-matter text says so with ``{% extends "…" %}``. Overrides
normally extend the base and replace one block, so fixing the base fixes all.

Undefined variables raise (``StrictUndefined``): a missing variable must fail
a test, never put a blank into a customer's mail.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jinja2 import (
    Environment,
    FileSystemLoader,
    StrictUndefined,
    TemplateNotFound,
    pass_eval_context,
    select_autoescape,
)
from jinja2.nodes import EvalContext
from markupsafe import Markup, escape

from servicedesk.paths import TEMPLATES_DIR

MAIL_TEMPLATES_DIR = TEMPLATES_DIR / "mail"
LANGUAGES = ("fi", "sv", "en")
TEMPLATES = (
    "ack_new",
    "ack_reply",
    "reopened",
    "status_changed",
    "agent_reply",
    "resolved",
    "rejected",
    "reminder",
)
# Sent because a mail arrived, not because a person acted: these get loop
# protection (suppression list, per-address daily cap) before sending.
AUTOMATIC = frozenset({"ack_new", "ack_reply", "reopened", "rejected"})
EXTENSIONS = ("subject", "txt", "html")

_SAFE_PART = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")
_URL = re.compile(r"https?://[^\s<>\"']+")


class TemplateMissing(LookupError):
    """No file along the lookup chain: a deployment error, not a transient one."""


@dataclass(frozen=True, slots=True)
class Rendered:
    subject: str
    text: str
    html: str
    files: tuple[str, str, str]  # which file gave subject, text, html


def _safe(part: str) -> str:
    """Organisation and subcategory become file-name parts: no paths, no surprises."""
    part = part.strip().lower()
    return part if _SAFE_PART.match(part) and ".." not in part else ""


def chain(template: str, language: str, organisation: str, subcategory: str) -> list[str]:
    """Template names without extension, most specific first (see module docstring)."""
    org, sub = _safe(organisation), _safe(subcategory)
    category = sub.split(".", 1)[0] if "." in sub else sub
    names: list[str] = []
    if org:
        if sub and sub != category:
            names.append(f"{template}.org.{org}.{sub}.{language}")
        if category:
            names.append(f"{template}.org.{org}.{category}.{language}")
        names.append(f"{template}.org.{org}.{language}")
    if sub and sub != category:
        names.append(f"{template}.{sub}.{language}")
    if category:
        names.append(f"{template}.{category}.{language}")
    names.append(f"{template}.{language}")
    return names


@pass_eval_context
def _paragraphs(eval_ctx: EvalContext, text: str) -> Markup | str:
    """Plain text (an agent's reply) as HTML: escaped, line breaks kept, links clickable."""
    if not eval_ctx.autoescape:
        return text
    escaped = str(escape(text))
    linked = _URL.sub(lambda m: f'<a href="{m.group(0)}">{m.group(0)}</a>', escaped)
    blocks = [b.replace("\n", "<br>\n") for b in re.split(r"\n\s*\n", linked.strip()) if b]
    return Markup("".join(f"<p>{b}</p>\n" for b in blocks))


def one_line(value: str, limit: int = 900) -> str:
    """Whatever the template or the requester wrote: one line, no control characters."""
    cleaned = re.sub(r"[\x00-\x1f\x7f\u2028\u2029\x85]+", " ", value)
    return re.sub(r"\s{2,}", " ", cleaned).strip()[:limit]


class Renderer:
    """Finds and renders the mail templates; one instance per process is enough.

    ``directories`` are searched in order, so an operator's folder placed
    before the bundled one overrides single files without copying the rest.
    """

    def __init__(
        self,
        directories: Sequence[Path] = (MAIL_TEMPLATES_DIR,),
        default_language: str = "fi",
    ) -> None:
        if default_language not in LANGUAGES:
            raise ValueError(f"default language {default_language!r}: one of {LANGUAGES}")
        self.default_language = default_language
        self.env = Environment(
            loader=FileSystemLoader([str(d) for d in directories]),
            undefined=StrictUndefined,
            autoescape=select_autoescape(enabled_extensions=("html",), default=False),
            keep_trailing_newline=False,
            trim_blocks=True,
            lstrip_blocks=True,
            auto_reload=True,
        )
        self.env.filters["paragraphs"] = _paragraphs

    def language_for(self, ticket_language: str | None) -> str:
        language = (ticket_language or "").strip().lower()[:2]
        return language if language in LANGUAGES else self.default_language

    def find(self, names: Sequence[str], extension: str) -> str:
        for name in names:
            candidate = f"{name}.{extension}"
            try:
                self.env.get_template(candidate)
            except TemplateNotFound:
                continue
            return candidate
        raise TemplateMissing(f"no template for {names[-1]}.{extension}")

    def render(
        self,
        template: str,
        language: str,
        variables: Mapping[str, Any],
        *,
        organisation: str = "",
        subcategory: str = "",
    ) -> Rendered:
        """Render subject, text and HTML; raises jinja2 errors on any missing variable."""
        if template not in TEMPLATES:
            raise TemplateMissing(f"unknown template {template!r}")
        names = chain(template, self.language_for(language), organisation, subcategory)
        context = {**variables, "language": self.language_for(language)}
        files = tuple(self.find(names, ext) for ext in EXTENSIONS)
        subject, text, html = (self.env.get_template(f).render(context) for f in files)
        return Rendered(
            subject=one_line(subject),
            text=text.strip() + "\n",
            html=html,
            files=(files[0], files[1], files[2]),
        )
