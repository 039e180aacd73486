"""Discovery (oauth/discovery.py): RFC 8414 §3 metadata at both well-known paths,
advertising only what works; the JWKS (RFC 7517) keeps a retired key published until the
tokens it signed expire."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import update

from pitpass.db.models import SigningKey, utcnow
from pitpass.services import keys
from tests.conftest import Site
from tests.e2e.oauth_world import World
from tests.oauth import in_process as here


class TestRFC8414:
    def test_metadata_at_both_paths_advertises_only_what_works(self, world: World) -> None:
        browser = world.browser()
        first = browser.get("/.well-known/oauth-authorization-server/oauth2").json()
        second = browser.get("/oauth2/.well-known/oauth-authorization-server").json()
        assert first == second
        assert first["issuer"] == world.issuer
        assert first["grant_types_supported"] == [
            "authorization_code",
            "refresh_token",
            "password_limited",
        ]
        assert first["code_challenge_methods_supported"] == ["plain", "S256"]
        assert "implicit" not in str(first)
        for endpoint in ("token_endpoint", "jwks_uri", "introspection_endpoint"):
            assert first[endpoint].startswith(world.issuer)


def test_retired_keys_stay_published_until_their_tokens_expire(sqlite_site: Site) -> None:
    client_id, secret, member_id = here.issue(sqlite_site)
    browser = sqlite_site.browser()
    old_token = here.redeem(
        browser, client_id, secret, here.mint_code(sqlite_site, client_id, member_id)
    )
    with sqlite_site.context.session() as db:
        old = keys.active_key(db)
        assert old is not None
        keys.rotate(db, sqlite_site.context.keyring, "test")
    sqlite_site.app.state.oauth.signer.reload()
    kids = {k["kid"] for k in browser.get("/oauth2/jwks").json()["keys"]}
    assert old.kid in kids and len(kids) == 2
    bearer = {"Authorization": f"Bearer {old_token.json()['access_token']}"}
    assert browser.get("/oauth2/sessions", headers=bearer).status_code == 200
    with sqlite_site.context.session() as db:
        db.execute(
            update(SigningKey)
            .where(SigningKey.kid == old.kid)
            .values(retired_at=utcnow() - keys.RETIRED_PUBLISHED_FOR - timedelta(seconds=1))
        )
    kids = {k["kid"] for k in browser.get("/oauth2/jwks").json()["keys"]}
    assert old.kid not in kids and len(kids) == 1


def test_metadata_is_generated_from_what_the_endpoints_accept() -> None:
    """Every advertised grant has a module at /token and every module is advertised; the
    PKCE methods are the ones /authorize accepts (core/policy.py is their one home)."""
    from pitpass.config import load_settings
    from pitpass.core import pkce, policy
    from pitpass.oauth.discovery import metadata_document
    from pitpass.oauth.token_endpoint import GRANTS

    document = metadata_document(load_settings())
    assert document["grant_types_supported"] == list(GRANTS)
    assert set(document["code_challenge_methods_supported"]) == set(pkce.METHODS)
    assert document["token_endpoint_auth_methods_supported"] == list(policy.TOKEN_AUTH_METHODS)
    assert document["scopes_supported"] == sorted(load_settings().profile.scopes)
