"""The words a sender actually wrote: no signature, no quoted reply, forwards kept.

Signatures name departments ("Palkkahallinto", "HR-palvelut") and quoted
acknowledgements repeat our own template text; both mislead keyword rules.
A forwarded message, by contrast, usually *is* the request, so the text
after a forward marker is kept (minus its own signature).
"""

from __future__ import annotations

import re

# Lines that open a forwarded or replied-to message in common mail clients.
_SECTION = re.compile(
    r"^\s*(?:-{2,}\s*(?:forwarded message|original message|alkuperäinen viesti|"
    r"välitetty viesti|ursprungligt meddelande|vidarebefordrat meddelande)\s*-*"
    r"|(?:from|lähettäjä|från|sent|lähetetty|skickat)\s*:\s*\S.*"
    r"|begin forwarded message:?)\s*$",
    re.IGNORECASE,
)
# "On Mon, ... wrote:" style reply headers introduce quoted text, not new text.
_REPLY_HEADER = re.compile(r"^.{0,200}\b(?:wrote|kirjoitti|skrev)\s*:\s*$", re.IGNORECASE)
# Closings after which only signature lines follow.
_CLOSING = re.compile(
    r"^\s*(?:--\s*$|terveisin\b|t(?:erv)?\.\s|ystävällisin terveisin|ystävällisesti|"
    r"yst\.?\s*terv|parhain terveisin|hyvin?ä?\s*terveisin|kiittäen|"
    r"med vänlig(?:a)? hälsning(?:ar)?|vänliga hälsningar|hälsningar|mvh\b|"
    r"best regards|kind regards|regards\b|br\s*,|cheers\b|"
    r"sent from my|lähetetty (?:iphonesta|android)|skickat från)",
    re.IGNORECASE,
)


def own_text(body: str) -> str:
    """Body without quoted ``>`` lines, reply headers' quotes and signatures."""
    sections: list[list[str]] = [[]]
    quoting = False
    for line in body.splitlines():
        if _SECTION.match(line):
            sections.append([])
            quoting = False
            continue
        if _REPLY_HEADER.match(line):
            quoting = True
            continue
        if quoting or line.lstrip().startswith(">"):
            continue
        sections[-1].append(line)
    kept: list[str] = []
    for lines in sections:
        kept.extend(_without_signature(lines))
    return "\n".join(kept)


def _without_signature(lines: list[str]) -> list[str]:
    """Cut at the first closing line that follows some real text."""
    seen_text = False
    for number, line in enumerate(lines):
        if seen_text and _CLOSING.match(line):
            # Keep the closing line itself out, but a same-line thanks stays harmless.
            return lines[:number]
        if line.strip():
            seen_text = True
    return lines
