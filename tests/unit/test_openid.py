"""OpenID Connect Core 1.0's rules without I/O (core/openid.py) and what `openid` changes in
the scope rules (core/policy.py): only requests that ask for it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from pitpass.config import Profile
from pitpass.core import openid, policy
from pitpass.core.openid import IdTokenFacts, Prompt

PROFILE = Profile()
NOW = datetime(2026, 12, 10, 9, 0, tzinfo=UTC)


def test_at_hash_matches_the_specification_example() -> None:
    # OpenID Connect Core 1.0, Appendix A.3 and A.4 (SHA-256, as ES256 uses).
    assert openid.at_hash("jHkWEdUXMU1BwAsC4vtUsZwnNvTIxEl0z9K3vx5KF0Y") == "77QmUPtjPfzWtF2AnpK9RQ"


class TestPrompt:
    @pytest.mark.parametrize(
        "raw",
        [None, "", "none", "login", "consent", "none login consent", "select_account", "x y"],
    )
    def test_without_openid_only_verify_means_anything(self, raw: str | None) -> None:
        assert openid.parse_prompt(raw, openid=False) == Prompt()

    def test_without_openid_verify_is_the_reference_services(self) -> None:
        assert openid.parse_prompt("login verify junk", openid=False) == Prompt(verify=True)

    @pytest.mark.parametrize(
        ("raw", "expected"),
        [
            (None, Prompt()),
            ("none", Prompt(none=True)),
            ("none none", Prompt(none=True)),
            ("login", Prompt(login=True)),
            ("consent", Prompt(consent=True)),
            ("login consent", Prompt(login=True, consent=True)),
            ("verify consent", Prompt(verify=True, consent=True)),
        ],
    )
    def test_with_openid_the_specification_values(self, raw: str | None, expected: Prompt) -> None:
        assert openid.parse_prompt(raw, openid=True) == expected

    @pytest.mark.parametrize(
        ("raw", "fragment"),
        [
            ("select_account", "prompt select_account is not supported"),
            ("login Login", "prompt Login is not supported"),
            ("none login", "prompt=none cannot be combined"),
            ("consent none", "prompt=none cannot be combined"),
        ],
    )
    def test_with_openid_other_values_are_refused(self, raw: str, fragment: str) -> None:
        with pytest.raises(ValueError, match=fragment):
            openid.parse_prompt(raw, openid=True)


@pytest.mark.parametrize(
    ("raw", "expected"), [(None, None), ("", None), ("0", 0), ("3600", 3600), ("0060", 60)]
)
def test_max_age_is_seconds(raw: str | None, expected: int | None) -> None:
    assert openid.parse_max_age(raw) == expected


@pytest.mark.parametrize("raw", ["-1", "1.5", "abc", " 5", "\uff15", "1e3"])
def test_max_age_that_is_not_a_count_of_seconds_is_refused(raw: str) -> None:
    with pytest.raises(ValueError, match="max_age must be a number of seconds"):
        openid.parse_max_age(raw)


def test_a_huge_max_age_means_any_sign_in() -> None:
    assert openid.parse_max_age("9999999999") == openid.MAX_AGE_LIMIT
    assert openid.parse_max_age("9" * 5000) == openid.MAX_AGE_LIMIT


def test_max_age_compares_with_the_sign_in_time() -> None:
    an_hour_ago = NOW - timedelta(hours=1)
    assert not openid.signed_in_too_long_ago(an_hour_ago, NOW, None)
    assert not openid.signed_in_too_long_ago(an_hour_ago, NOW, 3600)
    assert openid.signed_in_too_long_ago(an_hour_ago, NOW, 3599)
    assert openid.signed_in_too_long_ago(NOW - timedelta(microseconds=1), NOW, 0)


def test_nonce_is_kept_as_sent_within_bounds() -> None:
    assert openid.checked_nonce(None) is None
    assert openid.checked_nonce("n-0S6_WzA2Mj é") == "n-0S6_WzA2Mj é"
    assert openid.checked_nonce("x" * openid.MAX_NONCE_LENGTH) == "x" * 255
    with pytest.raises(ValueError, match="longer than 255"):
        openid.checked_nonce("x" * 256)
    assert openid.checked_nonce("") is None  # RFC 6749 §3.1: an empty value is omitted


def facts(nonce: str | None) -> IdTokenFacts:
    return IdTokenFacts(
        issuer="https://auth.example/oauth2",
        client_id="my-app",
        customer_id=100042,
        auth_time=NOW - timedelta(minutes=5),
        now=NOW,
        lifetime_seconds=600,
        access_token="jHkWEdUXMU1BwAsC4vtUsZwnNvTIxEl0z9K3vx5KF0Y",
        nonce=nonce,
    )


def test_id_token_claims() -> None:
    issued = int(NOW.timestamp())
    assert openid.id_token_claims(facts("n-1")) == {
        "iss": "https://auth.example/oauth2",
        "sub": "100042",
        "aud": "my-app",
        "azp": "my-app",
        "exp": issued + 600,
        "iat": issued,
        "auth_time": issued - 300,
        "nonce": "n-1",
        "at_hash": "77QmUPtjPfzWtF2AnpK9RQ",
    }


def test_id_token_without_a_nonce_has_no_nonce_claim() -> None:
    assert "nonce" not in openid.id_token_claims(facts(None))


def test_userinfo_says_what_the_scopes_name() -> None:
    assert openid.userinfo_claims("openid", 100042, "Ana", PROFILE) == {"sub": "100042"}
    assert openid.userinfo_claims("iracing.auth openid", 100042, "Ana", PROFILE) == {
        "sub": "100042"
    }
    assert openid.userinfo_claims("iracing.profile openid", 100042, "Ana", PROFILE) == {
        "sub": "100042",
        "name": "Ana",
        "iracing_cust_id": 100042,
    }


class TestScopes:
    def test_openid_is_accepted_only_where_allowed(self) -> None:
        assert (
            policy.requested_scope("openid iracing.profile", PROFILE, openid_allowed=True)
            == "iracing.profile openid"
        )
        with pytest.raises(policy.ScopeRefused, match="for signing in through /authorize"):
            policy.requested_scope("openid iracing.auth", PROFILE)

    def test_openid_alone_is_not_topped_up_with_the_default_scope(self) -> None:
        assert policy.requested_scope("openid", PROFILE, openid_allowed=True) == "openid"

    @pytest.mark.parametrize("allowed", [True, False])
    def test_other_scopes_are_judged_as_before(self, allowed: bool) -> None:
        assert policy.requested_scope(None, PROFILE, openid_allowed=allowed) == "iracing.auth"
        with pytest.raises(policy.ScopeRefused, match="unknown scope profile"):
            policy.requested_scope("openid profile", PROFILE, openid_allowed=True)
        with pytest.raises(policy.ScopeRefused, match="unknown scope admin"):
            policy.requested_scope("iracing.auth admin", PROFILE, openid_allowed=allowed)

    def test_openid_is_identity_so_it_gets_no_refresh_token_alone(self) -> None:
        week = 7 * 86_400
        assert not policy.grants_refresh("openid", week, PROFILE)
        assert not policy.grants_refresh("iracing.profile openid", week, PROFILE)
        assert policy.grants_refresh("iracing.auth openid", week, PROFILE)
        assert policy.grants_refresh("iracing.auth", week, PROFILE)
        assert not policy.grants_refresh("iracing.profile", week, PROFILE)

    def test_the_member_reads_what_openid_shares(self) -> None:
        assert policy.scope_meanings("iracing.profile openid", PROFILE) == [
            ("iracing.profile", "See your display name and customer id"),
            ("openid", openid.OPENID_MEANING),
        ]
