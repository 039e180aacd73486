"""Helpers shared by the test suites: databases, Redis, a real SMTP server, a live server."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from email import message_from_bytes
from email.message import Message
from pathlib import Path
from typing import Any
from unittest import mock

import httpx
import psycopg
import pytest
import redis
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope
from aiosmtpd.smtp import Session as SmtpSession
from sqlalchemy import MetaData, create_engine, select
from sqlalchemy.orm import Session

from pitpass.config import Settings, load_settings
from pitpass.db import migrate
from pitpass.db.engine import driver_url, make_engine
from pitpass.db.models import Client, Member
from pitpass.services import access_lists
from pitpass.services import clients as clients_service
from pitpass.services import members as members_service
from pitpass.services.client_details import ClientDetails
from pitpass.services.context import AppContext

POSTGRES_ADMIN_URL = os.environ.get(
    "TESTS_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)
REDIS_URL = os.environ.get("TESTS_REDIS_URL", "redis://127.0.0.1:6379/0")
IN_CI = os.environ.get("CI", "").lower() == "true"
TEST_SECRET_KEY = "test-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz"
# How long a started server may take to answer /readyz: generous, for a loaded machine.
READY_DEADLINE_SECONDS = 60.0


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


MIGRATIONS = Path(migrate.__file__).resolve().parent / "migrations"


def _schema_digest() -> str:
    """Names the migrated template: a changed migration makes a new one."""
    digest = hashlib.sha256()
    for path in sorted(MIGRATIONS.rglob("*.py")):
        digest.update(path.relative_to(MIGRATIONS).as_posix().encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def _postgres_template(admin: psycopg.Connection[Any]) -> str:
    """A database the migrations ran into, once per schema version (kept between runs as a
    cache); new databases are copied from it instead of migrating each one."""
    name = f"pitpass_template_{_schema_digest()}"
    admin.execute("SELECT pg_advisory_lock(hashtext(%s))", (name,))
    try:
        found = admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if found is None:
            building = f"{name}_{uuid.uuid4().hex[:8]}"
            admin.execute(f'CREATE DATABASE "{building}"')
            engine = make_engine(f"{POSTGRES_ADMIN_URL.rsplit('/', 1)[0]}/{building}")
            try:
                migrate.upgrade(engine)
            finally:
                engine.dispose()
            admin.execute(f'ALTER DATABASE "{building}" RENAME TO "{name}"')
    finally:
        admin.execute("SELECT pg_advisory_unlock(hashtext(%s))", (name,))
    return name


@contextmanager
def postgres_database(migrated: bool = False) -> Iterator[str]:
    """A fresh PostgreSQL database, dropped afterwards: empty, or (`migrated`) a copy of a
    template with the schema at the newest migration."""
    name = f"pitpass_test_{uuid.uuid4().hex[:12]}"
    try:
        admin = psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as error:
        unavailable(f"PostgreSQL is not reachable at {POSTGRES_ADMIN_URL}: {error}".splitlines()[0])
        raise
    with admin:
        if migrated:
            template = _postgres_template(admin)
            admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
        else:
            admin.execute(f'CREATE DATABASE "{name}"')
    base = POSTGRES_ADMIN_URL.rsplit("/", 1)[0]
    try:
        yield f"{base}/{name}"
    finally:
        with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def migrated_schema(database_url: str) -> None:
    """The schema at the newest migration: a new SQLite file is copied from a template,
    anything else is upgraded in place (a no-op on a migrated copy)."""
    if (
        database_url.startswith("sqlite:///")
        and not Path(database_url.removeprefix("sqlite:///")).exists()
    ):
        migrated_sqlite(database_url)
        return
    engine = make_engine(database_url)
    try:
        migrate.upgrade(engine)
    finally:
        engine.dispose()


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

    async def handle_DATA(self, server: SMTP, session: SmtpSession, envelope: Envelope) -> str:
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

    _provisioner: Provisioner | None = field(default=None, init=False, repr=False)

    def pitpass(self, *args: str, stdin: str = "") -> CliResult:
        return run_cli(self.env, *args, stdin=stdin)

    @property
    def provision(self) -> Provisioner:
        """Members and clients made in-process, on this server's settings and database."""
        if self._provisioner is None:
            self._provisioner = Provisioner.for_env(self.env)
        return self._provisioner

    def close_provisioner(self) -> None:
        if self._provisioner is not None:
            self._provisioner.close()
            self._provisioner = None


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


def settings_of(env: Mapping[str, str]) -> Settings:
    """The settings a `pitpass` process started with `env` reads (its PITPASS_* names only)."""
    wanted = {name: value for name, value in env.items() if name.startswith("PITPASS_")}
    with mock.patch.dict(os.environ, clear=False):
        for name in [name for name in os.environ if name.startswith("PITPASS_")]:
            del os.environ[name]
        os.environ.update(wanted)
        return load_settings()


_migrated_sqlite: dict[str, Path] = {}


