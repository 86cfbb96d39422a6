"""Every word the status page says, in Finnish, Swedish and English.

Kept as data in one place so a translator can review a language by reading
one column, and so a missing key is caught by a test rather than by a
requester seeing ``status.waiting`` on their screen.
"""

from __future__ import annotations

from collections.abc import Mapping

LANGUAGES = ("fi", "sv", "en")
LANGUAGE_NAMES = {"fi": "Suomeksi", "sv": "På svenska", "en": "In English"}

_T: dict[str, tuple[str, str, str]] = {
    # key: (fi, sv, en)
    "title": ("Palvelupyyntö", "Serviceärende", "Service request"),
    "desk": ("Palvelupiste", "Servicedesk", "Service desk"),
    "subject": ("Aihe", "Ämne", "Subject"),
    "category": ("Aihealue", "Kategori", "Category"),
    "organisation": ("Organisaatio", "Organisation", "Organisation"),
    "status": ("Tila", "Status", "Status"),
    "history": ("Tapahtumat", "Händelser", "History"),
    "you": ("Sinä", "Du", "You"),
    "attachments": ("Lähettämäsi liitteet", "Bilagor du skickat", "Attachments you sent"),
    "status_changed": ("Tila muuttui", "Status ändrades", "Status changed"),
    "urgent": ("Kiireellisissä asioissa", "I brådskande ärenden", "For urgent matters"),
    "feedback_q": ("Oliko tästä apua?", "Var detta till hjälp?", "Was this helpful?"),
    "yes": ("Kyllä", "Ja", "Yes"),
    "no": ("Ei", "Nej", "No"),
    "feedback_comment": (
        "Kommentti (vapaaehtoinen)",
        "Kommentar (frivillig)",
        "Comment (optional)",
    ),
    "feedback_send": ("Lähetä palaute", "Skicka respons", "Send feedback"),
    "feedback_given": (
        "Kiitos palautteestasi. Voit muuttaa sitä alla.",
        "Tack för din respons. Du kan ändra den nedan.",
        "Thank you for your feedback. You can change it below.",
    ),
    "comment_h": ("Lisää viesti", "Lägg till ett meddelande", "Add a message"),
    "comment_reopen": (
        "Jos asia ei ratkennut, kirjoita tähän – pyyntö avataan uudelleen.",
        "Om ärendet inte är löst, skriv här – ärendet öppnas igen.",
        "If this is not solved, write here and the request reopens.",
    ),
    "comment_send": ("Lähetä", "Skicka", "Send"),
    "comment_done": (
        "Viestisi on tallennettu pyyntöön.",
        "Ditt meddelande har sparats i ärendet.",
        "Your message was added to the request.",
    ),
    "form_stale": (
        "Lomake vanhentui. Yritä uudelleen.",
        "Formuläret har gått ut. Försök igen.",
        "The form expired. Please try again.",
    ),
    "closed_note": (
        "Pyyntö on suljettu. Jos tarvitset lisää apua, lähetä uusi sähköposti palvelupisteeseen.",
        "Ärendet är stängt. Behöver du mer hjälp, skicka ett nytt e-postmeddelande till servicedesken.",
        "This request is closed. If you need more help, send a new email to the service desk.",
    ),
    "password_hint": (
        "Salasanan voit vaihtaa itse salasanan vaihtopalvelussa.",
        "Du kan byta lösenord själv i tjänsten för lösenordsbyte.",
        "You can change your password yourself in the self-service password change.",
    ),
    "not_found": ("Sivua ei löydy", "Sidan hittades inte", "Page not found"),
    "not_found_text": (
        "Linkki ei ole voimassa. Tarkista linkki sähköpostista.",
        "Länken gäller inte. Kontrollera länken i e-postmeddelandet.",
        "This link is not valid. Please check the link in your email.",
    ),
    "too_many": ("Liian monta pyyntöä", "För många förfrågningar", "Too many requests"),
    "too_many_text": (
        "Odota hetki ja yritä uudelleen.",
        "Vänta en stund och försök igen.",
        "Please wait a moment and try again.",
    ),
    "unknown": ("tuntematon", "okänd", "unknown"),
}

STATUS: dict[str, tuple[tuple[str, str, str], tuple[str, str, str]]] = {
    # status: ((fi, sv, en) name, (fi, sv, en) what happens next)
    "new": (
        ("Vastaanotettu", "Mottaget", "Received"),
        (
            "Pyyntösi on vastaanotettu ja odottaa käsittelijää. Saat sähköpostia, kun asia etenee.",
            "Ditt ärende har tagits emot och väntar på en handläggare. Du får e-post när det händer något.",
            "We have received your request and it is waiting for an agent. You will get an email when there is news.",
        ),
    ),
    "open": (
        ("Käsittelyssä", "Under behandling", "In progress"),
        (
            "Käsittelijä työskentelee pyyntösi parissa. Saat sähköpostia, kun asia etenee.",
            "En handläggare arbetar med ditt ärende. Du får e-post när det händer något.",
            "An agent is working on your request. You will get an email when there is news.",
        ),
    ),
    "waiting": (
        ("Odottaa vastaustasi", "Väntar på ditt svar", "Waiting for your reply"),
        (
            "Tarvitsemme sinulta lisätietoja. Vastaa sähköpostiin tai kirjoita viesti alle.",
            "Vi behöver mer information av dig. Svara på e-postmeddelandet eller skriv nedan.",
            "We need more information from you. Reply to the email or write a message below.",
        ),
    ),
    "resolved": (
        ("Ratkaistu", "Löst", "Resolved"),
        (
            "Pyyntösi on ratkaistu. Jos asia ei ole kunnossa, kirjoita viesti alle, niin pyyntö avataan uudelleen.",
            "Ditt ärende är löst. Om något fortfarande är fel, skriv nedan så öppnas ärendet igen.",
            "Your request has been resolved. If something is still wrong, write a message below and it reopens.",
        ),
    ),
    "closed": (
        ("Suljettu", "Stängt", "Closed"),
        (
            "Pyyntö on suljettu. Uudessa asiassa lähetä uusi sähköposti palvelupisteeseen.",
            "Ärendet är stängt. För ett nytt ärende, skicka ett nytt e-postmeddelande till servicedesken.",
            "This request is closed. For a new matter, send a new email to the service desk.",
        ),
    ),
}

