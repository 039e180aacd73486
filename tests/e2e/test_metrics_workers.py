"""`/metrics` of a real `pitpass serve --workers 2` (metrics.py): after a known sequence of
requests every series has exactly the count the sequence makes, added up over both
workers, and a worker killed with SIGKILL loses none of its counts and leaves no gauge."""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.parser import text_string_to_metric_families

from pitpass.core.masking import mask_secret
from pitpass.db.models import AuthorizationCode, utcnow
from pitpass.services import clients as clients_service
from tests.support import (
    Provisioner,
    free_port,
    migrated_schema,
    require_redis,
    server_env,
    wait_until_ready,
)

pytestmark = pytest.mark.services  # the password_limited limit is shared through Redis

STAFF = "staff@example.com"
MEMBER = "racer@example.com"
PASSWORD = "a sturdy test password"
CALLBACK = "https://app.example/callback"
TOKEN = "/oauth2/token"
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


@contextmanager
def serve_two_workers(workdir: Path) -> Iterator[tuple[str, dict[str, str], Path]]:
    """`pitpass serve --workers 2` on SQLite, its limits in Redis (as several workers need)."""
    env = server_env(
        workdir,
        {
            "PITPASS_REDIS_URL": require_redis(),
            "PITPASS_REDIS_KEY_PREFIX": f"pitpass-test-{uuid.uuid4().hex[:8]}",
            "PITPASS_PASSWORD_LIMITED_RATE": "1/hour",
        },
    )
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    migrated_schema(env["PITPASS_DATABASE_URL"])
    metrics_dir = Path(env["PITPASS_DATA_DIR"]) / "metrics"
    metrics_dir.mkdir(parents=True)
    (metrics_dir / "counter_1.db").write_bytes(b"a previous run's file")  # must be cleared
    port = free_port()
    env["PITPASS_ISSUER"] = f"http://127.0.0.1:{port}/oauth2"
    log_path = workdir / "server.log"
    with log_path.open("wb") as log:
        command = [sys.executable, "-m", "pitpass", "serve", "--port", str(port), "--workers", "2"]
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)
    try:
        base = f"http://127.0.0.1:{port}"
        wait_until_ready(base, process, log_path)
        yield base, env, metrics_dir
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def scrape(base: str) -> Samples:
    response = httpx.get(f"{base}/metrics", timeout=30)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return parse(response.text)


def parse(text: str) -> Samples:
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def requests_of(samples: Samples, method: str, route: str, status: int) -> float:
    name = "pitpass_http_request_duration_seconds_count"
    return value(samples, name, method=method, route=route, status=str(status))


def per_worker(metrics_dir: Path) -> dict[int, Samples]:
    """Each worker's own values, read from its files as the collector reads them all."""
    workers: dict[int, Samples] = {}
    for path in metrics_dir.glob("*.db"):
        pid = int(path.stem.rsplit("_", 1)[1])
        families = MultiProcessCollector.merge([str(path)])
        samples = workers.setdefault(pid, {})
        for family in families:
            for sample in family.samples:
                samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return workers


def served(samples: Samples) -> float:
    return sum(
        count
        for (name, _labels), count in samples.items()
        if name == "pitpass_http_request_duration_seconds_count"
    )


def wait_until_dead(pid: int) -> None:
    """SIGKILL is delivered asynchronously: until the process is gone or a zombie."""
    for _ in range(1000):
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[-1].split()[0]
        except FileNotFoundError:
            return
        if state == "Z":
            return
        time.sleep(0.01)
    raise AssertionError(f"worker {pid} outlived SIGKILL")


def mint_code(provision: Provisioner, client_id: str, member_id: int) -> str:
    code = secrets.token_urlsafe(24)
    with provision.context.session() as db:
        client = clients_service.by_client_id(db, client_id)
        assert client is not None
        db.add(
            AuthorizationCode(
                code_hash=provision.context.keyring.token_hash(f"code:{code}"),
                client_pk=client.id,
                member_id=member_id,
                session_id=str(uuid.uuid4()),
                redirect_uri=CALLBACK,
                scope="iracing.auth",
                auth_time=utcnow(),
                expires_at=utcnow() + timedelta(minutes=5),
            )
        )
    return code


