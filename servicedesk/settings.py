"""One typed, frozen settings object, from a TOML file plus environment overrides.

Every key can be overridden by ``SERVICEDESK_<SECTION>__<KEY>``; an unknown
key, a wrong type or a bad value stops start-up with the file, line and key,
because a daemon that silently ignores a typo in ``[imap]`` loses mail.
"""

from __future__ import annotations

import json
import os
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from classify.organisation import DEFAULT_ORGANISATIONS
from servicedesk.exceptions import ServiceDeskError
from servicedesk.paths import DEFAULT_RULES

ENV_PREFIX = "SERVICEDESK_"
DEFAULT_DATA_DIR = "servicedesk-data"


class ConfigError(ServiceDeskError):
    """The configuration cannot be used; the message names file, line and key."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _read_secret(value: str, path: str) -> str:
    """A secret may sit in the file (discouraged), the environment or a file."""
    if path:
        return Path(path).read_text(encoding="utf-8").strip()
    return value


class DatabaseSettings(_Section):
    url: str = f"sqlite:///{DEFAULT_DATA_DIR}/servicedesk.db"
    auto_migrate: bool = True
    echo: bool = False
    pool_size: int = Field(default=5, ge=1, le=100)


class DataSettings(_Section):
    dir: str = DEFAULT_DATA_DIR
    attachments: Literal["disk", "db"] = "disk"


class TicketSettings(_Section):
    prefix: str = Field(default="SD-", pattern=r"^[A-Z][A-Z0-9]{0,9}-$")
    digits: int = Field(default=6, ge=3, le=12)


Security = Literal["tls", "starttls", "none"]


class _Server(_Section):
    """A mail server we log in to; subclasses set their own default port and security."""

    host: str = ""
    port: int = Field(default=0, ge=1, le=65535)
    security: Security = "tls"
    user: str = ""
    password: str = ""
    password_file: str = ""
    timeout_seconds: float = Field(default=30.0, gt=0)

    def secret(self) -> str:
        return _read_secret(self.password, self.password_file)


class ImapSettings(_Server):
    name: str = "main"
    port: int = Field(default=993, ge=1, le=65535)
    # XOAUTH2 instead of a password: the access token is read from this file,
    # or printed by this command (run at every login, no shell; for helpers
    # that refresh short-lived tokens). Never logged.
    oauth2_token_file: str = ""
    oauth2_token_command: str = ""
    folder: str = "INBOX"
    processed_folder: str = "Processed"
    quarantine_folder: str = "Quarantine"
    ack: Literal["move", "flag", "delete"] = "move"
    flag_keyword: str = "ServiceDeskDone"
    idle: bool = True
    idle_renew_seconds: float = Field(default=25 * 60, gt=0, le=29 * 60)
    poll_seconds: float = Field(default=60.0, gt=0)
    # Mails per batch, fetched and acknowledged together (at most 100 and
    # 16 MB; fetched at most 50 per command, see ingest.imap_session).
    batch_size: int = Field(default=100, ge=1, le=1000)
    # Mails in hand at once, across batches: the parse workers stay busy
    # while finished mails are committed together (see ingest.writer). It
    # must stay about twice the writer's group size, or mails waiting for
    # the writer hold the slots that would keep the workers busy (measured:
    # 64 with groups of 32 left the workers idle a third of the time; 192
    # with groups of 96, a tenth, and drained a quarter faster).
    concurrency: int = Field(default=192, ge=1, le=256)
    unhealthy_after_failures: int = Field(default=5, ge=1)

    @model_validator(mode="after")
    def _one_token_source(self) -> ImapSettings:
        if self.oauth2_token_file and self.oauth2_token_command:
            raise ValueError(
                "imap.oauth2_token_file and imap.oauth2_token_command: set one, not both"
            )
        return self


class SmtpSettings(_Server):
    port: int = Field(default=25, ge=1, le=65535)
    security: Security = "none"
    from_address: str = "servicedesk@example.org"
    from_name: str = "Service desk"
    plus_addressing: bool = True
    max_attempts: int = Field(default=8, ge=1)
    backoff_seconds: float = Field(default=30.0, gt=0)


class WebSettings(_Section):
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    base_url: str = "http://127.0.0.1:8080"
    secret_key: str = ""
    secret_key_file: str = ""
    token_days_after_close: int = Field(default=90, ge=1)
    # Tracking-link lookups per client address (per web process).
    lookups_per_minute: float = Field(default=30.0, gt=0)
    lookup_burst: int = Field(default=20, ge=1)
    # Behind a reverse proxy: its address(es), so X-Forwarded-For is trusted.
    forwarded_allow_ips: str | None = None

    @field_validator("base_url")
    @classmethod
    def _strip_slash(cls, value: str) -> str:
        if not re.match(r"^https?://", value):
            raise ValueError("must start with http:// or https://")
        return value.rstrip("/")


class RulesSettings(_Section):
    path: str = str(DEFAULT_RULES)
    reload_seconds: float = Field(default=5.0, gt=0)


class LimitsSettings(_Section):
    max_message_bytes: int = Field(default=50 * 1024 * 1024, ge=1024)
    max_attachment_bytes: int = Field(default=25 * 1024 * 1024, ge=0)
    max_attachments: int = Field(default=50, ge=0)
    max_parts: int = Field(default=500, ge=1)
    max_depth: int = Field(default=20, ge=1)
    max_headers: int = Field(default=1000, ge=1)
    max_header_bytes: int = Field(default=256 * 1024, ge=1024)
    max_recipients: int = Field(default=500, ge=1)
    processing_seconds: float = Field(default=20.0, gt=0)
    # Parsing runs in worker processes (0 = one per core) so one hostile mail
    # never blocks IDLE, SMTP or HTTP; each worker is capped and recycled.
    parse_workers: int = Field(default=0, ge=0, le=64)
    parse_worker_max_bytes: int = Field(default=2 * 1024**3, ge=64 * 1024**2)
    parse_worker_recycle_bytes: int = Field(default=400 * 1024**2, ge=32 * 1024**2)


class NotifySettings(_Section):
    default_language: Literal["fi", "sv", "en"] = "fi"
    replies_per_address_per_day: int = Field(default=10, ge=0)
    reopen_days: int = Field(default=14, ge=0)
    stranger_replies: Literal["note", "new_ticket"] = "note"
    # Resolved tickets close by themselves after this many days (0 = never).
    auto_close_days: int = Field(default=7, ge=0)
    # Tickets waiting for the requester get one reminder after this many days (0 = never).
    remind_waiting_days: int = Field(default=5, ge=0)


class WebhookSettings(_Section):
    """Ticket events POSTed as signed JSON so an existing ITSM can mirror tickets."""

    urls: tuple[str, ...] = ()
    secret: str = ""
    secret_file: str = ""
    timeout_seconds: float = Field(default=10.0, gt=0)
    max_attempts: int = Field(default=10, ge=1)
    backoff_seconds: float = Field(default=30.0, gt=0)

    @field_validator("urls")
    @classmethod
    def _http_only(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for url in value:
            if not re.match(r"^https?://", url):
                raise ValueError(f"{url!r} must start with http:// or https://")
        return value

    @model_validator(mode="after")
    def _needs_secret(self) -> WebhookSettings:
        if self.urls and not (self.secret or self.secret_file):
            raise ValueError(
                "webhooks.urls needs webhooks.secret or webhooks.secret_file to sign with"
            )
        return self

    def signing_key(self) -> bytes:
        return _read_secret(self.secret, self.secret_file).encode()


class LoggingSettings(_Section):
    level: Literal["debug", "info", "warning", "error"] = "info"
    format: Literal["json", "console"] = "json"


class Settings(_Section):
    database: DatabaseSettings = DatabaseSettings()
    data: DataSettings = DataSettings()
    tickets: TicketSettings = TicketSettings()
    imap: ImapSettings = ImapSettings()
    mailboxes: tuple[ImapSettings, ...] = ()
    smtp: SmtpSettings = SmtpSettings()
    web: WebSettings = WebSettings()
    rules: RulesSettings = RulesSettings()
    limits: LimitsSettings = LimitsSettings()
    notify: NotifySettings = NotifySettings()
    logging: LoggingSettings = LoggingSettings()
    webhooks: WebhookSettings = WebhookSettings()
    organisations: dict[str, tuple[str, ...]] = Field(
        default_factory=lambda: _organisations_by_id(DEFAULT_ORGANISATIONS)
    )
    source: str = ""

    @model_validator(mode="after")
    def _unique_mailbox_names(self) -> Settings:
        """Checkpoints and leadership are keyed by mailbox name; two alike would collide."""
        names = [m.name for m in self.all_mailboxes()]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"mailbox names must be unique; repeated: {', '.join(duplicates)}")
        return self

    @property
    def data_dir(self) -> Path:
        return Path(self.data.dir)

    def all_mailboxes(self) -> tuple[ImapSettings, ...]:
        first = (self.imap,) if self.imap.host else ()
        return first + self.mailboxes

    def domain_map(self) -> dict[str, str]:
        """Sender domain -> organisation id, the form classification wants."""
        return {
            domain.lower(): org for org, domains in self.organisations.items() for domain in domains
        }


def _organisations_by_id(by_domain: Mapping[str, str]) -> dict[str, tuple[str, ...]]:
    grouped: dict[str, list[str]] = {}
    for domain, org in by_domain.items():
        grouped.setdefault(org, []).append(domain)
    return {org: tuple(domains) for org, domains in grouped.items()}


def _env_value(raw: str) -> Any:
    """Environment values are strings; JSON lists/objects are accepted for tables."""
    text = raw.strip()
    if text[:1] in "[{":
        try:
            return json.loads(text)
        except json.JSONDecodeError:
            return raw
    return raw


def _apply_env(data: dict[str, Any], environ: Mapping[str, str]) -> dict[str, str]:
    """Merge ``SERVICEDESK_SECTION__KEY`` into ``data``; return key -> variable name."""
    origins: dict[str, str] = {}
    for name, value in environ.items():
        if not name.startswith(ENV_PREFIX) or "__" not in name:
            continue
        path = [part.lower() for part in name[len(ENV_PREFIX) :].split("__")]
        target = data
        for part in path[:-1]:
            existing = target.get(part)
            if not isinstance(existing, dict):
                existing = {}
                target[part] = existing
            target = existing
        target[path[-1]] = _env_value(value)
        origins[".".join(path)] = name
    return origins


def _line_of(text: str, dotted: str) -> int:
    """Best-effort line number of ``section.key`` in TOML text (0 when unknown)."""
    parts = dotted.split(".")
    section, key = ".".join(parts[:-1]), parts[-1]
    current = ""
    section_line = 0
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        header = re.match(r"^\[\[?\s*([^\]]+?)\s*\]\]?", stripped)
        if header:
            current = header.group(1)
            if current == dotted:
                return number
            if current == section:
                section_line = number
            continue
        if current == section and re.match(rf'^"?{re.escape(key)}"?\s*=', stripped):
            return number
    return section_line


def _describe(error: ValidationError, origin: str, text: str, env: dict[str, str]) -> str:
    lines = []
    for item in error.errors():
        dotted = ".".join(str(p) for p in item["loc"])
        message = item["msg"]
        if item["type"] == "extra_forbidden":
            message = "unknown key"
        variable = next((var for key, var in env.items() if dotted.startswith(key)), None)
        if variable:
            lines.append(f"environment {variable}: {dotted}: {message}")
        else:
            line = _line_of(text, dotted)
            where = f"{origin}:{line}" if line else origin
            lines.append(f"{where}: {dotted}: {message}")
    return "\n".join(lines)


def find_config(explicit: str | None, environ: Mapping[str, str]) -> Path | None:
    """``--config`` wins, then ``SERVICEDESK_CONFIG``, then ./servicedesk.toml if present."""
    if explicit:
        return Path(explicit)
    if environ.get("SERVICEDESK_CONFIG"):
        return Path(environ["SERVICEDESK_CONFIG"])
    local = Path("servicedesk.toml")
    return local if local.is_file() else None


def load_settings(
    path: Path | str | None = None, environ: Mapping[str, str] | None = None
) -> Settings:
    """Read, merge and validate; raise ConfigError with every problem listed."""
    env = os.environ if environ is None else environ
    config_path = find_config(str(path) if path else None, env)
    text = ""
    data: dict[str, Any] = {}
    origin = "<defaults>"
    if config_path is not None:
        origin = str(config_path)
        try:
            text = config_path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"{origin}: cannot read: {exc.strerror}") from exc
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{origin}: {exc}") from exc
    env_origins = _apply_env(data, {k: v for k, v in env.items() if k != "SERVICEDESK_CONFIG"})
    data["source"] = origin
    try:
        return Settings.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_describe(exc, origin, text, env_origins)) from exc