CATEGORY: dict[str, tuple[str, str, str]] = {
    "it": ("IT-tuki", "IT-support", "IT support"),
    "hr": ("Palkka- ja henkilöstöasiat", "Lön och personal", "Payroll and HR"),
    "order": ("Tilaukset", "Beställningar", "Orders"),
    "it.advice": ("Neuvonta", "Rådgivning", "Advice"),
    "it.software_install": ("Ohjelmiston asennus", "Programinstallation", "Software installation"),
    "it.incident": ("Palveluhäiriö", "Driftstörning", "Service outage"),
    "it.device_fault": ("Laitevika", "Fel på enhet", "Device fault"),
    "it.password": ("Salasana", "Lösenord", "Password"),
    "it.access": ("Tunnukset ja käyttöoikeudet", "Konton och behörigheter", "Accounts and access"),
    "hr.certificate": (
        "Palkka- tai palvelustodistus",
        "Löne- eller tjänstgöringsintyg",
        "Salary or service certificate",
    ),
    "hr.tax": ("Verokortti", "Skattekort", "Tax card"),
    "hr.pay_question": ("Palkkakysymys", "Lönefråga", "Pay question"),
    "hr.deduction": ("Palkasta perittävät maksut", "Avdrag från lön", "Pay deductions"),
    "hr.payroll_material": ("Palkka-aineisto", "Lönematerial", "Payroll material"),
    "hr.supervisor_change": ("Esihenkilömuutos", "Byte av chef", "Change of supervisor"),
    "hr.employment_change": (
        "Palvelussuhteen muutos",
        "Ändring i anställningen",
        "Employment change",
    ),
    "hr.work_certificate": ("Työtodistus", "Arbetsintyg", "Work certificate"),
    "order.workstation": ("Työasema", "Arbetsstation", "Workstation"),
    "order.mobile": ("Mobiililaite", "Mobil enhet", "Mobile device"),
    "order.license": ("Lisenssi", "Licens", "Licence"),
    "order.subscription": ("Liittymä", "Abonnemang", "Subscription"),
    "order.peripheral": ("Oheislaite", "Kringutrustning", "Peripheral"),
    "order.oc_account": ("OC-tunnus", "OC-konto", "OC account"),
    "order.firewall": ("Palomuurimuutos", "Brandväggsändring", "Firewall change"),
    "order.lifecycle": ("Laitteen elinkaari", "Enhetens livscykel", "Device lifecycle"),
}

ORGANISATION: dict[str, str] = {
    "etela-karjala": "Etelä-Karjala",
    "siun-sote": "Siun sote",
    "pohjois-karjala": "Pohjois-Karjala",
    "pohjois-karjala-edu": "Pohjois-Karjala (koulut / skolor / schools)",
}

# The urgent line depends on the category: HR/payroll has its own service.
CONTACT: dict[str, tuple[str, str, str]] = {
    "it": (
        "IT-palvelupiste 013 339 0700 (arkisin 07.30–16.00)",
        "IT-servicedesken 013 339 0700 (vardagar 07.30–16.00)",
        "IT service desk 013 339 0700 (weekdays 07.30–16.00)",
    ),
    "hr": (
        "Talous- ja henkilöstöpalvelujen asiakaspalvelu 013 339 0750 (arkisin 09.00–15.00)",
        "Ekonomi- och personaltjänsternas kundtjänst 013 339 0750 (vardagar 09.00–15.00)",
        "Finance and HR customer service 013 339 0750 (weekdays 09.00–15.00)",
    ),
}
CONTACT["order"] = CONTACT["it"]


def _index(lang: str) -> int:
    return LANGUAGES.index(lang) if lang in LANGUAGES else 0


def pick_language(requested: str | None, ticket_language: str) -> str:
    """``?lang=`` wins when valid, then the ticket's language, then Finnish."""
    if requested in LANGUAGES:
        return str(requested)
    return ticket_language if ticket_language in LANGUAGES else LANGUAGES[0]


def words(lang: str) -> Mapping[str, str]:
    i = _index(lang)
    return {key: values[i] for key, values in _T.items()}


def status_name(status: str, lang: str) -> str:
    entry = STATUS.get(status)
    return entry[0][_index(lang)] if entry else status


def status_next(status: str, lang: str) -> str:
    entry = STATUS.get(status)
    return entry[1][_index(lang)] if entry else ""


def category_name(category: str, lang: str) -> str:
    entry = CATEGORY.get(category)
    return entry[_index(lang)] if entry else category


def organisation_name(organisation: str, lang: str) -> str:
    if organisation in ("", "unknown"):
        return _T["unknown"][_index(lang)]
    return ORGANISATION.get(organisation, organisation)


def contact_line(category: str, lang: str) -> str:
    entry = CONTACT.get(category.split(".", 1)[0], CONTACT["it"])
    return entry[_index(lang)]
