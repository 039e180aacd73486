"""Helpers shared by the test suites: databases, Redis, a real SMTP server, a live server."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from email import message_from_bytes
from email.message import Message
from pathlib import Path

import httpx
import psycopg
import pytest
import redis
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session
from sqlalchemy import MetaData, create_engine, select

from pitpass.db.engine import driver_url

POSTGRES_ADMIN_URL = os.environ.get(
    "TESTS_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)
REDIS_URL = os.environ.get("TESTS_REDIS_URL", "redis://127.0.0.1:6379/0")
IN_CI = os.environ.get("CI", "").lower() == "true"
TEST_SECRET_KEY = "test-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz"


def unavailable(reason: str) -> None:
    """Skip with one line on a developer's machine; fail in CI, where everything must run."""
    if IN_CI:
        pytest.fail(f"CI=true and {reason}", pytrace=False)
    pytest.skip(reason)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# ----- databases ------------------------------------------------------------------


@contextmanager
def postgres_database() -> Iterator[str]:
    """A fresh, empty PostgreSQL database, dropped afterwards."""
    name = f"pitpass_test_{uuid.uuid4().hex[:12]}"
    try:
        admin = psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as error:
        unavailable(f"PostgreSQL is not reachable at {POSTGRES_ADMIN_URL}: {error}".splitlines()[0])
        raise
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    base = POSTGRES_ADMIN_URL.rsplit("/", 1)[0]
    try:
        yield f"{base}/{name}"
    finally:
        with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def require_redis() -> str:
    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping()
    except redis.RedisError as error:
        unavailable(f"Redis is not reachable at {REDIS_URL}: {error}")
    return REDIS_URL


@dataclass
class Backend:
    """Where a test's state lives: SQLite + in-process limits, or PostgreSQL + Redis."""

    name: str
    database_url: str
    redis_url: str | None
    redis_key_prefix: str = field(default_factory=lambda: f"pitpass-test-{uuid.uuid4().hex[:8]}")


def dump_database(database_url: str) -> str:
    """All rows of all tables as text, datetimes left out (their digits are not secrets)."""
    engine = create_engine(driver_url(database_url))
    metadata = MetaData()
    metadata.reflect(engine)
    parts: list[str] = []
    with engine.connect() as connection:
        for table in metadata.sorted_tables:
            for row in connection.execute(select(table)):
                for value in row:
                    if isinstance(value, bytes):
                        parts.append(value.decode("latin-1"))
                    elif isinstance(value, (dict, list)):
                        parts.append(json.dumps(value))
                    elif value is not None and not isinstance(value, datetime):
                        parts.append(str(value))
    engine.dispose()
    return "\n".join(parts)


# ----- a real SMTP server -----------------------------------------------------------


class Mailbox:
    def __init__(self) -> None:
        self.messages: list[Message] = []
        self._arrived = threading.Condition()

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        message = message_from_bytes(envelope.content or b"")
        with self._arrived:
            self.messages.append(message)
            self._arrived.notify_all()
        return "250 OK"

    def wait_for(self, to: str, count: int = 1, timeout: float = 15) -> Message:
        """The `count`-th message to `to`, waiting for it to arrive."""
        deadline = time.monotonic() + timeout
        with self._arrived:
            while True:
                mine = [m for m in self.messages if m["To"] == to]
                if len(mine) >= count:
                    return mine[count - 1]
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(f"no message #{count} for {to} within {timeout}s")
                self._arrived.wait(remaining)

    def wait_for_match(self, to: str, pattern: str, timeout: float = 15) -> re.Match[str]:
        """The first match of `pattern` in the bodies of messages to `to`, newest first."""
        deadline = time.monotonic() + timeout
        with self._arrived:
            while True:
                for message in reversed([m for m in self.messages if m["To"] == to]):
                    body = message.get_payload(decode=True)
                    assert isinstance(body, bytes)
                    if match := re.search(pattern, body.decode()):
                        return match
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(f"no message to {to} matching {pattern!r}")
                self._arrived.wait(remaining)

    def count_for(self, to: str) -> int:
        with self._arrived:
            return sum(1 for m in self.messages if m["To"] == to)

    def code_for(self, to: str, count: int = 1) -> str:
        body = self.wait_for(to, count).get_payload(decode=True)
        assert isinstance(body, bytes)
        match = re.search(r"sign-in code is (\d{6})", body.decode())
        assert match, body
        return match.group(1)


