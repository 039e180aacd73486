"""Issue #11, defect 4: kill -9 under refresh load, grace 0. Clients rotate their chains
against a `pitpass serve` process; it is killed mid-load and started again; every client
retries the refresh token it never got an answer for, once, as the reference's clients
do. No chain dies: a rotation committed but never answered is not taken for reuse."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from pitpass.core.masking import mask_secret
from pitpass.db.models import RefreshToken
from tests.support import (
    Provisioner,
    free_port,
    migrated_schema,
    postgres_database,
    server_env,
    wait_until_ready,
)

pytestmark = pytest.mark.services

CLIENTS = 4
PASSWORD = "a sturdy test password"
STAFF = "staff@example.com"
ROTATIONS_BEFORE_THE_KILL = 8  # across all clients: the kill lands mid-load
LOOKS = 500  # pauses of the server to find a committed rotation not yet answered
KILLS = 8  # stops at the first kill that lands in the window; under load a look can miss it


@dataclass
class Server:
    env: dict[str, str]
    port: int
    log_path: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def issuer(self) -> str:
        return f"http://127.0.0.1:{self.port}/oauth2"

    def start(self) -> None:
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "pitpass", "serve", "--port", str(self.port)],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self.env,
            )
        wait_until_ready(f"http://127.0.0.1:{self.port}", self.process, self.log_path)

    def kill(self) -> None:
        assert self.process is not None
        self.process.kill()  # SIGKILL: no draining, no shutdown hooks
        self.process.wait()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@dataclass
class Client:
    """A client rotating its chain the way the reference's clients do."""

    auth: dict[str, str]
    refresh_token: str
    unanswered: str | None = None
    statuses: list[int] = field(default_factory=list)

    def rotate(self, issuer: str) -> bool:
        """One refresh; False when no answer came (the server was killed)."""
        form = {"grant_type": "refresh_token", "refresh_token": self.refresh_token} | self.auth
        try:
            response = httpx.post(f"{issuer}/token", data=form, timeout=30)
        except httpx.TransportError:
            self.unanswered = self.refresh_token
            return False
        self.statuses.append(response.status_code)
        if response.status_code == 200:
            self.refresh_token = response.json()["refresh_token"]
        return response.status_code == 200


@pytest.fixture(params=["sqlite", "postgresql"])
def server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Server]:
    with contextlib.ExitStack() as stack:
        extra = {"PITPASS_PASSWORD_LIMITED_RATE": "100/hour"}  # grace 0: the default
        if request.param == "postgresql":
            extra["PITPASS_DATABASE_URL"] = stack.enter_context(postgres_database(migrated=True))
        env = server_env(tmp_path, extra)
        migrated_schema(env["PITPASS_DATABASE_URL"])
        port = free_port()
        env["PITPASS_ISSUER"] = f"http://127.0.0.1:{port}/oauth2"
        running = Server(env, port, tmp_path / "server.log")
        stack.callback(running.stop)
        running.start()
        yield running


def clients_of(server: Server) -> list[Client]:
    provision = Provisioner.for_env(server.env)
    try:
        provision.member(STAFF, PASSWORD, staff=True)
        clients = []
        for _n in range(CLIENTS):
            name = uuid.uuid4().hex[:8]
            email = f"driver-{name}@example.com"
            provision.member(email, PASSWORD)
            client_id, secret = provision.client(
                STAFF, f"Tool {name}", "server-side", ("password_limited",), (), ("data-server",)
            )
            assert secret is not None
            provision.add_to_access_list(client_id, email, STAFF)
            auth = {"client_id": client_id, "client_secret": mask_secret(secret, client_id)}
            form = auth | {
                "grant_type": "password_limited",
                "username": email,
                "password": mask_secret(PASSWORD, email),
            }
            granted = httpx.post(f"{server.issuer}/token", data=form, timeout=30)
            assert granted.status_code == 200, granted.text
            clients.append(Client(auth, granted.json()["refresh_token"]))
        return clients
    finally:
        provision.close()


class Ledger:
    """Reads the server's database from outside: was this refresh token spent?"""

    def __init__(self, server: Server) -> None:
        self.provision = Provisioner.for_env(server.env)

    def spent(self, token: str) -> bool:
        context = self.provision.context
        token_hash = context.keyring.token_hash(f"refresh:{token}")
        with context.session() as db:
            used_at = db.scalar(
                select(RefreshToken.used_at).where(RefreshToken.token_hash == token_hash)
            )
        return used_at is not None

    def close(self) -> None:
        self.provision.close()


def kill_mid_rotation(server: Server, clients: list[Client], ledger: Ledger) -> None:
    """Rotate on every client at once; SIGKILL the server at a moment when a rotation it
    committed has not been answered yet (found by pausing it with SIGSTOP and looking),
    or at the last such look."""
    assert server.process is not None
    pid = server.process.pid
    rotations = threading.Semaphore(0)
    killed = threading.Event()

    def load(client: Client) -> None:
        client.unanswered = None
        while not killed.is_set():
            if not client.rotate(server.issuer):
                return
            rotations.release()

    threads = [threading.Thread(target=load, args=(client,)) for client in clients]
    for thread in threads:
        thread.start()
    for _n in range(ROTATIONS_BEFORE_THE_KILL):
        assert rotations.acquire(timeout=60), "the load stalled before the kill"
    for _look in range(LOOKS):
        os.kill(pid, signal.SIGSTOP)
        if any(ledger.spent(client.refresh_token) for client in clients):
            break
        os.kill(pid, signal.SIGCONT)
        time.sleep(0.002)
    server.kill()
    killed.set()
    for thread in threads:
        thread.join(timeout=60)


def test_kill_9_mid_refresh_load_kills_no_chain(server: Server) -> None:
    clients = clients_of(server)
    ledger = Ledger(server)
    committed_unanswered = 0
    try:
        # Until a kill lands between a rotation's commit and its answer (the case that
        # killed chains), at most KILLS times; each kill restarts the server, and each
        # client retries the token it got no answer for, once, as the reference does.
        for _kill in range(KILLS):
            kill_mid_rotation(server, clients, ledger)
            assert all(status == 200 for client in clients for status in client.statuses)
            unanswered = [client.unanswered for client in clients if client.unanswered]
            committed_unanswered += sum(ledger.spent(token) for token in unanswered)
            server.start()
            for client in clients:
                if client.unanswered is not None:
                    assert client.refresh_token == client.unanswered
                assert client.rotate(server.issuer), client.statuses
                assert client.rotate(server.issuer), client.statuses
            if committed_unanswered:
                break
    finally:
        ledger.close()
    assert committed_unanswered, f"in {KILLS} kills, none hit a committed rotation"
