"""Signing keys over time (issue #11): verification keys held in memory and refreshed off
the event loop (defect 9), and keys rotated on a schedule (Deliver 5). Every clock here is
controlled; nothing sleeps."""

from __future__ import annotations

import secrets
import threading
import time
import uuid
from datetime import datetime, timedelta
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy import func, select

from pitpass.db.models import SigningKey, utcnow
from pitpass.oauth.access_tokens import KEY_REFRESH_SECONDS, TokenSigner, jwks_document
from pitpass.services import keys
from tests.conftest import Site
from tests.support import TEST_SECRET_KEY, run_cli


class Clock:
    """A monotonic clock the test moves by hand."""

    def __init__(self, start: float) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now


def count_loads(signer: TokenSigner, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    loads = [0]
    real = signer._load

    def counted() -> Any:
        loads[0] += 1
        return real()

    monkeypatch.setattr(signer, "_load", counted)
    return loads


def junk_token(issuer: str) -> str:
    """Well formed, signed, but by a key this server never had, under a random kid."""
    claims = {"iss": issuer, "exp": int(time.time()) + 600, "session_id": str(uuid.uuid4())}
    headers = {"typ": "at+jwt", "kid": secrets.token_urlsafe(32)}
    return jwt.encode(claims, ec.generate_private_key(ec.SECP256R1()), "ES256", headers)


def test_unknown_kids_cost_a_dictionary_miss_and_at_most_one_reload_per_interval(
    sqlite_site: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    signer: TokenSigner = sqlite_site.app.state.oauth.signer
    clock = Clock(time.monotonic() + KEY_REFRESH_SECONDS + 1)  # the startup load is stale
    signer.clock = clock
    loads = count_loads(signer, monkeypatch)
    browser = sqlite_site.browser()
    issuer = sqlite_site.context.settings.issuer
    for _ in range(40):
        answer = browser.get(
            "/oauth2/sessions", headers={"Authorization": f"Bearer {junk_token(issuer)}"}
        )
        assert answer.status_code == 401
        assert answer.json()["error"] == "invalid_token"
    signer.wait_for_refresh()
    assert loads[0] == 1  # the first junk token started one background reload; no more
    clock.now += KEY_REFRESH_SECONDS / 2
    assert signer.verify(junk_token(issuer), utcnow()) is None
    signer.wait_for_refresh()
    assert loads[0] == 1
    clock.now += KEY_REFRESH_SECONDS
    assert signer.verify(junk_token(issuer), utcnow()) is None
    signer.wait_for_refresh()
    assert loads[0] == 2


def test_a_key_made_by_another_process_verifies_within_one_interval(
    sqlite_site: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    signer: TokenSigner = sqlite_site.app.state.oauth.signer
    clock = Clock(time.monotonic())
    signer.clock = clock
    signer.reload()
    settings = sqlite_site.context.settings
    env = {"PITPASS_DATABASE_URL": settings.database_url, "PITPASS_SECRET_KEY": TEST_SECRET_KEY}
    rotated = run_cli(env, "keys", "rotate")  # another process, same database
    assert rotated.returncode == 0, rotated.stderr
    with sqlite_site.context.session() as db:
        new = keys.active_key(db)
        assert new is not None
        private = keys.private_key(sqlite_site.context.keyring, new).private_key
    claims = {"iss": settings.issuer, "exp": int(time.time()) + 600, "session_id": "s"}
    token = jwt.encode(claims, private, "ES256", {"typ": "at+jwt", "kid": new.kid})
    assert signer.verify(token, utcnow()) is None  # not yet known, and no reload yet
    signer.wait_for_refresh()
    clock.now += KEY_REFRESH_SECONDS
    assert signer.verify(token, utcnow()) is None  # unknown: starts the reload
    signer.wait_for_refresh()
    verified = signer.verify(token, utcnow())
    assert verified is not None and verified["session_id"] == "s"


def test_the_schedule_publishes_the_next_key_ahead_and_drops_the_retired_one(site: Site) -> None:
    keyring, days = site.context.keyring, 90
    with site.context.session() as db:
        first = keys.active_key(db)
        assert first is not None
        due = first.created_at + timedelta(days=days)
        assert keys.rotate_if_due(db, keyring, days, due - timedelta(minutes=1)) is None
        new = keys.rotate_if_due(db, keyring, days, due)
        assert new is not None and new.created_at == due + keys.PUBLISH_AHEAD
        assert keys.rotate_if_due(db, keyring, days, due) is None  # once per due date
        switch = new.created_at

        def published(at: datetime) -> set[str]:
            return {k["kid"] for k in jwks_document(db, at)["keys"]}

        def signing(at: datetime) -> str | None:
            active = keys.active_key(db, at)
            return active.kid if active else None

        assert published(due) == {first.kid, new.kid}  # published before it signs
        assert signing(due) == first.kid
        assert signing(switch) == new.kid
        gone = switch + keys.RETIRED_PUBLISHED_FOR
        assert published(gone - timedelta(seconds=1)) == {first.kid, new.kid}
        assert published(gone) == {new.kid}


def test_a_manual_rotation_inside_the_publish_ahead_hour_keeps_the_schedule(site: Site) -> None:
    """Review of issue #11: `keys rotate` retires the scheduled successor, whose
    `created_at` is in the future; the schedule must go on from the manual key (before,
    the retired successor stayed "newest" and no rotation ever happened again)."""
    keyring, days = site.context.keyring, 90
    with site.context.session() as db:
        scheduled = keys.rotate_if_due(db, keyring, 0, utcnow())  # due at once: schedule
        assert scheduled is not None and scheduled.created_at > utcnow()
        manual, retired = keys.rotate(db, keyring, "test")
        assert scheduled.kid in retired
        later = manual.created_at + timedelta(days=days)
        assert not keys.rotation_due(keys.all_keys(db), later - timedelta(minutes=1), days)
        assert keys.rotation_due(keys.all_keys(db), later, days)
        successor = keys.rotate_if_due(db, keyring, days, later)
        assert successor is not None and successor.kid not in {manual.kid, scheduled.kid}


def test_the_signer_switches_to_the_scheduled_key_at_its_time(sqlite_site: Site) -> None:
    signer: TokenSigner = sqlite_site.app.state.oauth.signer
    with sqlite_site.context.session() as db:
        first = keys.active_key(db)
        assert first is not None
    due = first.created_at + timedelta(days=sqlite_site.context.settings.signing_key_days)
    signer.wall_clock = lambda: due
    signer.reload()  # a refresh finds the key due and schedules its successor
    state = signer.state()
    assert state.signer_at(due.timestamp())[0] == first.kid
    successor = state.signer_at((due + keys.PUBLISH_AHEAD).timestamp())[0]
    assert successor != first.kid and successor in state.public_by_kid


def test_processes_rotating_at_once_make_exactly_one_key(site: Site) -> None:
    with site.context.session() as db:
        first = keys.active_key(db)
        assert first is not None
    due = first.created_at + timedelta(days=90)
    start = threading.Barrier(4)
    errors: list[BaseException] = []

    def rotate() -> None:
        start.wait()
        try:
            with site.context.session() as db:
                keys.rotate_if_due(db, site.context.keyring, 90, due)
        except BaseException as error:  # reported below
            errors.append(error)

    threads = [threading.Thread(target=rotate) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    with site.context.session() as db:
        assert db.scalar(select(func.count()).select_from(SigningKey)) == 2


def test_signing_key_days_is_validated() -> None:
    from pitpass.config import ConfigError, load_settings

    with pytest.raises(ConfigError, match="PITPASS_SIGNING_KEY_DAYS"):
        load_settings(signing_key_days=0)
