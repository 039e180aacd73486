"""Settings: environment, TOML file, and one clear line for each wrong setting."""

from __future__ import annotations

from pathlib import Path

import pytest

from pitpass.config import ConfigError, load_settings
from tests.support import TEST_SECRET_KEY, run_cli_process, server_env


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in list(__import__("os").environ):
        if name.startswith("PITPASS_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("PITPASS_DATABASE_URL", "mysql://db/x", "PITPASS_DATABASE_URL: must look like sqlite"),
        ("PITPASS_SMTP_PORT", "twenty-five", "PITPASS_SMTP_PORT:"),
        ("PITPASS_SMTP_PORT", "70000", "PITPASS_SMTP_PORT:"),
        ("PITPASS_SECRET_KEY", "short", "PITPASS_SECRET_KEY: must be at least 32"),
        ("PITPASS_ISSUER", "auth.example.com", "PITPASS_ISSUER: must be an absolute http(s) URL"),
        ("PITPASS_ISSUER", "https://a.example/oauth2#x", "PITPASS_ISSUER: must not carry"),
        ("PITPASS_SMTP_TLS", "maybe", "PITPASS_SMTP_TLS:"),
        (
            "PITPASS_SIGNIN_FAILURES_PER_IP",
            "lots",
            "PITPASS_SIGNIN_FAILURES_PER_IP: must be a rate",
        ),
        ("PITPASS_ENVIRONMENT", "staging", "PITPASS_ENVIRONMENT:"),
        ("PITPASS_NO_SUCH_THING", "1", "PITPASS_NO_SUCH_THING: is not a Pitpass setting"),
        ("PITPASS_SECRETKEY", "x", "did you mean PITPASS_SECRET_KEY?"),
    ],
)
def test_a_wrong_setting_is_named_with_what_is_wrong(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, message: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


def test_production_needs_an_https_issuer(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PITPASS_ENVIRONMENT", "production")
    monkeypatch.setenv("PITPASS_ISSUER", "http://auth.example.com/oauth2")
    with pytest.raises(ConfigError, match="PITPASS_ISSUER must use https in production"):
        load_settings()


def test_toml_file_is_read_and_environment_wins(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    config = tmp_path / "pitpass.toml"
    config.write_text(
        'issuer = "https://auth.example.com/oauth2"\n'
        "smtp_port = 2525\n"
        '[profile]\nservice_name = "Grid Auth"\naudiences = ["data-server", "league-api"]\n'
    )
    monkeypatch.setenv("PITPASS_CONFIG", str(config))
    monkeypatch.setenv("PITPASS_SMTP_PORT", "25")
    settings = load_settings()
    assert settings.issuer == "https://auth.example.com/oauth2"
    assert settings.smtp_port == 25
    assert settings.profile.service_name == "Grid Auth"
    assert settings.profile.audiences == ["data-server", "league-api"]
    assert settings.profile.brand_words == ["iracing", "iracer", "irace"]


def test_missing_config_file_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PITPASS_CONFIG", "/nowhere/pitpass.toml")
    with pytest.raises(ConfigError, match=r"PITPASS_CONFIG: no such file: /nowhere/pitpass\.toml"):
        load_settings()


def test_profile_defaults_reproduce_the_reference_service() -> None:
    profile = load_settings().profile
    assert set(profile.scopes) == {"iracing.auth", "iracing.profile"}
    assert profile.audiences == ["data-server"]
    assert profile.claim_customer_id == "iracing_cust_id"


def test_embedded_default_generates_its_secret_key_once(tmp_path: Path) -> None:
    first = load_settings()
    key_file = tmp_path / "var" / "secret.key"
    assert key_file.exists()
    assert oct(key_file.stat().st_mode & 0o777) == "0o600"
    assert load_settings().secret_key_bytes() == first.secret_key_bytes()


def test_other_databases_need_an_explicit_secret_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PITPASS_DATABASE_URL", "postgresql://pitpass@db.example/pitpass")
    with pytest.raises(ConfigError, match="PITPASS_SECRET_KEY: is required"):
        load_settings()
    monkeypatch.setenv("PITPASS_SECRET_KEY", TEST_SECRET_KEY)
    assert load_settings().secret_key_bytes() == TEST_SECRET_KEY.encode()


def test_cli_stops_with_one_line_for_a_wrong_setting(tmp_path: Path) -> None:
    env = server_env(tmp_path, {"PITPASS_DATABASE_URL": "oracle://x/y"})
    for command in (["db", "upgrade"], ["serve"], ["members", "list"]):
        result = run_cli_process(env, *command)
        assert result.returncode == 2
        lines = result.stderr.strip().splitlines()
        assert lines == [
            "pitpass: PITPASS_DATABASE_URL: must look like sqlite:///path/to/file.db or "
            "postgresql://user:pass@host:5432/db"
        ]


def test_the_identity_scope_is_checked_only_when_set(monkeypatch: pytest.MonkeyPatch) -> None:
    """A profile with scopes of its own still starts; a named identity scope must exist."""
    monkeypatch.setenv("PITPASS_PROFILE__SCOPES", '{"acme.auth": "Act as you"}')
    monkeypatch.setenv("PITPASS_PROFILE__DEFAULT_SCOPE", "acme.auth")
    assert load_settings().profile.default_scope == "acme.auth"
    monkeypatch.setenv("PITPASS_PROFILE__IDENTITY_SCOPE", "acme.me")
    with pytest.raises(ConfigError, match=r"identity_scope 'acme\.me' is not one of the scopes"):
        load_settings()