def migrated_sqlite(database_url: str) -> None:
    """An up-to-date SQLite schema at `database_url` (a new file): the migrations run once per
    test process into a template, each caller gets a copy of it."""
    target = Path(database_url.removeprefix("sqlite:///"))
    assert database_url.startswith("sqlite:///") and not target.exists(), database_url
    template = _migrated_sqlite.get("template")
    if template is None:
        template = Path(tempfile.mkdtemp(prefix="pitpass-schema-")) / "template.db"
        engine = make_engine(f"sqlite:///{template}")
        migrate.upgrade(engine)
        engine.dispose()
        _migrated_sqlite["template"] = template
    target.parent.mkdir(parents=True, exist_ok=True)
    with closing(sqlite3.connect(template)) as source, closing(sqlite3.connect(target)) as copy:
        source.backup(copy)


def wait_until_ready(
    base_url: str,
    process: subprocess.Popen[bytes],
    log_path: Path,
    deadline_seconds: float = READY_DEADLINE_SECONDS,
) -> None:
    """Poll `/readyz` until it answers 200. A loaded machine may take long to start a
    process, so the deadline is generous and each probe may take seconds; a process that
    exits fails at once, with its log. No fixed sleep: between probes we wait on the process."""
    deadline = time.monotonic() + deadline_seconds
    last = "no answer yet"
    while True:
        if process.poll() is not None:
            raise AssertionError(
                f"server exited with status {process.returncode} before it was ready:\n"
                + log_path.read_text(errors="replace")
            )
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise AssertionError(
                f"server at {base_url} not ready within {deadline_seconds:.0f}s ({last}):\n"
                + log_path.read_text(errors="replace")
            )
        try:
            response = httpx.get(f"{base_url}/readyz", timeout=min(10.0, max(remaining, 0.1)))
            if response.status_code == 200:
                return
            last = f"/readyz answered {response.status_code}"
        except httpx.TransportError as error:
            last = f"{type(error).__name__}: {error}"
        # Wake early if the process exits; otherwise probe again shortly.
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=min(0.05, max(deadline - time.monotonic(), 0.0)))


@contextmanager
def live_server(workdir: Path, extra_env: dict[str, str]) -> Iterator[LiveServer]:
    """`pitpass serve` as a real process on a loopback port, on an up-to-date schema."""
    workdir.mkdir(parents=True, exist_ok=True)
    env = server_env(workdir, extra_env)
    migrated_schema(env["PITPASS_DATABASE_URL"])
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
        wait_until_ready(server.base_url, process, log_path)
        yield server
    finally:
        server.close_provisioner()
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


# ----- members and clients, made in-process ---------------------------------------
#
# The one place tests make members, clients and access-list entries without going
# through the pages or the CLI (the CLI's own tests, and the CLI smoke path in
# tests/e2e/test_no_secrets_at_rest.py, use the command on purpose).

CLIENT_DEVELOPER = {
    "developer_name": "Dev Inc.",
    "developer_url": "https://dev.example",
    "developer_email": "dev@example.com",
}


class Provisioner:
    """Members and clients through the services layer, on an AppContext of given settings."""

    def __init__(self, context: AppContext) -> None:
        self.context = context

    @classmethod
    def for_env(cls, env: Mapping[str, str]) -> Provisioner:
        return cls(AppContext.from_settings(settings_of(env)))

    def close(self) -> None:
        self.context.close()

    def member(
        self,
        email: str,
        password: str,
        *,
        name: str | None = None,
        staff: bool = False,
        **more: Any,
    ) -> Member:
        """As `pitpass members create` does (name defaults to the email's local part)."""
        with self.context.session() as db:
            member = members_service.create_member(
                db,
                members_service.NewMember(
                    email=email,
                    display_name=name if name is not None else email.split("@")[0].title(),
                    password=password,
                    is_staff=staff,
                    **more,
                ),
                actor_label="test",
            )
            db.expunge(member)
            return member

    def client(
        self,
        actor_email: str,
        name: str,
        client_type: str = "server-side",
        flows: Sequence[str] = ("authorization_code",),
        redirect_uris: Sequence[str] = (),
        audiences: Sequence[str] = (),
        **developer: str,
    ) -> tuple[str, str | None]:
        """A client issued by a staff member, as `pitpass clients create` does:
        (client_id, plaintext secret or None for a public client)."""
        details = ClientDetails(
            client_name=name,
            client_type=client_type,
            flows=list(flows),
            redirect_uris=list(redirect_uris),
            audiences=list(audiences),
            **(CLIENT_DEVELOPER | developer),
        )
        with self.context.session() as db:
            staff = self._staff(db, actor_email)
            owner = members_service.find_by_email(db, details.developer_email)
            issued = clients_service.create_client(self.context, db, details, staff, owner=owner)
            return issued.client.client_id, issued.secret

    def add_to_access_list(self, client_id: str, member: str, actor_email: str) -> None:
        """Staff add a member (email or customer id): active at once."""
        with self.context.session() as db:
            staff = self._staff(db, actor_email)
            access_lists.add_to_access_list(
                self.context, db, self._client(db, client_id), member, staff, by_staff=True
            )

    def disable_client(self, client_id: str, actor_email: str) -> None:
        with self.context.session() as db:
            staff = self._staff(db, actor_email)
            clients_service.set_disabled(db, self._client(db, client_id), True, staff)

    @staticmethod
    def _staff(db: Session, email: str) -> Member:
        staff = members_service.find_by_email(db, email)
        assert staff is not None and staff.is_staff, f"{email} is not a staff member"
        return staff

    @staticmethod
    def _client(db: Session, client_id: str) -> Client:
        client = clients_service.by_client_id(db, client_id)
        assert client is not None, f"no client {client_id}"
        return client
