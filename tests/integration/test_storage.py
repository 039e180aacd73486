"""The protocol's storage on both engines (pitpass/storage/): each engine writes with its
own SQL, so each rule that lives in that SQL is proved on SQLite and on PostgreSQL."""

from __future__ import annotations

import asyncio
import re
import sqlite3
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any, TypeVar

import jwt
import pytest
from sqlalchemy import select

from pitpass.core import policy
from pitpass.core.policy import SignOutReason
from pitpass.db.models import (
    AccessListEntry,
    AuthorizationCode,
    RememberedBrowser,
    WebSession,
    utcnow,
)
from pitpass.storage import TokenStore
from pitpass.storage.records import (
    NewRefreshToken,
    NewSession,
    SessionActivity,
    SessionsToSignOut,
)
from tests.conftest import Site
from tests.oauth.in_process import (
    CALLBACK,
    issue,
    mint_code,
    new_client,
    password_limited,
    redeem,
    refresh,
)

T = TypeVar("T")


def on_store(site: Site, work: Callable[[TokenStore, Any], Awaitable[T]]) -> T:
    """Run `work(store, db)` on a connection of the site's store, in a loop of its own."""
    store: TokenStore = site.app.state.oauth.store

    async def run() -> T:
        try:
            async with store.connection() as db:
                return await work(store, db)
        finally:
            await store.close()

    return asyncio.run(run())


def session_of(access_token: str) -> str:
    return str(jwt.decode(access_token, options={"verify_signature": False})["session_id"])


def test_a_refresh_asking_for_more_scope_keeps_the_token(site: Site) -> None:
    client_id, secret, member_id = issue(site)
    browser = site.browser()
    tokens = redeem(browser, client_id, secret, mint_code(site, client_id, member_id)).json()
    wider = refresh(
        browser, client_id, secret, tokens["refresh_token"], scope="iracing.auth iracing.profile"
    )
    assert wider.status_code == 400 and wider.json()["error"] == "invalid_scope"
    assert wider.json()["error_description"] == (
        "scope iracing.profile was not granted to this session"
    )
    # RFC 6749 §6: the refusal spent nothing; the same token still refreshes.
    assert refresh(browser, client_id, secret, tokens["refresh_token"]).status_code == 200


def test_a_rotation_is_exactly_once_and_loses_to_a_sign_out(site: Site) -> None:
    client_id, secret, member_id = issue(site)
    browser = site.browser()
    tokens = redeem(browser, client_id, secret, mint_code(site, client_id, member_id)).json()
    runtime = site.app.state.oauth
    spent_hash = runtime.refresh_hash(tokens["refresh_token"])
    session_id = session_of(tokens["access_token"])
    now = utcnow()
    activity = SessionActivity(now, now + timedelta(days=1), "203.0.113.9", "test agent")

    def fresh(name: str) -> NewRefreshToken:
        return NewRefreshToken(runtime.refresh_hash(name), session_id, now, now + timedelta(1))

    async def rotate_twice(store: TokenStore, db: Any) -> tuple[bool, bool]:
        first = await store.rotate_refresh_token(db, spent_hash, fresh("a"), activity)
        second = await store.rotate_refresh_token(db, spent_hash, fresh("b"), activity)
        return first, second

    assert on_store(site, rotate_twice) == (True, False)

    async def sign_out_then_rotate(store: TokenStore, db: Any) -> tuple[bool, bool, Any]:
        await store.sign_out(
            db, SessionsToSignOut(session_id=session_id), SignOutReason.RFC7009, now
        )
        spend = await store.rotate_refresh_token(
            db, runtime.refresh_hash("a"), fresh("c"), activity
        )
        reissue = await store.rotate_refresh_token(db, None, fresh("d"), activity)
        return spend, reissue, await store.refresh_state(db, runtime.refresh_hash("a"))

    spend, reissue, state = on_store(site, sign_out_then_rotate)
    assert (spend, reissue) == (False, False)
    assert state is not None and state.used_at is None and state.session.revoked
    assert on_store(site, lambda store, db: store.refresh_state(db, fresh("c").token_hash)) is None


def test_an_identity_only_grant_opens_a_session_without_refresh_token(site: Site) -> None:
    client_id, secret, member_id = issue(site)
    code = mint_code(site, client_id, member_id)
    with site.context.session() as db:
        row = db.get(AuthorizationCode, site.app.state.oauth.code_hash(code))
        assert row is not None
        row.scope = "iracing.profile"
    browser = site.browser()
    body = redeem(browser, client_id, secret, code).json()
    assert "refresh_token" not in body
    profile = browser.get(
        "/oauth2/iracing/profile", headers={"Authorization": f"Bearer {body['access_token']}"}
    )
    assert profile.status_code == 200 and profile.json()["iracing_name"] == "Test Driver"


