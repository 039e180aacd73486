"""Settings and the compatibility profile (PRODUCT.md §1).

Every platform-specific name lives in `Profile`; nothing else hard-codes them.
Settings come from `PITPASS_*` environment variables and, optionally, a TOML
file named by `PITPASS_CONFIG` (environment wins over the file).
"""

from __future__ import annotations

import difflib
import os
import re
import secrets
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from limits import parse as parse_rate_limit
from pydantic import BaseModel, Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

ENV_PREFIX = "PITPASS_"
DEFAULT_DATA_DIR = Path("var")
DEFAULT_DATABASE_URL = "sqlite:///var/pitpass.db"
SECRET_KEY_FILE = "secret.key"  # noqa: S105 - a file name, not a secret
MIN_SECRET_KEY_LENGTH = 32


class Profile(BaseModel):
    """The names Pitpass borrows from the reference service (PRODUCT.md §1)."""

    service_name: str = "Pitpass"
    # Scope name -> the plain words a member reads on the consent page.
    scopes: dict[str, str] = {
        "iracing.auth": "Act as you against the platform's services, such as the data API",
        "iracing.profile": "See your display name and customer id",
    }
    audiences: list[str] = ["data-server"]
    brand_words: list[str] = ["iracing", "iracer", "irace"]
    claim_customer_id: str = "iracing_cust_id"
    claim_group_ids: str = "iracing_group_ids"
    claim_environment: str = "iracing_env"
    environment: str | None = None  # the value of that claim; None (null) by default
    default_scope: str = "iracing.auth"  # granted when /authorize is sent no scope
    # Identity verification only: reads the profile endpoint, gets no refresh token.
    identity_scope: str = "iracing.profile"

    @field_validator("scopes")
    @classmethod
    def _scopes_are_tokens(cls, value: dict[str, str]) -> dict[str, str]:
        # RFC 6749 §3.3: scope tokens are printable ASCII without space, '"' or '\'.
        for name in value:
            if not re.fullmatch(r"[\x21\x23-\x5b\x5d-\x7e]+", name):
                raise ValueError(f"scope name {name!r} is not a valid RFC 6749 scope token")
        if not value:
            raise ValueError("at least one scope is required")
        return value

    @model_validator(mode="after")
    def _named_scopes_are_known(self) -> Profile:
        if self.default_scope not in self.scopes:
            raise ValueError(f"default_scope {self.default_scope!r} is not one of the scopes")
        # Checked only when set: a profile whose scopes predate the setting still starts.
        if "identity_scope" in self.model_fields_set and self.identity_scope not in self.scopes:
            raise ValueError(f"identity_scope {self.identity_scope!r} is not one of the scopes")
        return self


