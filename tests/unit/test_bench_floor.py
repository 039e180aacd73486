"""bench/floor (issue #14): the floor really does a code exchange, so that what it
reaches in the side-by-side run bounds what Pitpass's exchange could reach there."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import jwt
import pytest
from starlette.testclient import TestClient

FLOOR = Path(__file__).resolve().parents[2] / "bench" / "floor"
REDIRECT_URI = "http://127.0.0.1:9/cb"


@pytest.fixture
def floor(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[ModuleType, Any]]:
    database = tmp_path / "floor.db"
    monkeypatch.setenv("FLOOR_DB", str(database))
    monkeypatch.syspath_prepend(str(FLOOR))
    for name in ("app", "mint"):
        sys.modules.pop(name, None)
    mint = importlib.import_module("mint")
    mint.reset(database)
    app = importlib.import_module("app")  # connects to FLOOR_DB on import
    with TestClient(app.app) as client:
        yield mint, client
    app.database.close()
    for name in ("app", "mint"):
        sys.modules.pop(name, None)


def exchange(client: Any, code: str, verifier: str, redirect_uri: str = REDIRECT_URI) -> Any:
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "code_verifier": verifier,
        "redirect_uri": redirect_uri,
    }
    return client.post("/token", data=form)


def test_a_minted_code_is_exchanged_once_for_a_signed_token(floor: Any, tmp_path: Path) -> None:
    mint, client = floor
    (minted,) = mint.mint(tmp_path / "floor.db", 1, REDIRECT_URI)

    first = exchange(client, minted["code"], minted["code_verifier"])
    again = exchange(client, minted["code"], minted["code_verifier"])

    assert first.status_code == 200
    header = jwt.get_unverified_header(first.json()["access_token"])
    assert (header["alg"], header["typ"]) == ("ES256", "at+jwt")
    assert first.json()["refresh_token"]
    assert again.status_code == 400
    assert again.json() == {"error": "invalid_grant"}


@pytest.mark.parametrize("mistake", ["verifier", "redirect_uri"])
def test_a_wrong_verifier_or_redirect_uri_is_refused(
    floor: Any, tmp_path: Path, mistake: str
) -> None:
    mint, client = floor
    (minted,) = mint.mint(tmp_path / "floor.db", 1, REDIRECT_URI)
    verifier = minted["code_verifier"] + ("x" if mistake == "verifier" else "")
    redirect_uri = REDIRECT_URI + ("/other" if mistake == "redirect_uri" else "")

    answer = exchange(client, minted["code"], verifier, redirect_uri)

    assert answer.status_code == 400
    assert answer.json() == {"error": "invalid_grant"}
