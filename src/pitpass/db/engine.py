"""Engines and sessions for both supported databases.

Operators give plain URLs (`sqlite:///…`, `postgresql://…`); which driver
serves them is decided here, in one place.
"""

from __future__ import annotations

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


def _tune_sqlite(dbapi_connection: sqlite3.Connection, _record: Any) -> None:
    # WAL lets readers work while one writer commits; busy_timeout makes a
    # writer wait for the lock instead of failing at once.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()


def make_engine(plain_url: str) -> Engine:
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
        event.listen(engine, "connect", _tune_sqlite)
        return engine
    return create_engine(driver_url(plain_url), pool_size=16, max_overflow=16, pool_pre_ping=True)


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)
