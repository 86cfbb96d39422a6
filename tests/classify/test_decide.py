"""decide(): organisation, language, first match, fallback, adjustments and reasons."""

from __future__ import annotations

from classify.body import own_text
from classify.decide import decide
from classify.language import detect_language

from .helpers import mail, rules

RULES = """
rules:
  - name: edu-override
    when: {sender: ['*@koulu.example.fi']}
    then: {subcategory: order.peripheral, organisation: pohjois-karjala-edu}
  - name: password
    when: {text: [salasana, lösenord, password]}
    then: {subcategory: it.password, template: password}
  - name: outage
    when: {text: [häiriö, "ei toimi kenelläkään"]}
    then: {subcategory: it.incident, priority: high}
  - name: salary
    when: {body: [palkka]}
    then: {subcategory: hr.pay_question}
fallback:
  name: catch
  then: {subcategory: it.advice}
adjustments:
  - name: urgent
    when:
      all: [{subcategory: [it.incident]}, {text: [potilastyö, potilas]}]
    then: {priority: urgent, tags: [patient]}
  - name: edu
    when: {organisation: [pohjois-karjala-edu]}
    then: {tags: [school-shop], template: edu}
"""


def test_reasons_name_rule_and_matched_words() -> None:
    d = decide(mail("Unohdin salasanani", "hei", sender="a@eksote.fi"), rules(RULES))
    assert (d.category, d.subcategory, d.rule) == ("it", "it.password", "password")
    assert d.reasons == ("rule 'password': subject has 'salasanani' (keyword 'salasana')",)
    assert d.template == "password"
    assert d.organisation == "etela-karjala"
    assert d.rules_version


def test_organisation_from_parent_domain_and_unknown() -> None:
    r = rules(RULES)
    assert decide(mail("x", sender="a@mail.eksote.fi"), r).organisation == "etela-karjala"
    assert decide(mail("x", sender="a@edu.joensuu.fi"), r).organisation == "pohjois-karjala-edu"
    assert decide(mail("x", sender="a@gmail.com"), r).organisation == "unknown"
    custom = {"example.org": "demo"}
    assert decide(mail("x", sender="a@example.org"), r, custom).organisation == "demo"


def test_rule_may_override_organisation() -> None:
    d = decide(mail("hiiri", sender="ope@koulu.example.fi"), rules(RULES))
    assert d.organisation == "pohjois-karjala-edu"
    assert d.tags == ("school-shop",)
    assert d.template == "edu"
    assert any("sets organisation pohjois-karjala-edu" in r for r in d.reasons)


def test_fallback_and_default_priority() -> None:
    d = decide(mail("Kysymys", "Miten tämä toimii?"), rules(RULES))
    assert (d.rule, d.subcategory, d.priority) == ("catch", "it.advice", "normal")
    assert "fallback" in d.reasons[0]


def test_patient_work_incident_is_urgent() -> None:
    r = rules(RULES)
    d = decide(mail("Häiriö", "Effica ei toimi kenelläkään, potilastyö seisoo."), r)
    assert d.subcategory == "it.incident"
    assert d.priority == "urgent"
    assert d.tags == ("patient",)
    assert d.reasons[1].startswith("adjustment 'urgent' (priority urgent, tags patient)")
    plain = decide(mail("Häiriö", "Intranet ei toimi kenelläkään."), r)
    assert plain.priority == "high"


def test_signature_is_not_read_as_topic() -> None:
    body = "Tulostin ei tulosta.\n\nTerveisin\nLiisa\nPalkkahallinto / palkka-asiat"
    d = decide(mail("Ongelma", body), rules(RULES))
    assert d.rule == "catch"


def test_html_only_mail_is_read() -> None:
    d = decide(mail("?", html="<p>Unohdin <b>salasanan</b></p>"), rules(RULES))
    assert d.rule == "password"


def test_own_text_keeps_forward_drops_quotes_and_signatures() -> None:
    body = (
        "Välitän tämän.\nTerveisin Pekka\nIT-tuki\n\n"
        "---------- Forwarded message ---------\nFrom: Maija\n\n"
        "Palkka puuttuu.\n\nT. Maija\nHR\n\n"
        "On Mon, 3 Mar 2025, Servicedesk wrote:\n> salasana vaihdettu\n"
    )
    text = own_text(body)
    assert "Palkka puuttuu." in text
    assert "salasana" not in text
    assert "IT-tuki" not in text
    assert "HR" not in text


def test_language_detection() -> None:
    assert detect_language(["Salasana", "Hei, unohdin salasanani. Terveisin Matti"]) == "fi"
    assert detect_language(["Lösenord", "Hej, jag har glömt mitt lösenord. Mvh Anna"]) == "sv"
    assert detect_language(["Password", "Hi, I forgot my password. Thanks"]) == "en"
    assert detect_language(["VPN", ""], default="sv") == "sv"
    # A Swedish reply quoting a Finnish message is Swedish.
    quoted = "Tack, det fungerar nu.\n> Hei, olemme vaihtaneet salasanasi ja se on nyt voimassa."
    assert detect_language(["Re: ärende", quoted]) == "sv"


def test_mail_without_sender_or_text_goes_to_fallback() -> None:
    from ingest.mail import InboundMail

    empty = InboundMail(
        message_id="", subject="", sender=None, to=(), cc=(), reply_to=(), in_reply_to="",
        references=(), date="", text="", html="", headers={},
    )  # fmt: skip
    d = decide(empty, rules(RULES))
    assert (d.rule, d.organisation, d.language) == ("catch", "unknown", "fi")
