"""The new part of a reply: quoted history and signatures cut off.

The full original is stored too; this is what agents and the status page
show, so a ten-mail thread does not repeat itself ten times.

What marks the start of quoted history, per client family:

* Gmail / Apple / Thunderbird attribution lines, possibly wrapped over two
  or three lines: "On Mon, 3 Jun 2024 at 10.00, X <x@y> wrote:",
  "ma 3.6.2024 klo 10.00 X (<x@y>) kirjoitti:", "X kirjoitti 3.6.2024 klo 10.00:",
  "Den mån 3 juni 2024 kl 10:00 skrev X <x@y>:", "3 juni 2024 kl. 10:00 skrev X:".
  To tell them from a sentence ending in a colon ("Jag skrev så här:"), an
  attribution must carry a digit or an address.
* Outlook header blocks: a "From:/Lähettäjä:/Från:" line followed within a few
  lines by "Sent:/Lähetetty:/Skickat:/Date:" (also with *bold* markers from
  HTML conversion), the "-----Original Message-----" rulers in three
  languages, and Outlook's long underscore line.
* A trailing block of ">" lines.

Signatures are cut only at unambiguous markers: "-- " and mobile footers
("Sent from my iPhone", "Lähetetty iPhonesta", "Skickat från min iPhone",
"Get Outlook for iOS"). After a closing greeting ("Ystävällisin terveisin",
"Med vänliga hälsningar", "Best regards") in the last lines, the greeting and
the name line are kept and the title/phone/address lines below are dropped.
"""

from __future__ import annotations

import re

_MARK = r"[*_]{0,2}"  # HTML-to-text turns <b>From:</b> into **From:**
_ATTRIBUTION = [
    re.compile(p, re.IGNORECASE)
    for p in (
        r"^\s*On\b.{0,300}\bwrote\s*:\s*$",
        r"^.{0,300}\bkirjoitti\b.{0,120}:\s*$",
        r"^.{0,300}\bskrev\b.{0,120}:\s*$",
        r"^.{0,300}\bschrieb\b.{0,120}:\s*$",
    )
]
_RULER = re.compile(
    r"^\s*-{2,}\s*(Original Message|Alkuperäinen viesti|Ursprungligt meddelande|"
    r"Forwarded message|Välitetty viesti|Vidarebefordrat meddelande|Ursprüngliche Nachricht)"
    r"\s*-{2,}\s*$",
    re.IGNORECASE,
)
_UNDERSCORES = re.compile(r"^\s*_{10,}\s*$")
_OUTLOOK_FROM = re.compile(rf"^\s*{_MARK}(From|Lähettäjä|Från|Von|Lähettäjä)\s*:{_MARK}\s*\S", re.I)
_OUTLOOK_NEXT = re.compile(
    rf"^\s*{_MARK}(Sent|Date|Lähetetty|Päivämäärä|Skickat|Datum|Gesendet|To|Vastaanottaja|Till|"
    rf"Subject|Aihe|Ämne)\s*:",
    re.IGNORECASE,
)
_SIGNATURE = re.compile(
    r"^\s*(--|-- |Sent from my .{1,40}|Sent from Outlook.*|Get Outlook for .{1,20}|"
    r"Lähetetty (minun )?\S{1,30}(sta|stä|lla|llä)( .{0,30})?|Hanki Outlook .{1,30}|"
    r"Skickat från (min )?.{1,40}|Hämta Outlook för .{1,20})\s*$",
    re.IGNORECASE,
)
# A closing greeting, optionally followed on the same line by a name (capitalised words).
_CLOSING = re.compile(
    r"^\s*(?i:ystävällisin terveisin|parhain terveisin|terveisin|terv\.?|t\.|yst\.? terv\.?|"
    r"med vänliga hälsningar|vänliga hälsningar|mvh|hälsningar|"
    r"best regards|kind regards|regards|br)\s*[,.!]?\s*"
    r"([A-ZÅÄÖ][\w.-]*(?:\s+[A-ZÅÄÖ][\w.-]*){0,2})?\s*$"
)
_EVIDENCE = re.compile(r"\d|@")


def _attribution_at(lines: list[str], index: int) -> bool:
    """Is there an attribution line starting here (joined with up to two wrapped lines)?"""
    first = lines[index].strip()
    if not first or first.startswith(">"):
        return False
    joined = first
    for extra in range(3):
        if extra:
            if index + extra >= len(lines) or len(joined) > 400:
                break
            joined = f"{joined} {lines[index + extra].strip()}"
        if any(p.match(joined) for p in _ATTRIBUTION) and _EVIDENCE.search(joined):
            # A wrapped attribution starts with a date or an address, not a sentence.
            return extra == 0 or bool(
                _EVIDENCE.search(first) and not first.endswith((".", "!", "?", ":"))
            )
    return False


def _outlook_block_at(lines: list[str], index: int) -> bool:
    if not _OUTLOOK_FROM.match(lines[index]):
        return False
    following = [line for line in lines[index + 1 : index + 6] if line.strip()][:4]
    return any(_OUTLOOK_NEXT.match(line) for line in following)


def _quote_start(lines: list[str]) -> int:
    for index, line in enumerate(lines):
        if _RULER.match(line) or _UNDERSCORES.match(line):
            return index
        if _outlook_block_at(lines, index) or _attribution_at(lines, index):
            return index
        if line.startswith(">") and all(not r.strip() or r.startswith(">") for r in lines[index:]):
            return index
    return len(lines)


def _cut_signature(lines: list[str]) -> list[str]:
    for index, line in enumerate(lines):
        if _SIGNATURE.match(line.rstrip("\n")) and (line.strip() != "--" or index > 0):
            return lines[:index]
    tail_start = max(0, len(lines) - 12)
    for index in range(len(lines) - 1, tail_start - 1, -1):
        match = _CLOSING.match(lines[index])
        if match is None or index == 0:
            continue
        if match.group(1):  # "Terveisin Maija": the name is on the same line
            return lines[: index + 1]
        rest = [i for i in range(index + 1, len(lines)) if lines[i].strip()]
        return lines[: rest[0] + 1] if rest else lines[: index + 1]
    return lines


def strip_quoted(text: str) -> str:
    """The reply without quoted history and signature; the whole text if nothing is left."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    kept = _cut_signature(lines[: _quote_start(lines)])
    result = "\n".join(kept).strip()
    return result or text.strip()
