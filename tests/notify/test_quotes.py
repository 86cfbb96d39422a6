"""Quote and signature stripping on replies as real fi/sv/en mail clients write them."""

from __future__ import annotations

import pytest

from ingest.quotes import strip_quoted

GMAIL_FI = """Kiitos, tulostin toimii nyt mutta skanneri ei vieläkään.

ma 3.6.2024 klo 10.02 Palvelupiste <servicedesk+AbC123xyz_-QwErTy0987@example.org> kirjoitti:

> Hei Maija,
>
> olemme vastaanottaneet pyyntösi.
"""

THUNDERBIRD_FI = """Lisätietona: virhekoodi on 0x80070005.

Maija Meikäläinen kirjoitti 3.6.2024 klo 10.02:
> Tulostin ei toimi.
"""

OUTLOOK_FI = """Hei,

liitteenä kuvakaappaus virheestä.

Ystävällisin terveisin
Maija Meikäläinen
Palvelusihteeri | Etelä-Karjalan hyvinvointialue
puh. 040 123 4567

Lähettäjä: Palvelupiste <servicedesk@example.org>
Lähetetty: maanantai 3. kesäkuuta 2024 10.02
Vastaanottaja: Meikäläinen Maija <maija.meikalainen@eksote.fi>
Aihe: [SD-000001] Pyyntösi on vastaanotettu: Tulostin ei toimi

Hei Maija,
olemme vastaanottaneet pyyntösi.
"""

GMAIL_SV_WRAPPED = """Tack, nu fungerar det!

Den mån 3 juni 2024 kl 10:02 skrev Servicedesk <
servicedesk@example.org>:

> Hej,
> vi har tagit emot din begäran.
"""

APPLE_SV = """Jag skrev så här till chefen: kan jag få behörighet till mappen?
Hon godkände det i dag.

Skickat från min iPhone

> 3 juni 2024 kl. 10:02 skrev Servicedesk <servicedesk@example.org>:
>
> Hej,
"""

OUTLOOK_SV = """Hej!

Datorn startar fortfarande inte.

Med vänliga hälsningar Anna Svensson
IT-koordinator

________________________________
Från: Servicedesk <servicedesk@example.org>
Skickat: den 3 juni 2024 10:02
Till: Anna Svensson <anna@pkky.fi>
Ämne: [SD-000007] Din begäran har tagits emot
"""

GMAIL_EN_WRAPPED = """Still broken after the restart.

On Mon, 3 Jun 2024 at 10:02, Service desk <servicedesk@example.org>
wrote:

> Hello,
"""

OUTLOOK_EN_BOLD = """Please see the attached log.

--\x20
John Smith
Senior Analyst

**From:** Service desk <servicedesk@example.org>
**Sent:** Monday, June 3, 2024 10:02 AM
**To:** John Smith <john@siunsote.fi>
**Subject:** RE: [SD-000009] Access to shared drive
"""

ORIGINAL_MESSAGE = """New phone number is 040 765 4321.

-----Original Message-----
From: Service desk
Sent: Monday, June 3, 2024 10:02 AM
"""

MOBILE_FI = """Kyllä, voitte sulkea pyynnön.

Lähetetty iPhonesta
"""

OUTLOOK_MOBILE = """Selvä, kiitos!

Hanki Outlook for Android
________________________________
From: Service desk <servicedesk@example.org>
"""

CASES = [
    (GMAIL_FI, "Kiitos, tulostin toimii nyt mutta skanneri ei vieläkään."),
    (THUNDERBIRD_FI, "Lisätietona: virhekoodi on 0x80070005."),
    (
        OUTLOOK_FI,
        "Hei,\n\nliitteenä kuvakaappaus virheestä.\n\nYstävällisin terveisin\nMaija Meikäläinen",
    ),
    (GMAIL_SV_WRAPPED, "Tack, nu fungerar det!"),
    (
        APPLE_SV,
        "Jag skrev så här till chefen: kan jag få behörighet till mappen?\nHon godkände det i dag.",
    ),
    (
        OUTLOOK_SV,
        "Hej!\n\nDatorn startar fortfarande inte.\n\nMed vänliga hälsningar Anna Svensson",
    ),
    (GMAIL_EN_WRAPPED, "Still broken after the restart."),
    (OUTLOOK_EN_BOLD, "Please see the attached log."),
    (ORIGINAL_MESSAGE, "New phone number is 040 765 4321."),
    (MOBILE_FI, "Kyllä, voitte sulkea pyynnön."),
    (OUTLOOK_MOBILE, "Selvä, kiitos!"),
]


@pytest.mark.parametrize(("text", "expected"), CASES)
def test_strips_quotes_and_signatures(text: str, expected: str) -> None:
    assert strip_quoted(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "Jag skrev till chefen igår:\nhon svarade inte.\nVad ska jag göra?",
        "Tulostin ei toimi.\nKiitos avusta etukäteen.\nMaija",
        "On the second floor the printer wrote: nothing.\nIt just blinks.",
        "Vastaanottaja: kaikki tiimin jäsenet\nAihe jäi pois viestistä.",
        "Kiitos nopeasta vastauksesta.\nTulostin toimii nyt, mutta skanneri ei.",
    ],
)
def test_ordinary_text_is_kept(text: str) -> None:
    assert strip_quoted(text) == text


def test_interleaved_answers_are_kept() -> None:
    text = "> Mikä on koneen nimi?\nEKS-12345\n> Milloin vika alkoi?\nEilen."
    assert strip_quoted(text) == text


def test_nothing_but_a_quote_keeps_the_whole_text() -> None:
    text = "> only quoted\n> lines"
    assert strip_quoted(text) == text.strip()


def test_crlf_input() -> None:
    assert (
        strip_quoted("Uusi tieto.\r\n\r\nOn Mon, 3 Jun 2024, X <x@y.fi> wrote:\r\n> old")
        == "Uusi tieto."
    )
