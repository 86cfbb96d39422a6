"""Configuration: defaults, environment overrides, and errors that name file, line and key."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from servicedesk.settings import ConfigError, load_settings


def test_defaults_are_embedded_and_need_no_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    settings = load_settings(None, environ={})
    assert settings.database.url.startswith("sqlite:///servicedesk-data/")
    assert (settings.web.host, settings.web.port) == ("127.0.0.1", 8080)
    assert settings.smtp.host == ""
    assert settings.domain_map()["edu.joensuu.fi"] == "pohjois-karjala-edu"


def test_environment_overrides_file(tmp_path: Path) -> None:
    config = tmp_path / "sd.toml"
    config.write_text('[imap]\nhost = "imap.example.org"\nport = 993\n')
    settings = load_settings(config, environ={"SERVICEDESK_IMAP__PORT": "1143"})
    assert settings.imap.host == "imap.example.org"
    assert settings.imap.port == 1143


def test_unknown_key_names_file_line_and_key(tmp_path: Path) -> None:
    config = tmp_path / "sd.toml"
    config.write_text('[database]\nurl = "sqlite:///x.db"\n\n[imap]\nhost = "h"\nprot = 143\n')
    with pytest.raises(ConfigError) as caught:
        load_settings(config, environ={})
    assert f"{config}:6: imap.prot: unknown key" in str(caught.value)


def test_wrong_type_names_line(tmp_path: Path) -> None:
    config = tmp_path / "sd.toml"
    config.write_text('[web]\nport = "eighty"\n')
    with pytest.raises(ConfigError) as caught:
        load_settings(config, environ={})
    assert f"{config}:2: web.port:" in str(caught.value)
    assert "integer" in str(caught.value)


def test_bad_environment_value_names_variable() -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(None, environ={"SERVICEDESK_IMAP__SECURITY": "ssl3"})
    assert "SERVICEDESK_IMAP__SECURITY" in str(caught.value)


def test_toml_syntax_error_is_reported(tmp_path: Path) -> None:
    config = tmp_path / "sd.toml"
    config.write_text("[imap\nhost = 1\n")
    with pytest.raises(ConfigError) as caught:
        load_settings(config, environ={})
    assert str(config) in str(caught.value)
    assert "line 1" in str(caught.value)


def test_secret_from_file_not_only_from_toml(tmp_path: Path) -> None:
    secret = tmp_path / "imap.pass"
    secret.write_text("s3cret\n")
    settings = load_settings(None, environ={"SERVICEDESK_IMAP__PASSWORD_FILE": str(secret)})
    assert settings.imap.secret() == "s3cret"
    settings = load_settings(None, environ={"SERVICEDESK_IMAP__PASSWORD": "fromenv"})
    assert settings.imap.secret() == "fromenv"


def test_settings_are_frozen() -> None:
    settings = load_settings(None, environ={})
    with pytest.raises(ValidationError):
        settings.web.port = 1  # type: ignore[misc]


def test_default_config_file_is_valid() -> None:
    default = Path(__file__).resolve().parent.parent / "config" / "servicedesk.toml"
    settings = load_settings(default, environ={})
    assert settings.source == str(default)


def test_several_mailboxes_with_unique_names(tmp_path: Path) -> None:
    config = tmp_path / "sd.toml"
    config.write_text(
        '[imap]\nhost = "imap.example.org"\nuser = "sd@example.org"\n\n'
        '[[mailboxes]]\nname = "hr"\nhost = "imap.example.org"\nuser = "palkat@example.org"\n'
    )
    settings = load_settings(config, environ={})
    assert [m.name for m in settings.all_mailboxes()] == ["main", "hr"]
    config.write_text(config.read_text() + '\n[[mailboxes]]\nname = "hr"\nhost = "x"\n')
    with pytest.raises(ConfigError) as caught:
        load_settings(config, environ={})
    assert "repeated: hr" in str(caught.value)
