"""The files in deploy/ agree with Pitpass and with each other: the settings file names
real settings with valid values, the unit runs a real `pitpass serve` command line, and
the timeouts nest (nginx gives up, then the instance's drain ends, then systemd kills)."""

from __future__ import annotations

import os
import re
import shlex
from pathlib import Path
from unittest import mock

from typer.main import get_command

from pitpass.cli import app
from pitpass.config import load_settings
from tests.deploy.cluster import DEPLOY, SHIPPED_NGINX_CONF

UNIT = DEPLOY / "systemd" / "pitpass@.service"
ENV_EXAMPLE = DEPLOY / "pitpass.env.example"


def unit_section(path: Path, section: str) -> dict[str, list[str]]:
    """Each key of a systemd unit section with its values, in order (keys may repeat)."""
    values: dict[str, list[str]] = {}
    current = None
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("["):
            current = line.strip("[]")
        elif current == section:
            key, _, value = line.partition("=")
            values.setdefault(key, []).append(value)
    return values


def seconds(value: str) -> int:
    match = re.fullmatch(r"(\d+)s?", value)
    assert match, value
    return int(match.group(1))


def nginx_directive(name: str) -> str:
    match = re.search(rf"^\s*{name}\s+([^;]+);", SHIPPED_NGINX_CONF.read_text(), re.MULTILINE)
    assert match, name
    return match.group(1)


def test_the_settings_example_loads_as_production_settings() -> None:
    """As systemd reads an EnvironmentFile: NAME=value, surrounding quotes removed."""
    text = ENV_EXAMPLE.read_text()
    values = {
        name: value.strip('"')
        for name, value in re.findall(r"^(PITPASS_\w+)=(.*)$", text, re.MULTILINE)
    }
    assert values["PITPASS_SECRET_KEY"] == ""  # each deployment makes its own
    values["PITPASS_SECRET_KEY"] = "a generated key of at least thirty-two characters"
    with mock.patch.dict(os.environ, values, clear=True):
        settings = load_settings()  # a misspelt name or a bad value raises ConfigError
    assert settings.environment == "production"
    assert settings.redis_url and settings.smtp_host
    assert settings.forwarded_allow_ips == "127.0.0.1"  # where the shipped nginx connects from


def test_the_unit_runs_pitpass_serve_and_stops_it_after_the_drain() -> None:
    service = unit_section(UNIT, "Service")
    assert service["EnvironmentFile"] == [f"/etc/pitpass/{ENV_EXAMPLE.stem}"]
    assert service["Restart"] == ["on-failure"]
    assert service["KillSignal"] == ["SIGTERM"]
    assert service["NoNewPrivileges"] == ["yes"] and service["ProtectSystem"] == ["strict"]
    command = shlex.split(service["ExecStart"][0].replace("%i", "8001"))
    assert Path(command[0]).name == "pitpass" and command[1] == "serve"
    serve = get_command(app).commands["serve"]  # type: ignore[attr-defined]
    options = serve.make_context("serve", command[2:]).params  # refuses unknown options
    assert options["host"] == "127.0.0.1"
    drain = options["timeout_graceful_shutdown"]
    # Past proxy_read_timeout nginx has answered 504: nobody waits for a longer drain.
    assert drain == seconds(nginx_directive("proxy_read_timeout"))
    # systemd's SIGKILL comes only after the drain and the application's shutdown.
    assert seconds(service["TimeoutStopSec"][0]) > drain


def test_nginx_never_resends_a_post_that_reached_an_instance() -> None:
    """`non_idempotent` would resend a POST /token that may have run (a code redeemed, a
    refresh token rotated): its retry would be judged a reuse (deploy/nginx/pitpass.conf)."""
    assert nginx_directive("proxy_next_upstream").split() == ["error", "timeout"]
