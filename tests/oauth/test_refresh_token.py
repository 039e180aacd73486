"""The refresh_token grant (oauth/grants/refresh_token.py): RFC 6749 §6, rotation and
reuse detection per RFC 9700 §4.14 (a reused token signs the session out), and the
per-client grace period for a quick retry (PRODUCT.md §4), on both engines."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import select, update
from starlette.testclient import TestClient

from pitpass.db.models import utcnow
from pitpass.services import clients as clients_service
from pitpass.services.members import find_by_email
from tests.conftest import Site
from tests.e2e.oauth_world import (
    World,
    expect_error,
    fresh,
    masked,
    redeem,
)
from tests.oauth import in_process as here
from tests.support import Backend


class TestRFC6749Refresh:
    def test_refresh_is_single_use_and_reuse_revokes_the_session(self, world: World) -> None:
        client_id, secret, _e, browser = fresh(world)
        code = world.authorization_code(browser, client_id)["code"][0]
        tokens = redeem(world, client_id, secret, code).json()
        auth = {"client_id": client_id, "client_secret": masked(secret, client_id)}
        rotated = world.token(
            grant_type="refresh_token", refresh_token=tokens["refresh_token"], **auth
        )
        assert rotated.status_code == 200
        assert rotated.json()["refresh_token"] != tokens["refresh_token"]
        newer = world.token(
            grant_type="refresh_token", refresh_token=rotated.json()["refresh_token"], **auth
        )
        assert newer.status_code == 200
        # The first token again, after its successor was used: reuse.
        replay = world.token(
            grant_type="refresh_token", refresh_token=tokens["refresh_token"], **auth
        )
        expect_error(replay, "invalid_grant", 400)
        # The legitimate newest token dies with the session (RFC 9700 §4.14).
        newest = world.token(
            grant_type="refresh_token", refresh_token=newer.json()["refresh_token"], **auth
        )
        expect_error(newest, "invalid_grant", 400)


def test_a_racer_that_read_the_clock_first_gets_no_grace(site: Site) -> None:
    """Regression: with grace 0, a token used 'in the future' of this request is still reuse."""
    from pitpass.db.models import RefreshToken

    client_id, secret, member_id = here.issue(site)
    browser = site.browser()
    tokens = here.redeem(
        browser, client_id, secret, here.mint_code(site, client_id, member_id)
    ).json()
    with site.context.session() as db:
        db.execute(update(RefreshToken).values(used_at=utcnow() + timedelta(seconds=1)))
    assert here.refresh(browser, client_id, secret, tokens["refresh_token"]).status_code == 400


def _set_grace(site: Site, client_id: str, seconds: int) -> None:
    with site.context.session() as db:
        client = clients_service.by_client_id(db, client_id)
        actor = find_by_email(db, "staff@example.com")
        assert client is not None and actor is not None
        clients_service.set_lifetimes(db, client, actor, {"refresh_grace_seconds": seconds})
    site.app.state.oauth.store.forget_cached_clients()


def test_grace_period_forgives_a_quick_retry(site: Site) -> None:
    client_id, secret, member_id = here.issue(site)
    _set_grace(site, client_id, 30)
    browser = site.browser()
    tokens = here.redeem(
        browser, client_id, secret, here.mint_code(site, client_id, member_id)
    ).json()
    first = here.refresh(browser, client_id, secret, tokens["refresh_token"])
    retry = here.refresh(browser, client_id, secret, tokens["refresh_token"])
    assert first.status_code == 200 and retry.status_code == 200
    assert (
        here.refresh(browser, client_id, secret, first.json()["refresh_token"]).status_code == 200
    )


def _session_with_refresh(site: Site) -> tuple[TestClient, str, str, str]:
    client_id, secret, member_id = here.issue(site)
    browser = site.browser()
    tokens = here.redeem(
        browser, client_id, secret, here.mint_code(site, client_id, member_id)
    ).json()
    return browser, client_id, secret, tokens["refresh_token"]


def test_a_retry_of_a_rotation_never_answered_keeps_the_chain(site: Site) -> None:
    """Issue #11: the answer to a rotation was lost (a timeout, kill -9); the client retries
    the same token once, as the reference's clients do. Grace is 0, yet the chain lives."""
    browser, client_id, secret, token = _session_with_refresh(site)
    lost = here.refresh(browser, client_id, secret, token)
    assert lost.status_code == 200  # committed; its client never read it
    retry = here.refresh(browser, client_id, secret, token)
    assert retry.status_code == 200, retry.text
    assert retry.json()["refresh_token"] != lost.json()["refresh_token"]
    onward = here.refresh(browser, client_id, secret, retry.json()["refresh_token"])
    assert onward.status_code == 200


