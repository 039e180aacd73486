"""Engines and sessions for both supported databases.

Operators give plain URLs (`sqlite:///…`, `postgresql://…`); which driver
serves them is decided here, in one place.
"""

from __future__ import annotations

import functools
import math
import sqlite3
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker


def driver_url(plain_url: str) -> str:
    url = make_url(plain_url)
    if url.drivername in ("postgresql", "postgres"):
        url = url.set(drivername="postgresql+psycopg")
    return url.render_as_string(hide_password=False)


def is_sqlite(plain_url: str) -> bool:
    return make_url(plain_url).get_backend_name() == "sqlite"


def sqlite_path(plain_url: str) -> Path | None:
    database = make_url(plain_url).database
    if not database or database == ":memory:":
        return None
    return Path(database)


DEFAULT_TIMEOUT_SECONDS = 5.0  # config.Settings.storage_timeout_seconds


def _tune_sqlite(
    dbapi_connection: sqlite3.Connection, _record: Any, busy_timeout_ms: int = 10000
) -> None:
    # WAL lets readers work while one writer commits; busy_timeout makes a
    # writer wait for the lock instead of failing at once (then: 503, storage/store.py).
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
    cursor.close()


def make_engine(plain_url: str, timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS) -> Engine:
    """The engine for `plain_url`; no statement waits longer than `timeout_seconds`
    for a lock (SQLite), a connection or the server's answer (PostgreSQL)."""
    milliseconds = max(1, round(timeout_seconds * 1000))
    if is_sqlite(plain_url):
        path = sqlite_path(plain_url)
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            driver_url(plain_url),
            connect_args={"check_same_thread": False},
            pool_size=16,
            max_overflow=16,
        )
        event.listen(
            engine, "connect", functools.partial(_tune_sqlite, busy_timeout_ms=milliseconds)
        )
        return engine
    return create_engine(
        driver_url(plain_url),
        pool_size=16,
        max_overflow=16,
        pool_pre_ping=True,  # a connection cut by an outage is replaced, not handed out
        pool_timeout=timeout_seconds,
        connect_args={
            "connect_timeout": max(1, math.ceil(timeout_seconds)),  # libpq: whole seconds
            "options": f"-c statement_timeout={milliseconds}",
        },
    )


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)
