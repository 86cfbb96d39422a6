"""Parse workers route mail too, by the rules live when the mail was handed over."""

from __future__ import annotations

from pathlib import Path

from classify.decide import decide
from classify.reload import RulesHolder
from classify.router import Routed
from ingest.budget import BudgetParser, BudgetSettings
from ingest.mail import InboundMail
from ingest.parse import ParseLimits, parse_mail
from servicedesk.runtime import build_router
from servicedesk.settings import load_settings
from tests.classify.test_reload import GOOD, NEWER, write

MAIL = (
    b"From: Maija <maija@eksote.fi>\r\nTo: servicedesk@example.org\r\n"
    b"Subject: Salasana vanhentunut\r\nMessage-ID: <w1@eksote.fi>\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n\r\nEn p\xc3\xa4\xc3\xa4se sis\xc3\xa4\xc3\xa4n.\r\n"
)


async def test_workers_route_by_the_live_rules_and_follow_a_reload(tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    write(path, GOOD, 1)
    holder = RulesHolder(path)
    settings = load_settings(None, environ={"SERVICEDESK_RULES__PATH": str(path)})
    parser = BudgetParser(
        ParseLimits(), BudgetSettings(workers=1), router=build_router(settings, holder)
    )
    try:
        first = await parser(MAIL)
        assert isinstance(first, Routed)
        assert first.decision.subcategory == "it.password"
        assert first.decision.organisation == "etela-karjala"
        # The same decision the daemon itself would make.
        mail = parse_mail(MAIL, ParseLimits())
        assert isinstance(mail, InboundMail)
        domains, language = settings.domain_map(), settings.notify.default_language
        assert first.decision == decide(mail, holder.rules, domains, language)

        write(path, NEWER, 2)
        assert holder.refresh() is True
        second = await parser(MAIL)  # the same worker, told about the new version
        assert isinstance(second, Routed)
        assert second.decision.subcategory == "it.access"
        assert second.decision.rules_version == holder.rules.version != first.decision.rules_version
    finally:
        await parser.aclose()


async def test_warm_up_starts_every_worker_before_mail_arrives() -> None:
    parser = BudgetParser(ParseLimits(), BudgetSettings(workers=2))
    try:
        assert parser.worker_pids() == []
        await parser.warm_up()
        assert len(parser.worker_pids()) == 2
    finally:
        await parser.aclose()


async def test_without_a_router_workers_only_parse() -> None:
    parser = BudgetParser(ParseLimits(), BudgetSettings(workers=1))
    try:
        result = await parser(MAIL)
        assert not isinstance(result, Routed)
        assert result.subject == "Salasana vanhentunut"  # type: ignore[union-attr]
    finally:
        await parser.aclose()
