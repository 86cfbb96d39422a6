"""Keyword matching: word forms in fi/sv/en, accents, phrases, wildcards, regex, not."""

from __future__ import annotations

import pytest

from classify.decide import decide
from classify.text import FieldIndex, Keyword, forms_match

from .helpers import mail, rules


def find(keyword: str, text: str, *, fold_accents: bool = False, stem: bool = True) -> str | None:
    return Keyword.compile(keyword, stem=stem, fold_accents=fold_accents).find(
        FieldIndex.build(text)
    )


@pytest.mark.parametrize(
    ("keyword", "text", "hit"),
    [
        ("salasana", "Unohdin salasanani", "salasanani"),
        ("salasana", "pitää vaihtaa salasanaa", "salasanaa"),
        ("salasana", "salasanojen vaihto", "salasanojen"),
        ("tulostin", "paperia ei mene tulostimeen", "tulostimeen"),
        ("tulostin", "Tulostimen valo vilkkuu", "Tulostimen".lower()),
        ("käyttöoikeus", "käyttöoikeudet puuttuvat", "käyttöoikeudet"),
        ("tunnus", "tunnukseni on lukossa", "tunnukseni"),
        ("verokortti", "liitteenä verokorttini", "verokorttini"),
        ("lösenord", "lösenordet fungerar inte", "lösenordet"),
        ("skrivare", "Skrivaren på plan 2", "skrivaren"),
        ("password", "I forgot my passwords", "passwords"),
        ("installation", "please install it", "install"),
    ],
)
def test_inflected_forms_match(keyword: str, text: str, hit: str) -> None:
    assert find(keyword, text) == hit


@pytest.mark.parametrize(
    ("keyword", "text"),
    [
        ("palkka", "sain palkinnon"),  # award, not salary
        ("esim", "esimies vaihtui"),  # eSIM is not a supervisor
        ("liitto", "uusi liittymä"),  # union is not a subscription
        ("lisä", "logon lisättyä"),  # short keywords need the exact word
        ("tillägg", "till"),  # the mail word may not be a truncated keyword
        ("käyttökatko", "otetaan käyttöön"),
        ("salasana", "sana"),
    ],
)
def test_unrelated_words_do_not_match(keyword: str, text: str) -> None:
    assert find(keyword, text) is None


def test_case_insensitive() -> None:
    assert find("VPN", "vpn ei toimi") == "vpn"
    assert find("vpn", "VPN EI TOIMI") == "vpn"


def test_accent_folding_is_optional() -> None:
    assert find("tyotodistus", "Tarvitsen työtodistuksen", fold_accents=True) == "työtodistuksen"
    assert find("tyotodistus", "Tarvitsen työtodistuksen", fold_accents=False) is None
    assert find("työtodistus", "tarviin tyotodistuksen", fold_accents=True) == "tyotodistuksen"


def test_accent_blind_wildcards_quote_the_words_as_written() -> None:
    assert find("tyotodist*", "Tarvitsen työtodistuksen", fold_accents=True) == "työtodistuksen"
    assert find("*todistus", "palkkatödistuksen pian", fold_accents=True) == "palkkatödistuksen"
    assert find("tyotodist*", "Tarvitsen työtodistuksen", fold_accents=False) is None


def test_phrase_needs_adjacent_words() -> None:
    assert find("ei toimi", "sähköposti ei toimi nyt") == "ei toimi"
    assert find("ei toimi", "ei se toimi") is None


def test_wildcards() -> None:
    assert find("tulost*", "tulostusjono jumissa") == "tulostusjono"
    assert find("*todistus", "palkkatodistuksen tilaus") == "palkkatodistuksen"
    assert find("*lisenssi*", "Office-lisenssipyyntö") == "lisenssipyyntö"
    assert find("*todistus", "todistusvoima") is None


def test_without_stemming_whole_words_only() -> None:
    assert find("tunnus", "tunnukset", stem=False) is None
    assert find("tunnus", "tunnus", stem=False) == "tunnus"


def test_gradation_is_limited_to_known_pairs() -> None:
    assert forms_match("käyttöoikeus", "käyttöoikeud")
    assert not forms_match("liitto", "liittym")


RULES = """
rules:
  - name: regex-rule
    when: {subject: {regex: '\\bSD-\\d{6}\\b'}}
    then: {subcategory: it.advice}
  - name: printer-not-ordered
    when:
      all:
        - text: [tulostin, printer]
        - not: {text: [tilata, order]}
    then: {subcategory: it.device_fault}
  - name: nested
    when:
      any:
        - all: [{subject: [lasku]}, {sender: [eksote.fi]}]
        - recipient: {plus: [palkat]}
    then: {subcategory: hr.pay_question}
  - name: header-and-attachment
    when:
      any:
        - header: {name: X-Priority, regex: '^1'}
        - attachment: ['*.xlsx']
        - attachment_type: ['application/pdf']
    then: {subcategory: hr.payroll_material}
  - name: subject-only
    when: {subject: [verokortti]}
    then: {subcategory: hr.tax}
  - name: language-sv
    when: {language: [sv]}
    then: {subcategory: it.access}
fallback:
  then: {subcategory: it.advice}
"""


def test_regex_reason_shows_the_match() -> None:
    d = decide(mail("Re: SD-000123 tilanne?", "hei"), rules(RULES))
    assert d.rule == "regex-rule"
    assert "'SD-000123'" in d.reasons[0]


def test_not_operator() -> None:
    r = rules(RULES)
    assert decide(mail("Tulostin rikki", "ei tulosta"), r).rule == "printer-not-ordered"
    assert decide(mail("Tulostin", "haluan tilata uuden"), r).rule != "printer-not-ordered"


def test_nested_any_all_and_plus_address() -> None:
    r = rules(RULES)
    assert decide(mail("Lasku", "x", sender="a@mail.eksote.fi"), r).rule == "nested"
    assert decide(mail("Lasku", "x", sender="a@other.fi"), r).rule != "nested"
    hit = decide(mail("moi", "x", to=("servicedesk+palkat@example.org",)), r)
    assert hit.rule == "nested"
    assert "plus tag 'palkat'" in hit.reasons[0]


def test_header_and_attachments() -> None:
    r = rules(RULES)
    assert decide(mail("a", "b", headers={"X-Priority": "1 (Highest)"}), r).rule == (
        "header-and-attachment"
    )
    sheet = mail("a", "b", attachments=(("Tuntilista_03.XLSX", "application/vnd.ms-excel"),))
    assert decide(sheet, r).rule == "header-and-attachment"
    pdf = mail("a", "b", attachments=(("x.bin", "application/pdf"),))
    assert decide(pdf, r).rule == "header-and-attachment"


def test_subject_restriction_ignores_body() -> None:
    r = rules(RULES)
    assert decide(mail("Verokortti", "x"), r).rule == "subject-only"
    assert decide(mail("Hei", "liitteenä verokortti"), r).rule != "subject-only"


def test_language_condition() -> None:
    r = rules(RULES)
    d = decide(mail("Fråga", "Hej, jag har en fråga om det här. Mvh Anna"), r)
    assert d.language == "sv"
    assert d.rule == "language-sv"


def test_stemmers_are_the_compiled_snowball() -> None:
    """snowballstemmer falls back to pure Python silently; that is 20-45x slower per new word."""
    import snowballstemmer

    assert type(snowballstemmer.stemmer("finnish")).__module__ == "Stemmer"
    assert find("salasana", "salasanani vanheni") == "salasanani"
