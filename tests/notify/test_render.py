"""Every template renders in every language, strictly; lookup order; escaping."""

from __future__ import annotations

from pathlib import Path

import pytest
from jinja2 import UndefinedError

from notify.context import clean_subject
from notify.render import LANGUAGES, MAIL_TEMPLATES_DIR, TEMPLATES, Renderer, chain

BASE = {
    "number": "SD-000042",
    "link": "https://desk.example.org/t/abcDEF123_-",
    "feedback_link": "https://desk.example.org/t/abcDEF123_-",
    "subject": "Tulostin & skanneri",
    "name": "Maija",
    "category": "it",
    "subcategory": "it.device_fault",
    "organisation": "etela-karjala",
    "status": "open",
}
EXTRA = {
    "status_changed": {"old_status": "open", "new_status": "waiting"},
    "agent_reply": {"agent_text": "Kokeile uudelleen:\n\nhttps://x.example/ohje?a=1&b=2"},
    "rejected": {"reason": "too_large", "detail": "max 50 MB"},
}
ROUTES = [
    ("etela-karjala", "it.password"),
    ("pohjois-karjala-edu", "order.workstation"),
    ("siun-sote", "hr.pay_question"),
    ("", ""),
]


def variables(template: str) -> dict[str, object]:
    if template == "rejected":
        return {"name": "Maija", "subject": "Iso liite", "category": "", **EXTRA["rejected"]}
    return {**BASE, **EXTRA.get(template, {})}


@pytest.mark.parametrize("template", TEMPLATES)
@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize(("organisation", "subcategory"), ROUTES)
def test_every_template_renders_in_every_language(
    template: str, language: str, organisation: str, subcategory: str
) -> None:
    rendered = Renderer().render(
        template, language, variables(template), organisation=organisation, subcategory=subcategory
    )
    assert rendered.subject and "\n" not in rendered.subject
    assert rendered.text.strip() and "<html" in rendered.html
    if template != "rejected":
        assert BASE["link"] in rendered.text and BASE["link"] in rendered.html
        assert "SD-000042" in rendered.text
        assert "Tulostin &amp; skanneri" in rendered.html  # requester text is escaped
        assert "Tulostin & skanneri" not in rendered.html


@pytest.mark.parametrize("template", TEMPLATES)
@pytest.mark.parametrize("language", LANGUAGES)
def test_a_missing_variable_is_an_error(template: str, language: str) -> None:
    values = variables(template)
    values.pop("subject")
    with pytest.raises(UndefinedError):
        Renderer().render(template, language, values)


def test_every_override_has_text_and_html_and_a_base() -> None:
    names = {p.name for p in MAIL_TEMPLATES_DIR.iterdir()}
    for template in TEMPLATES:
        for language in LANGUAGES:
            for ext in ("subject", "txt", "html"):
                assert f"{template}.{language}.{ext}" in names
    overrides = [n for n in names if n.count(".") > 2 and not n.startswith("_")]
    for name in overrides:
        stem = name.rsplit(".", 1)[0]
        assert {f"{stem}.txt", f"{stem}.html"} <= names, name


def test_lookup_order_is_org_then_subcategory_then_category_then_base() -> None:
    assert chain("ack_new", "fi", "pohjois-karjala-edu", "order.workstation") == [
        "ack_new.org.pohjois-karjala-edu.order.workstation.fi",
        "ack_new.org.pohjois-karjala-edu.order.fi",
        "ack_new.org.pohjois-karjala-edu.fi",
        "ack_new.order.workstation.fi",
        "ack_new.order.fi",
        "ack_new.fi",
    ]
    assert chain("ack_new", "sv", "../etc", "it/../../x") == ["ack_new.sv"]


def test_operator_folder_overrides_single_files(tmp_path: Path) -> None:
    (tmp_path / "ack_new.org.siun-sote.en.txt").write_text(
        '{% extends "ack_new.en.txt" %}{% block guidance %}Siun sote special.{% endblock %}'
    )
    renderer = Renderer((tmp_path, MAIL_TEMPLATES_DIR))
    rendered = renderer.render("ack_new", "en", BASE, organisation="siun-sote", subcategory="it")
    assert "Siun sote special." in rendered.text
    assert rendered.files[1] == "ack_new.org.siun-sote.en.txt"
    assert rendered.files[2] == "ack_new.en.html"


def test_language_falls_back_to_the_configured_default() -> None:
    renderer = Renderer(default_language="sv")
    assert renderer.language_for("de") == "sv"
    assert renderer.language_for("en") == "en"
    assert renderer.language_for(None) == "sv"


def test_agent_text_is_escaped_and_linked_in_html() -> None:
    values = {**BASE, "agent_text": "<img src=x onerror=alert(1)>\nhttps://x.example/a?b=1&c=2"}
    html = Renderer().render("agent_reply", "en", values).html
    assert "<img" not in html and "&lt;img" in html
    assert '<a href="https://x.example/a?b=1&amp;c=2">' in html


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("Re: VS: [SD-000001] Tulostin", "Tulostin"),
        ("SV: Re:Lösenord", "Lösenord"),
        ("Help\r\nBcc: x@y", "Help Bcc: x@y"),
        ("", "-"),
    ],
)
def test_clean_subject(raw: str, clean: str) -> None:
    assert clean_subject(raw, "SD-") == clean