class ConfigError(Exception):
    """A setting is wrong; the message names it and says what is wrong."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter="__",
        extra="forbid",
        hide_input_in_errors=True,
    )

    environment: Literal["development", "production"] = "development"
    issuer: str = "http://127.0.0.1:8000/oauth2"
    database_url: str = DEFAULT_DATABASE_URL
    data_dir: Path = DEFAULT_DATA_DIR
    secret_key: SecretStr | None = None
    # Older secret keys, newest first, comma-separated: still accepted for reading
    # what they sealed or signed until `pitpass secret-key rewrap` (docs/decisions.md).
    secret_key_previous: SecretStr | None = None
    signing_key_days: int = Field(default=90, ge=1, le=3650)  # scheduled key rotation
    redis_url: str | None = None
    redis_key_prefix: str = "pitpass"  # lets several deployments share one Redis
    # Every storage call's deadline: past it the request is answered 503 (docs/decisions.md
    # "Deadlines on storage").
    storage_timeout_seconds: float = Field(default=5.0, gt=0, le=60)

    smtp_host: str | None = None
    smtp_port: int = Field(default=587, ge=1, le=65535)
    smtp_tls: Literal["starttls", "tls", "none"] = "starttls"
    smtp_user: str | None = None
    smtp_password: SecretStr | None = None
    mail_from: str = "Pitpass <no-reply@pitpass.invalid>"

    signup_enabled: bool | None = None  # None: on in development, off in production
    signin_code_minutes: int = Field(default=10, ge=1, le=60)
    signin_code_attempts: int = Field(default=5, ge=1, le=20)
    remember_browser_days: int = Field(default=30, ge=1, le=365)
    web_session_hours: int = Field(default=12, ge=1, le=24 * 30)
    # Staff must have an authenticator app before any staff page or API call (issue #12).
    staff_require_totp: bool = False
    signin_failures_per_account: str = "5/15 minutes"
    signin_failures_per_ip: str = "30/15 minutes"
    # Issue #11: limits that an outsider cannot turn into a lock-out (docs/decisions.md).
    signin_failures_per_account_ip: str = "5/15 minutes"
    signin_code_failures_per_member: str = "10/hour"
    signin_codes_per_member: str = "5/15 minutes"
    signup_notices_per_email: str = "3/hour"
    access_list_adds_per_developer: str = "10/hour"
    # Issue #12: getting back into an account and changing its sign-in (docs/decisions.md).
    password_reset_minutes: int = Field(default=30, ge=5, le=24 * 60)
    password_resets_per_email: str = "5/hour"  # noqa: S105 - a rate
    password_resets_per_ip: str = "20/hour"  # noqa: S105 - a rate
    signin_code_resends_per_challenge: str = "3/15 minutes"
    email_changes_per_member: str = "5/hour"
    forwarded_allow_ips: str = "127.0.0.1"
    # `pitpass serve`'s connections (serving.py): the request line and headers may take
    # this many bytes (else 431), and must arrive within this many seconds (else closed).
    max_header_bytes: int = Field(default=16 * 1024, ge=4 * 1024, le=1024 * 1024)
    header_timeout_seconds: float = Field(default=10.0, gt=0, le=300)
    # Lets a scraper elsewhere read /metrics (loopback needs none; metrics.py).
    metrics_token: SecretStr | None = None

    # The protocol (PRODUCT.md §4).
    authorization_code_seconds: int = Field(default=60, ge=10, le=600)
    password_limited_rate: str = "10/hour"  # noqa: S105 - per client and username
    client_auth_failures_per_client: str = "20/minute"
    # A spent refresh token whose successor was never used counts as the client's retry
    # this long after the rotation (core/policy.is_retry_of_unanswered_rotation); 0: never.
    refresh_retry_seconds: int = Field(default=60, ge=0, le=600)

    # The developer program (PRODUCT.md §3).
    request_due_days: int = Field(default=10, ge=1, le=90)
    reminder_days_before_due: int = Field(default=2, ge=0, le=30)
    secret_grace_days: int = Field(default=7, ge=0, le=90)
    secret_link_hours: int = Field(default=24, ge=1, le=168)

    profile: Profile = Profile()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        config_file = os.environ.get(f"{ENV_PREFIX}CONFIG")
        if config_file:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=Path(config_file)))
        return tuple(sources)

    @field_validator("issuer")
    @classmethod
    def _issuer_is_plain_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(
                "must be an absolute http(s) URL such as https://auth.example.com/oauth2"
            )
        if parts.query or parts.fragment or "#" in value:
            raise ValueError("must not carry a query or fragment (RFC 8414 §2)")
        return value.rstrip("/")

    @field_validator("database_url")
    @classmethod
    def _database_url_is_supported(cls, value: str) -> str:
        scheme = value.split(":", 1)[0].split("+", 1)[0]
        if scheme not in ("sqlite", "postgresql", "postgres") or "://" not in value:
            raise ValueError(
                "must look like sqlite:///path/to/file.db or postgresql://user:pass@host:5432/db"
            )
        return value

    @field_validator("secret_key", "metrics_token")
    @classmethod
    def _secret_key_is_long(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < MIN_SECRET_KEY_LENGTH:
            raise ValueError(f"must be at least {MIN_SECRET_KEY_LENGTH} characters of random text")
        return value

    @field_validator("secret_key_previous")
    @classmethod
    def _previous_keys_are_long(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            for position, key in enumerate(value.get_secret_value().split(","), start=1):
                if len(key.strip()) < MIN_SECRET_KEY_LENGTH:
                    raise ValueError(
                        f"key {position} of the comma-separated list is shorter than "
                        f"{MIN_SECRET_KEY_LENGTH} characters"
                    )
        return value

    @field_validator(
        "signin_failures_per_account",
        "signin_failures_per_ip",
        "signin_failures_per_account_ip",
        "signin_code_failures_per_member",
        "signin_codes_per_member",
        "signup_notices_per_email",
        "access_list_adds_per_developer",
        "password_resets_per_email",
        "password_resets_per_ip",
        "signin_code_resends_per_challenge",
        "email_changes_per_member",
        "password_limited_rate",
        "client_auth_failures_per_client",
    )
    @classmethod
    def _is_rate_limit(cls, value: str) -> str:
        try:
            parse_rate_limit(value)
        except ValueError:
            raise ValueError("must be a rate such as '5/15 minutes' or '100/hour'") from None
        return value

    @model_validator(mode="after")
    def _production_needs_https(self) -> Settings:
        host = urlsplit(self.issuer).hostname or ""
        if (
            self.environment == "production"
            and self.issuer.startswith("http://")
            and host not in ("127.0.0.1", "::1", "localhost")
        ):
            raise ValueError("PITPASS_ISSUER must use https in production")
        return self

    # ----- derived values -------------------------------------------------

    @property
    def signup_open(self) -> bool:
        if self.signup_enabled is None:
            return self.environment == "development"
        return self.signup_enabled

    @property
    def public_base_url(self) -> str:
        """Scheme and host of the issuer: where pages live."""
        parts = urlsplit(self.issuer)
        return f"{parts.scheme}://{parts.netloc}"

    @property
    def issuer_path(self) -> str:
        return urlsplit(self.issuer).path or "/"

    @property
    def uses_https(self) -> bool:
        return self.issuer.startswith("https://")

    @property
    def is_embedded_default_database(self) -> bool:
        return self.database_url == DEFAULT_DATABASE_URL

    def secret_key_bytes(self) -> bytes:
        if self.secret_key is None:  # resolved by load_settings(); guard for direct construction
            raise ConfigError("PITPASS_SECRET_KEY: is not set")
        return self.secret_key.get_secret_value().encode("utf-8")

    def previous_secret_keys_bytes(self) -> list[bytes]:
        if self.secret_key_previous is None:
            return []
        keys = self.secret_key_previous.get_secret_value().split(",")
        return [key.strip().encode("utf-8") for key in keys]


def _env_name(location: tuple[int | str, ...]) -> str:
    return ENV_PREFIX + "__".join(str(part).upper() for part in location if part != "__root__")


def describe_validation_error(error: ValidationError) -> str:
    """One line per wrong setting, naming the environment variable."""
    lines = []
    for item in error.errors():
        loc = tuple(item.get("loc", ()))
        message = str(item.get("msg", "is not valid")).removeprefix("Value error, ")
        name = _env_name(loc) if loc else "settings"
        lines.append(f"{name}: {message}")
    return "; ".join(lines)


def _resolve_secret_key(settings: Settings) -> None:
    """The embedded default may generate its secret key once into ./var/ (issue #2, item 8)."""
    if settings.secret_key is not None:
        return
    if not settings.is_embedded_default_database:
        raise ConfigError(
            "PITPASS_SECRET_KEY: is required when PITPASS_DATABASE_URL is not the embedded default"
        )
    key_file = settings.data_dir / SECRET_KEY_FILE
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    if not key_file.exists():
        descriptor = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as handle:
            handle.write(secrets.token_urlsafe(48))
    value = key_file.read_text().strip()
    if len(value) < MIN_SECRET_KEY_LENGTH:
        raise ConfigError(f"PITPASS_SECRET_KEY: the generated key in {key_file} is damaged")
    settings.secret_key = SecretStr(value)


def _known_environment_names() -> set[str]:
    names = {f"{ENV_PREFIX}CONFIG"}
    for field_name in Settings.model_fields:
        names.add(f"{ENV_PREFIX}{field_name.upper()}")
    for field_name in Profile.model_fields:
        names.add(f"{ENV_PREFIX}PROFILE__{field_name.upper()}")
    return names


def _refuse_unknown_environment_names() -> None:
    """A misspelt PITPASS_* variable would otherwise be ignored without a word."""
    known = _known_environment_names()
    for name in sorted(os.environ):
        if name.startswith(ENV_PREFIX) and name not in known:
            close = difflib.get_close_matches(name, known, n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            raise ConfigError(f"{name}: is not a Pitpass setting{hint}")


def load_settings(**overrides: Any) -> Settings:
    """Read settings and resolve the secret key; raise ConfigError with one clear line."""
    _refuse_unknown_environment_names()
    config_file = os.environ.get(f"{ENV_PREFIX}CONFIG")
    if config_file and not Path(config_file).is_file():
        raise ConfigError(f"PITPASS_CONFIG: no such file: {config_file}")
    try:
        settings = Settings(**overrides)
    except ValidationError as error:
        raise ConfigError(describe_validation_error(error)) from None
    except (OSError, ValueError) as error:  # e.g. a missing or malformed TOML file
        raise ConfigError(f"PITPASS_CONFIG: {error}") from None
    _resolve_secret_key(settings)
    return settings