@contextmanager
def smtp_server() -> Iterator[tuple[Mailbox, int]]:
    mailbox = Mailbox()
    port = free_port()
    controller = Controller(mailbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield mailbox, port
    finally:
        controller.stop()


def smtp_env(port: int) -> dict[str, str]:
    return {
        "PITPASS_SMTP_HOST": "127.0.0.1",
        "PITPASS_SMTP_PORT": str(port),
        "PITPASS_SMTP_TLS": "none",
    }


# ----- a live server process --------------------------------------------------------

SRC = Path(__file__).resolve().parents[1] / "src"


@dataclass
class LiveServer:
    base_url: str
    process: subprocess.Popen[bytes]
    log_path: Path
    env: dict[str, str]

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")

    def pitpass(self, *args: str, stdin: str = "") -> CliResult:
        return run_cli(self.env, *args, stdin=stdin)


@dataclass(frozen=True)
class CliResult:
    returncode: int
    stdout: str
    stderr: str


def run_cli(env: dict[str, str], *args: str, stdin: str = "") -> CliResult:
    """The `pitpass` command in-process (a second per call faster than a new interpreter),
    with exactly the PITPASS_* settings of `env`."""
    from typer.testing import CliRunner

    from pitpass.cli import app

    settings = {name: None for name in os.environ if name.startswith("PITPASS_")}
    settings |= {name: value for name, value in env.items() if name.startswith("PITPASS_")}
    result = CliRunner().invoke(app, list(args), input=stdin, env=settings)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return CliResult(result.exit_code, result.stdout, result.stderr)


def run_cli_process(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """The real console entry point, as an operator runs it."""
    return subprocess.run(
        [sys.executable, "-m", "pitpass", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )


def server_env(workdir: Path, extra: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PITPASS_")}
    env.update(
        {
            "PITPASS_DATABASE_URL": f"sqlite:///{workdir / 'pitpass.db'}",
            "PITPASS_DATA_DIR": str(workdir / "var"),
            "PITPASS_SECRET_KEY": TEST_SECRET_KEY,
            "PYTHONUNBUFFERED": "1",
        }
    )
    env.update(extra)
    return env


@contextmanager
def live_server(workdir: Path, extra_env: dict[str, str]) -> Iterator[LiveServer]:
    """`pitpass serve` as a real process on a loopback port, after `pitpass db upgrade`."""
    workdir.mkdir(parents=True, exist_ok=True)
    env = server_env(workdir, extra_env)
    upgraded = run_cli(env, "db", "upgrade")
    assert upgraded.returncode == 0, upgraded.stderr
    port = free_port()
    env["PITPASS_ISSUER"] = env.get("PITPASS_ISSUER", f"http://127.0.0.1:{port}/oauth2")
    log_path = workdir / "server.log"
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(
            [sys.executable, "-m", "pitpass", "serve", "--port", str(port)],
            stdout=log_file,
            stderr=subprocess.STDOUT,
            env=env,
        )
    server = LiveServer(f"http://127.0.0.1:{port}", process, log_path, env)
    try:
        deadline = time.monotonic() + 30
        while True:
            if process.poll() is not None:
                raise AssertionError(f"server exited early:\n{server.log_text()}")
            try:
                if httpx.get(f"{server.base_url}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"server did not become ready:\n{server.log_text()}")
            time.sleep(0.1)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