def test_a_code_is_redeemed_once_with_its_session(site: Site) -> None:
    client_id, _secret, member_id = issue(site)
    code_hash = site.app.state.oauth.code_hash(mint_code(site, client_id, member_id))
    now = utcnow()

    async def redeem_twice(store: TokenStore, db: Any) -> tuple[Any, bool, bool, Any, Any]:
        state = await store.code_state(db, code_hash)
        opening = NewSession.from_code(state.code, now, now + timedelta(hours=1))
        first = await store.redeem_code(db, code_hash, opening, None)
        second = await store.redeem_code(db, code_hash, opening, None)
        after = await store.code_state(db, code_hash)
        return state, first, second, after, await store.session(db, state.code.session_id)

    state, first, second, after, session = on_store(site, redeem_twice)
    assert not state.consumed and state.code.redirect_uri == CALLBACK
    assert state.member is not None and state.member.display_name == "Test Driver"
    assert (first, second) == (True, False)
    assert after.consumed and session is not None and session.member_id == member_id


def test_a_failed_redemption_spends_the_code(site: Site) -> None:
    client_id, secret, member_id = issue(site)
    code = mint_code(site, client_id, member_id)
    browser = site.browser()
    wrong = redeem(browser, client_id, secret, code, redirect_uri="https://app.example/elsewhere")
    assert wrong.status_code == 400 and "redirect_uri" in wrong.json()["error_description"]
    # One try per code: the right redirect_uri after a wrong one is a replay.
    retry = redeem(browser, client_id, secret, code)
    assert retry.status_code == 400
    assert retry.json()["error_description"].startswith("authorization code already used")


def test_introspecting_a_refresh_token_reads_its_state(site: Site) -> None:
    client_id, secret, member_id = issue(site)
    browser = site.browser()
    tokens = redeem(browser, client_id, secret, mint_code(site, client_id, member_id)).json()

    def introspect(token: str) -> Any:
        form = {"client_id": client_id, "client_secret": secret, "token": token}
        return browser.post("/oauth2/introspect", data=form).json()

    live = introspect(tokens["refresh_token"])
    assert live["active"] is True and live["token_type"] == "refresh_token"
    assert live["session_id"] == session_of(tokens["access_token"])
    assert live["exp"] > live["iat"]
    assert refresh(browser, client_id, secret, tokens["refresh_token"]).status_code == 200
    assert introspect(tokens["refresh_token"]) == {"active": False}  # spent by the refresh


def test_a_password_limited_token_carries_the_member_found_by_email(site: Site) -> None:
    """The grant builds the token's session from the member it read by email (no re-read)."""
    staff = site.add_member("staff@example.com", staff=True)
    member = site.add_member(
        "racer@example.com", name="Ana Racer", customer_id=424242, group_ids=[7, 9]
    )
    client_id, secret, client_pk = new_client(site, "Data Tool", ["password_limited"])
    with site.context.session() as db:
        db.add(
            AccessListEntry(
                client_pk=client_pk, member_id=member.id, added_by_id=staff.id, accepted_at=utcnow()
            )
        )
    granted = password_limited(site.browser(), client_id, secret, "racer@example.com")
    assert granted.status_code == 200, granted.text
    claims = jwt.decode(granted.json()["access_token"], options={"verify_signature": False})
    assert claims["sub"] == "424242" and claims["iracing_cust_id"] == 424242
    assert claims["iracing_group_ids"] == [7, 9]
    session = on_store(site, lambda store, db: store.session(db, claims["session_id"]))
    assert session is not None and session.member_id == member.id
    assert policy.session_is_live(session, utcnow())


def test_rfc7009_revocation_is_for_the_client_the_token_was_issued_to(site: Site) -> None:
    client_id, secret, member_id = issue(site)
    other_id, other_secret, _pk = new_client(site, "Other Client", ["authorization_code"])
    browser = site.browser()
    tokens = redeem(browser, client_id, secret, mint_code(site, client_id, member_id)).json()
    session_id = session_of(tokens["access_token"])

    def revoke(as_client: str, as_secret: str) -> Any:
        form = {"client_id": as_client, "client_secret": as_secret}
        return browser.post("/oauth2/revoke", data={"token": tokens["refresh_token"], **form})

    stolen = revoke(other_id, other_secret)
    assert stolen.status_code == 400 and stolen.json()["error"] == "invalid_grant"
    assert not on_store(site, lambda store, db: store.session(db, session_id)).revoked
    assert revoke(client_id, secret).status_code == 200
    assert on_store(site, lambda store, db: store.session(db, session_id)).revoked


