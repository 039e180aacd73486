"""The harness's `mint_codes` command for the floor: `python mint.py N REDIRECT_URI` stores
N unspent codes with S256 challenges in FLOOR_DB and prints them as the harness wants,
a JSON list of {"code", "code_verifier"}. `python mint.py --reset` makes an empty database.
FLOOR_DB names the database: floor.db in the working folder unless set."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import secrets
import sqlite3
import sys
import uuid
from pathlib import Path

from pitpass.core.pkce import s256

SCHEMA = """
CREATE TABLE codes (code_hash TEXT PRIMARY KEY, session_id TEXT NOT NULL,
    challenge TEXT NOT NULL, redirect_uri TEXT NOT NULL, consumed_at INTEGER);
CREATE TABLE sessions (id TEXT PRIMARY KEY, created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL);
CREATE TABLE refresh_tokens (token_hash TEXT PRIMARY KEY,
    session_id TEXT NOT NULL REFERENCES sessions (id), expires_at INTEGER NOT NULL);
"""


def database_path() -> Path:
    return Path(os.environ.get("FLOOR_DB", "floor.db"))


def reset(path: Path) -> None:
    for stale in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
        stale.unlink(missing_ok=True)
    with contextlib.closing(sqlite3.connect(path)) as database:
        database.execute("PRAGMA journal_mode=WAL")
        database.executescript(SCHEMA)


def mint(path: Path, count: int, redirect_uri: str) -> list[dict[str, str]]:
    minted, rows = [], []
    for _ in range(count):
        code, verifier = secrets.token_urlsafe(32), secrets.token_urlsafe(48)
        code_hash = hashlib.sha256(code.encode()).hexdigest()
        rows.append((code_hash, str(uuid.uuid4()), s256(verifier), redirect_uri))
        minted.append({"code": code, "code_verifier": verifier})
    with contextlib.closing(sqlite3.connect(path)) as database, database:
        database.executemany(
            "INSERT INTO codes (code_hash, session_id, challenge, redirect_uri) "
            "VALUES (?, ?, ?, ?)",
            rows,
        )
    return minted


if __name__ == "__main__":
    if sys.argv[1:] == ["--reset"]:
        reset(database_path())
    else:
        json.dump(mint(database_path(), int(sys.argv[1]), sys.argv[2]), sys.stdout)
