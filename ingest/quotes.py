"""The new part of a reply: quoted history and signatures cut off.

The full original is stored too; this is what agents and the status page
show, so a ten-mail thread does not repeat itself ten times.
"""

from __future__ import annotations

import re

_QUOTE_HEADERS = [
    re.compile(p, re.IGNORECASE)
    for p in (
        r"^\s*On\b.{0,200}\bwrote:\s*$",                      # English clients
        r"^\s*.{0,200}\bkirjoitti\b.{0,100}:\s*$",            # Finnish
        r"^\s*.{0,200}\bskrev\b.{0,100}:\s*$",                # Swedish
        r"^\s*-{2,}\s*(Original Message|Alkuperäinen viesti|Ursprungligt meddelande)\s*-{2,}\s*$",
        r"^\s*(From|Lähettäjä|Från|Von)\s*:\s*.+$",           # Outlook block starts with From:
        r"^\s*_{10,}\s*$",                                      # Outlook separator line
    )
]  # fmt: skip
_OUTLOOK_NEXT = re.compile(r"^\s*(Sent|Lähetetty|Skickat|Date|Päivämäärä|Datum)\s*:", re.IGNORECASE)
_SIGNATURE = re.compile(
    r"^(-- ?|—|Sent from my \w+.*|Lähetetty \w+-?laitteesta.*|Skickat från min .*)$"
)


def strip_quoted(text: str) -> str:
    lines = text.splitlines()
    cut = len(lines)
    for index, line in enumerate(lines):
        if any(p.match(line) for p in _QUOTE_HEADERS):
            is_outlook_from = re.match(r"^\s*(From|Lähettäjä|Från|Von)\s*:", line, re.IGNORECASE)
            if is_outlook_from:
                following = lines[index + 1 : index + 4]
                if not any(_OUTLOOK_NEXT.match(f) for f in following):
                    continue
            cut = index
            break
        if line.startswith(">") and all(
            not rest.strip() or rest.startswith(">") for rest in lines[index:]
        ):
            cut = index
            break
    kept = lines[:cut]
    for index, line in enumerate(kept):
        if _SIGNATURE.match(line.rstrip()):
            kept = kept[:index]
            break
    result = "\n".join(kept).strip()
    return result or text.strip()