def test_revoke_current_can_forget_the_browser_the_member_signed_in_with(site: Site) -> None:
    client_id, secret, member_id = issue(site)
    code = mint_code(site, client_id, member_id)
    with site.context.session() as db:
        remembered = RememberedBrowser(
            token_hash="remembered", member_id=member_id, expires_at=utcnow() + timedelta(days=30)
        )
        db.add(remembered)
        db.flush()
        web = WebSession(
            token_hash="web",
            member_id=member_id,
            expires_at=utcnow() + timedelta(days=1),
            remembered_browser_id=remembered.id,
        )
        db.add(web)
        db.flush()
        row = db.get(AuthorizationCode, site.app.state.oauth.code_hash(code))
        assert row is not None
        row.web_session_id = web.id
    browser = site.browser()
    tokens = redeem(browser, client_id, secret, code).json()
    bearer = {"Authorization": f"Bearer {tokens['access_token']}"}

    def remembered_revoked() -> bool:
        with site.context.session() as db:
            return db.scalar(select(RememberedBrowser.revoked_at)) is not None

    unclear = browser.post("/oauth2/revoke/current", data={"forget_browser": "yes"}, headers=bearer)
    assert unclear.status_code == 400 and "true or false" in unclear.json()["error_description"]
    assert not remembered_revoked()
    done = browser.post("/oauth2/revoke/current", data={"forget_browser": "true"}, headers=bearer)
    assert done.status_code == 200 and done.content == b""
    assert remembered_revoked()
    session_id = session_of(tokens["access_token"])
    assert on_store(site, lambda store, db: store.session(db, session_id)).revoked


# What SQLite's planner is asked about, and a plan line that reads a whole table or index.
PLANNED = {"SELECT", "UPDATE", "INSERT", "DELETE", "WITH"}
TABLE_SCAN = re.compile(r"SCAN (?!CONSTANT ROW)")  # a full read of a table or an index


def test_every_protocol_statement_finds_its_rows_by_an_index(
    sqlite_site: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The token, introspection and revocation endpoints' statements, as SQLite runs them,
    read no table from end to end: each costs the same with a million sessions as with
    ten. (Refreshing once listed every live session: `IN (SELECT id …)`, issue #14.)"""
    site = sqlite_site
    store = site.app.state.oauth.store
    executed: list[str] = []
    cursor_of = store._cursor

    def traced_cursor() -> sqlite3.Cursor:
        cursor: sqlite3.Cursor = cursor_of()
        cursor.connection.set_trace_callback(executed.append)
        return cursor

    monkeypatch.setattr(store, "_cursor", traced_cursor)
    client_id, secret, member_id = issue(site)
    tool_id, tool_secret, client_pk = new_client(site, "Data Tool", ["password_limited"])
    with site.context.session() as db:
        db.add(AccessListEntry(client_pk=client_pk, member_id=member_id, accepted_at=utcnow()))
    browser = site.browser()
    tokens = redeem(browser, client_id, secret, mint_code(site, client_id, member_id)).json()
    fresh = refresh(browser, client_id, secret, tokens["refresh_token"]).json()
    form = {"client_id": client_id, "client_secret": secret}
    for token in (fresh["access_token"], fresh["refresh_token"]):
        assert browser.post("/oauth2/introspect", data={"token": token, **form}).status_code == 200
    assert refresh(browser, client_id, secret, fresh["refresh_token"]).status_code == 200
    # The first token again, its successor used: a reuse, which ends the session.
    reused = refresh(browser, client_id, secret, tokens["refresh_token"])
    assert reused.json()["error"] == "invalid_grant"
    granted = password_limited(browser, tool_id, tool_secret, "ana@example.com")
    assert granted.status_code == 200, granted.text
    revoked = browser.post(
        "/oauth2/revoke",
        data={
            "token": granted.json()["refresh_token"],
            "client_id": tool_id,
            "client_secret": tool_secret,
        },
    )
    assert revoked.status_code == 200
    statements = {s for s in executed if s.split(None, 1)[0].upper() in PLANNED}
    assert len(statements) >= 10  # every kind of statement above was seen
    planner = sqlite3.connect(site.context.settings.database_url.removeprefix("sqlite:///"))
    try:
        scans = {
            statement: [row[3] for row in planner.execute(f"EXPLAIN QUERY PLAN {statement}")]
            for statement in statements
        }
    finally:
        planner.close()
    assert {s: plan for s, plan in scans.items() if any(TABLE_SCAN.match(p) for p in plan)} == {}
