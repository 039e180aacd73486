"""bench/floor (issue #14): the floor really does a code exchange (a committed spend,
session and refresh token, a real ES256 signature), so that what it reaches in the
side-by-side run bounds what Pitpass's exchange could reach there."""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import sqlite3
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import jwt
import pytest
from starlette.testclient import TestClient

FLOOR = Path(__file__).resolve().parents[2] / "bench" / "floor"
FLOOR_MODULES = ("app", "mint")  # top-level names, as the harness runs them
REDIRECT_URI = "http://127.0.0.1:9/cb"


@contextlib.contextmanager
def floor_modules() -> Iterator[None]:
    """Import the floor's modules afresh, and leave sys.modules as it was."""
    before = {name: sys.modules.pop(name) for name in FLOOR_MODULES if name in sys.modules}
    try:
        yield
    finally:
        for name in FLOOR_MODULES:
            sys.modules.pop(name, None)
        sys.modules.update(before)


@pytest.fixture
def floor(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[ModuleType, ModuleType, Any]]:
    monkeypatch.setenv("FLOOR_DB", str(tmp_path / "floor.db"))
    monkeypatch.syspath_prepend(str(FLOOR))
    with floor_modules():
        mint = importlib.import_module("mint")
        mint.reset(mint.database_path())
        app = importlib.import_module("app")  # connects to FLOOR_DB on import
        try:
            with TestClient(app.app) as client:
                yield app, mint, client
        finally:
            app.database.close()


def minted_code(mint: ModuleType) -> dict[str, str]:
    (minted,) = mint.mint(mint.database_path(), 1, REDIRECT_URI)
    return dict(minted)


def exchange(client: Any, code: str, verifier: str, redirect_uri: str = REDIRECT_URI) -> Any:
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "code_verifier": verifier,
        "redirect_uri": redirect_uri,
    }
    return client.post("/token", data=form)


def committed(mint: ModuleType, query: str, *params: str) -> list[tuple[Any, ...]]:
    """What another connection sees: only what the floor committed."""
    with contextlib.closing(sqlite3.connect(mint.database_path())) as other:
        return list(other.execute(query, params))


def test_a_code_is_exchanged_once_for_committed_rows_and_a_signed_token(floor: Any) -> None:
    app, mint, client = floor
    minted = minted_code(mint)

    first = exchange(client, minted["code"], minted["code_verifier"])
    again = exchange(client, minted["code"], minted["code_verifier"])

    assert first.status_code == 200
    assert first.headers["cache-control"] == "no-store"
    tokens = first.json()
    claims = jwt.decode(
        tokens["access_token"],
        app.SIGNING_KEY.public_key(),
        algorithms=["ES256"],
        audience="data-server",
    )
    assert claims["exp"] - claims["iat"] == app.ACCESS_TOKEN_SECONDS
    code_hash = hashlib.sha256(minted["code"].encode()).hexdigest()
    ((consumed_at, session_id),) = committed(
        mint, "SELECT consumed_at, session_id FROM codes WHERE code_hash = ?", code_hash
    )
    assert consumed_at is not None
    assert claims["session_id"] == session_id
    assert committed(mint, "SELECT id FROM sessions") == [(session_id,)]
    refresh_hash = hashlib.sha256(tokens["refresh_token"].encode()).hexdigest()
    assert committed(mint, "SELECT token_hash, session_id FROM refresh_tokens") == [
        (refresh_hash, session_id)
    ]
    assert again.status_code == 400
    assert again.json() == {"error": "invalid_grant"}


@pytest.mark.parametrize("mistake", ["verifier", "redirect_uri"])
def test_a_wrong_verifier_or_redirect_uri_is_refused_and_spends_nothing(
    floor: Any, mistake: str
) -> None:
    _app, mint, client = floor
    minted = minted_code(mint)
    verifier = minted["code_verifier"] + ("x" if mistake == "verifier" else "")
    redirect_uri = REDIRECT_URI + ("/other" if mistake == "redirect_uri" else "")

    answer = exchange(client, minted["code"], verifier, redirect_uri)

    assert answer.status_code == 400
    assert answer.json() == {"error": "invalid_grant"}
    assert committed(mint, "SELECT count(*) FROM sessions") == [(0,)]
