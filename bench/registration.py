"""Seed many requests and clients, then time the lists staff and developers read.

Target (issue #3): the median of each list under 100 ms on SQLite and on
PostgreSQL, with 10,000 requests and 10,000 clients.
"""

from __future__ import annotations

import statistics
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
from fastapi.testclient import TestClient
from sqlalchemy import insert

from pitpass.app import create_app
from pitpass.config import load_settings
from pitpass.db.migrate import upgrade
from pitpass.db.models import Client, Member, RegistrationRequest
from pitpass.services.members import hash_masked_password

POSTGRES_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/test"
SECRET_KEY = "bench-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz"
MEMBERS = 1_000
HEAVY_DEVELOPER_SHARE = 0.05  # one developer owns 5% of everything: the portal's worst case
STATUSES = ["submitted", "changes_requested", "approved", "rejected", "withdrawn"]


@contextmanager
def database(engine: str) -> Iterator[str]:
    if engine == "sqlite":
        with tempfile.TemporaryDirectory() as folder:
            yield f"sqlite:///{Path(folder) / 'bench.db'}"
        return
    name = f"pitpass_bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"{POSTGRES_ADMIN_URL.rsplit('/', 1)[0]}/{name}"
    finally:
        with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def seed(app_context: Any, requests: int, clients: int) -> None:
    now = datetime.now(UTC)
    password_hash = hash_masked_password("bench")
    members = [
        {
            "id": n + 1,
            "email": f"m{n}@bench.example",
            "display_name": f"Member {n}",
            "customer_id": 100001 + n,
            "group_ids": [],
            "is_staff": n == 0,
            "is_disabled": False,
            "password_hash": password_hash,
            "email_verified_at": now,
            "created_at": now,
            "updated_at": now,
        }
        for n in range(MEMBERS)
    ]
    heavy = int(1 / HEAVY_DEVELOPER_SHARE)

    def owner(n: int) -> int:
        return 2 if n % heavy == 0 else 3 + n % (MEMBERS - 3)

    detail = {
        "client_type": "server-side",
        "flows": ["authorization_code"],
        "description": "bench",
        "developer_name": "Bench Inc.",
        "developer_url": "https://bench.example",
        "developer_email": "dev@bench.example",
        "redirect_uris": ["https://bench.example/cb"],
        "audiences": ["data-server"],
    }
    client_rows = [
        {
            "id": n + 1,
            "client_id": f"bench-client-{n}",
            "name": f"Bench Client {n}",
            "name_key": f"bench client {n}",
            "owner_id": owner(n),
            "is_disabled": False,
            "created_at": now - timedelta(minutes=n),
            "updated_at": now,
            **detail,
        }
        for n in range(clients)
    ]
    request_rows = [
        {
            "id": n + 1,
            "requester_id": owner(n),
            "client_pk": None,
            "is_change": False,
            "status": STATUSES[n % len(STATUSES)],
            "client_name": f"Bench Request {n}",
            "submitted_at": now - timedelta(hours=n % 500),
            "due_at": now + timedelta(days=10) - timedelta(hours=n % 500),
            "created_at": now,
            "updated_at": now,
            **detail,
        }
        for n in range(requests)
    ]
    with app_context.session() as db:
        db.execute(insert(Member), members)
        for start in range(0, clients, 2000):
            db.execute(insert(Client), client_rows[start : start + 2000])
        for start in range(0, requests, 2000):
            db.execute(insert(RegistrationRequest), request_rows[start : start + 2000])
    if app_context.engine.dialect.name == "postgresql":
        with app_context.engine.begin() as connection:
            for table in ("members", "clients", "registration_requests"):
                connection.exec_driver_sql(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                    f"(SELECT max(id) FROM {table}))"
                )
                connection.exec_driver_sql(f"ANALYZE {table}")


def signed_in(client: TestClient, app_context: Any, member_id: int) -> None:
    """Give the test client a session cookie without the emailed-code dance."""
    from pitpass.http.cookies import SESSION_COOKIE
    from pitpass.services.signin import Client as RequestOrigin
    from pitpass.services.signin import open_web_session

    with app_context.session() as db:
        member = db.get(Member, member_id)
        token = open_web_session(app_context, db, member, RequestOrigin(ip="127.0.0.1"))
    client.cookies.set(SESSION_COOKIE, token)


LISTS = {
    "staff queue page (HTML)": (1, "/console/requests"),
    "staff queue, page 40 (HTML)": (1, "/console/requests?page=40"),
    "staff clients page (HTML)": (1, "/console/clients"),
    "portal overview, heavy developer (HTML)": (2, "/portal"),
    "API staff queue": (1, "/api/v1/staff/requests"),
    "API staff clients": (1, "/api/v1/staff/clients"),
    "API my requests, heavy developer": (2, "/api/v1/requests"),
    "API my clients, heavy developer": (2, "/api/v1/clients"),
}


def time_lists(app: Any, app_context: Any, repeat: int) -> dict[str, dict[str, float]]:
    browsers = {}
    for member_id in (1, 2):
        browser = TestClient(app)
        signed_in(browser, app_context, member_id)
        browsers[member_id] = browser
    results = {}
    for name, (member_id, path) in LISTS.items():
        browser = browsers[member_id]
        assert browser.get(path).status_code == 200, path  # warm up, and prove it works
        samples = []
        for _ in range(repeat):
            started = time.perf_counter()
            response = browser.get(path)
            samples.append((time.perf_counter() - started) * 1000)
            assert response.status_code == 200
        samples.sort()
        results[name] = {
            "median_ms": round(statistics.median(samples), 2),
            "p95_ms": round(samples[int(len(samples) * 0.95) - 1], 2),
        }
    return results


def run(engines: list[str], requests: int, clients: int, repeat: int) -> dict[str, Any]:
    report: dict[str, Any] = {"requests": requests, "clients": clients, "repeat": repeat}
    for engine in engines:
        with database(engine) as url, tempfile.TemporaryDirectory() as data_dir:
            settings = load_settings(database_url=url, secret_key=SECRET_KEY, data_dir=data_dir)
            app = create_app(settings)
            app_context = app.state.context
            upgrade(app_context.engine)
            started = time.perf_counter()
            seed(app_context, requests, clients)
            seeded_s = round(time.perf_counter() - started, 1)
            with TestClient(app):
                lists = time_lists(app, app_context, repeat)
            report[engine] = {"seed_seconds": seeded_s, "lists": lists}
    return report