def test_the_successor_a_retry_retired_is_reuse(site: Site) -> None:
    """The trade-off's safety net: had the lost answer reached someone (a thief replaying
    the old token first), the retired successor's use signs the whole session out."""
    browser, client_id, secret, token = _session_with_refresh(site)
    lost = here.refresh(browser, client_id, secret, token).json()["refresh_token"]
    retried = here.refresh(browser, client_id, secret, token).json()["refresh_token"]
    assert here.refresh(browser, client_id, secret, lost).status_code == 400
    assert here.refresh(browser, client_id, secret, retried).status_code == 400


def test_a_second_retry_is_reuse(site: Site) -> None:
    """Of two retries only one succeeds (the reference retries once): the second finds the
    successor spent by the first and is judged reuse."""
    browser, client_id, secret, token = _session_with_refresh(site)
    assert here.refresh(browser, client_id, secret, token).status_code == 200
    retried = here.refresh(browser, client_id, secret, token)
    assert retried.status_code == 200
    again = here.refresh(browser, client_id, secret, token)
    assert again.status_code == 400
    assert (
        here.refresh(browser, client_id, secret, retried.json()["refresh_token"]).status_code == 400
    )


def test_without_a_retry_window_a_replay_is_reuse(site_factory: Any, backend: Backend) -> None:
    site = site_factory(backend, refresh_retry_seconds=0)
    browser, client_id, secret, token = _session_with_refresh(site)
    rotated = here.refresh(browser, client_id, secret, token)
    assert rotated.status_code == 200
    assert here.refresh(browser, client_id, secret, token).status_code == 400
    assert (
        here.refresh(browser, client_id, secret, rotated.json()["refresh_token"]).status_code == 400
    )


def test_past_its_grace_period_a_replay_is_reuse_not_a_retry(site: Site) -> None:
    """Review of issue #11: a client with a grace period has its retries covered by it
    alone. Past it, the spent token is reuse even though its successor is unused;
    before, the retry rule took it and handed a second live chain to whoever replayed."""
    from pitpass.db.models import RefreshToken

    browser, client_id, secret, token = _session_with_refresh(site)
    _set_grace(site, client_id, 30)
    successor = here.refresh(browser, client_id, secret, token).json()["refresh_token"]
    with site.context.session() as db:  # the rotation happened 40 s ago
        for row in db.scalars(select(RefreshToken)):
            row.created_at -= timedelta(seconds=40)
            if row.used_at is not None:
                row.used_at -= timedelta(seconds=40)
    assert here.refresh(browser, client_id, secret, token).status_code == 400
    assert here.refresh(browser, client_id, secret, successor).status_code == 400


def test_a_retired_successor_is_reuse_even_inside_a_grace_period(site: Site) -> None:
    """Review of issue #11: a successor a retry retired is spent; a grace period granted
    afterwards must not make it usable again (it would leave two live chains)."""
    browser, client_id, secret, token = _session_with_refresh(site)
    lost = here.refresh(browser, client_id, secret, token).json()["refresh_token"]
    retried = here.refresh(browser, client_id, secret, token).json()["refresh_token"]
    _set_grace(site, client_id, 30)
    assert here.refresh(browser, client_id, secret, lost).status_code == 400
    assert here.refresh(browser, client_id, secret, retried).status_code == 400