def test_counts_of_a_known_sequence_add_up_across_two_workers(tmp_path: Path) -> None:
    with serve_two_workers(tmp_path) as (base, env, metrics_dir):
        assert not (metrics_dir / "counter_1.db").exists(), "serve empties the directory"
        provision = Provisioner.for_env(env)
        try:
            provision.member(STAFF, PASSWORD, staff=True)
            member = provision.member(MEMBER, PASSWORD)
            client_id, secret = provision.client(
                STAFF,
                "Metrics Client",
                flows=("authorization_code", "password_limited"),
                redirect_uris=(CALLBACK,),
                audiences=("data-server",),
            )
            provision.add_to_access_list(client_id, MEMBER, STAFF)
            codes = [mint_code(provision, client_id, member.id) for _ in range(2)]
        finally:
            provision.close()
        assert secret is not None
        auth = {"client_id": client_id, "client_secret": mask_secret(secret, client_id)}

        def token(**form: str) -> httpx.Response:
            # A new connection each time: the kernel hands them to either worker.
            return httpx.post(f"{base}{TOKEN}", data=form | auth, timeout=30)

        code_form = {"grant_type": "authorization_code", "redirect_uri": CALLBACK}
        first = token(code=codes[0], **code_form)
        assert first.status_code == 200, first.text
        refresh_tokens = [first.json()["refresh_token"]]
        for _ in range(3):
            rotated = token(grant_type="refresh_token", refresh_token=refresh_tokens[-1])
            assert rotated.status_code == 200, rotated.text
            refresh_tokens.append(rotated.json()["refresh_token"])
        reused = token(grant_type="refresh_token", refresh_token=refresh_tokens[0])
        assert reused.json()["error"] == "invalid_grant"
        assert token(code=codes[1], **code_form).status_code == 200
        replayed = token(code=codes[1], **code_form)
        assert replayed.json()["error"] == "invalid_grant"
        password_form = {
            "grant_type": "password_limited",
            "username": MEMBER,
            "password": mask_secret(PASSWORD, MEMBER),
        }
        assert token(**password_form).status_code == 200  # the one the hourly limit allows
        for _ in range(2):
            refused = token(**password_form)
            assert refused.json()["error"] == "unauthorized_client", refused.text
            assert "Retry-After" in refused.headers
        assert httpx.get(f"{base}/no/such/page/42", timeout=30).status_code == 404

        # Until both workers have answered something, the sums prove nothing.
        health_checks = 0
        while sum(1 for samples in per_worker(metrics_dir).values() if served(samples)) < 2:
            assert health_checks < 200, "every request went to one worker"
            assert httpx.get(f"{base}/healthz", timeout=30).status_code == 200
            health_checks += 1

        samples = scrape(base)

        issued, invalid = {"outcome": "issued"}, {"outcome": "invalid_grant"}
        grants = "pitpass_oauth_grants_total"
        expected_grants = {
            ("authorization_code", "issued"): 2,
            ("authorization_code", "invalid_grant"): 1,
            ("refresh_token", "issued"): 3,
            ("refresh_token", "invalid_grant"): 1,
            ("password_limited", "issued"): 1,
            ("password_limited", "unauthorized_client"): 2,
        }
        counted = {
            (dict(labels)["grant_type"], dict(labels)["outcome"]): count
            for (name, labels), count in samples.items()
            if name == grants and count
        }
        assert counted == expected_grants
        assert value(samples, grants, grant_type="refresh_token", **issued) == 3
        assert value(samples, grants, grant_type="authorization_code", **invalid) == 1
        assert value(samples, "pitpass_oauth_refresh_token_reuse_total") == 1
        assert value(samples, "pitpass_oauth_authorization_code_replays_total") == 1
        refusals = {
            dict(labels)["limiter"]: count
            for (name, labels), count in samples.items()
            if name == "pitpass_rate_limit_refusals_total"
        }
        assert refusals == {"password-limited": 2}
        assert requests_of(samples, "POST", TOKEN, 200) == 6
        assert requests_of(samples, "POST", TOKEN, 400) == 4
        assert requests_of(samples, "GET", "unmatched", 404) == 1
        assert requests_of(samples, "GET", "/healthz", 200) == health_checks
        # Never the raw path as a label.
        assert not [labels for (_n, labels) in samples if ("route", "/no/such/page/42") in labels]
        # The argon2 check of the one allowed password_limited grant is over.
        assert value(samples, "pitpass_argon2_waiting") == 0
        assert value(samples, "pitpass_argon2_in_use") == 0
        wait = "pitpass_storage_connection_wait_seconds_count"
        assert value(samples, wait, engine="postgresql") == 0  # SQLite lends none
        assert not [name for (name, _l) in samples if name == "pitpass_storage_errors_total"]

        # The scrape is the sum of the workers' own counts, series by series.
        workers = per_worker(metrics_dir)
        for key, total in samples.items():
            if key[0].endswith(("_count", "_sum", "_bucket", "_total")):
                added = sum(worker.get(key, 0.0) for worker in workers.values())
                if ("route", "/metrics") not in key[1]:  # the scrape counts itself afterwards
                    assert added == pytest.approx(total), key

        # SIGKILL one worker: uvicorn starts another; the dead one's counts stay in the sum
        # and its live gauges are dropped at the next scrape.
        victim = next(pid for pid, samples in workers.items() if served(samples))
        assert list(metrics_dir.glob(f"gauge_livesum_{victim}.db"))
        os.kill(victim, signal.SIGKILL)
        wait_until_dead(victim)
        after = scrape(base)
        assert not list(metrics_dir.glob(f"gauge_livesum_{victim}.db"))
        assert list(metrics_dir.glob(f"histogram_{victim}.db"))
        assert value(after, grants, grant_type="refresh_token", **issued) == 3
        assert requests_of(after, "POST", TOKEN, 200) == 6
        assert requests_of(after, "GET", "/healthz", 200) == health_checks
        assert requests_of(after, "GET", "/metrics", 200) == 1
