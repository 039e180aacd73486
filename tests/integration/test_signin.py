"""Web sign-in (issue #2, item 4) on both storage backends."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import func, select, update

from pitpass.db.models import AuditEvent, RememberedBrowser, SignInChallenge, WebSession, utcnow
from pitpass.http.cookies import CHALLENGE_COOKIE, REMEMBER_COOKIE, SESSION_COOKIE
from pitpass.services.signin import BAD_CREDENTIALS
from tests.conftest import GOOD_PASSWORD, Site

EMAIL = "driver@example.com"


def count(site: Site, model: Any) -> int:
    with site.context.session() as db:
        return int(db.scalar(select(func.count()).select_from(model)) or 0)


def test_sign_in_with_emailed_code_reaches_the_account(site: Site) -> None:
    site.add_member(EMAIL, name="Jo Racer")
    browser = site.browser()
    done = site.sign_in(browser, EMAIL)
    assert done.headers["location"] == "/account"
    account = browser.get("/account")
    assert account.status_code == 200
    assert "Jo Racer" in account.text
    assert site.mailbox.wait_for(EMAIL)["Subject"] == "Your Pitpass sign-in code"


def test_sign_in_returns_to_a_local_next_page_only(site: Site) -> None:
    site.add_member(EMAIL)
    browser = site.browser()
    started = site.submit(
        browser,
        "/signin",
        "/signin",
        email=EMAIL,
        password=GOOD_PASSWORD,
        next="https://evil.example/steal",
    )
    assert started.status_code == 303
    code = site.mailbox.code_for(EMAIL)
    done = site.submit(browser, "/signin/code", "/signin/code", code=code)
    assert done.headers["location"] == "/account"


def test_a_next_page_longer_than_its_column_is_not_a_500(site: Site) -> None:
    """The sign-in challenge keeps the next page in 2,000 characters (PostgreSQL enforces
    it): a longer one is the default page, not a 500 (found in the review of issue #11)."""
    site.add_member(EMAIL)
    browser = site.browser()
    started = site.submit(
        browser, "/signin", "/signin", email=EMAIL, password=GOOD_PASSWORD, next="/" + "a" * 2100
    )
    assert started.status_code == 303
    code = site.mailbox.code_for(EMAIL)
    done = site.submit(browser, "/signin/code", "/signin/code", code=code)
    assert done.headers["location"] == "/account"


def test_wrong_password_and_unknown_email_read_the_same(site: Site) -> None:
    site.add_member(EMAIL)
    browser = site.browser()
    wrong = site.start_sign_in(browser, EMAIL, "not the password at all")
    unknown = site.start_sign_in(browser, "nobody@example.com", GOOD_PASSWORD)
    for response in (wrong, unknown):
        assert response.status_code == 400
        assert BAD_CREDENTIALS in response.text
    assert count(site, SignInChallenge) == 0
    assert site.mailbox.count_for(EMAIL) == 0


def test_remembered_browser_skips_the_code(site: Site) -> None:
    site.add_member(EMAIL)
    browser = site.browser()
    site.sign_in(browser, EMAIL, remember=True)
    assert browser.cookies.get(REMEMBER_COOKIE)
    site.submit(browser, "/account", "/signout")
    again = site.start_sign_in(browser, EMAIL)
    assert again.status_code == 303
    assert again.headers["location"] == "/account"
    assert site.mailbox.count_for(EMAIL) == 1  # only the first sign-in sent a code


def test_forced_code_ignores_and_forgets_the_remembered_browser(site: Site) -> None:
    site.add_member(EMAIL)
    browser = site.browser()
    site.sign_in(browser, EMAIL, remember=True)
    site.submit(browser, "/account", "/signout")
    remember_cookie = browser.cookies.get(REMEMBER_COOKIE)
    forced = site.start_sign_in(browser, EMAIL, verify="1")
    assert forced.headers["location"] == "/signin/code"
    assert site.mailbox.count_for(EMAIL) == 2
    with site.context.session() as db:
        assert db.scalar(select(RememberedBrowser.revoked_at)) is not None
    # Even the old cookie, sent again, no longer skips the code.
    fresh = site.browser()
    fresh.cookies.set(REMEMBER_COOKIE, remember_cookie)
    assert site.start_sign_in(fresh, EMAIL).headers["location"] == "/signin/code"


def test_tampered_remember_cookie_asks_for_the_code_and_says_why(site: Site) -> None:
    site.add_member(EMAIL)
    browser = site.browser()
    site.sign_in(browser, EMAIL, remember=True)
    site.submit(browser, "/account", "/signout")
    cookie = browser.cookies.get(REMEMBER_COOKIE)
    assert cookie
    browser.cookies.set(REMEMBER_COOKIE, cookie[:-3] + ("AAA" if cookie[-3:] != "AAA" else "BBB"))
    started = site.start_sign_in(browser, EMAIL)
    assert started.headers["location"] == "/signin/code"
    page = browser.get("/signin/code")
    assert "remembered sign-in could not be verified" in page.text


def test_wrong_code_counts_down_then_locks(site: Site) -> None:
    site.add_member(EMAIL)
    browser = site.browser()
    site.start_sign_in(browser, EMAIL)
    real = site.mailbox.code_for(EMAIL)
    wrong = "000000" if real != "000000" else "111111"
    first = site.submit(browser, "/signin/code", "/signin/code", code=wrong)
    assert first.status_code == 400
    assert "That code is not right. 4 tries left." in first.text
    for _ in range(4):
        last = site.submit(browser, "/signin/code", "/signin/code", code=wrong)
    assert "Too many wrong codes" in last.text
    # The right code is now refused too: the challenge is spent.
    late = site.submit(browser, "/signin/code", "/signin/code", code=real)
    assert late.status_code == 400
    assert count(site, WebSession) == 0


def test_malformed_code_is_explained_and_costs_no_try(site: Site) -> None:
    site.add_member(EMAIL)
    browser = site.browser()
    site.start_sign_in(browser, EMAIL)
    response = site.submit(browser, "/signin/code", "/signin/code", code="12ab")
    assert "Enter the 6-digit code from the email." in response.text
    with site.context.session() as db:
        assert db.scalar(select(SignInChallenge.failed_attempts)) == 0


def test_expired_code_is_refused(site: Site) -> None:
    site.add_member(EMAIL)
    browser = site.browser()
    site.start_sign_in(browser, EMAIL)
    code = site.mailbox.code_for(EMAIL)
    with site.context.session() as db:
        db.execute(update(SignInChallenge).values(expires_at=utcnow() - timedelta(seconds=1)))
    response = site.submit(browser, "/signin/code", "/signin/code", code=code)
    assert response.status_code == 400
    assert "This code has expired" in response.text
    assert count(site, WebSession) == 0


def test_code_works_exactly_once(site: Site) -> None:
    site.add_member(EMAIL)
    browser = site.browser()
    site.start_sign_in(browser, EMAIL)
    code = site.mailbox.code_for(EMAIL)
    challenge_cookie = browser.cookies.get(CHALLENGE_COOKIE)
    assert site.submit(browser, "/signin/code", "/signin/code", code=code).status_code == 303
    replay = site.browser()
    replay.cookies.set(CHALLENGE_COOKIE, challenge_cookie)
    again = site.submit(replay, "/signin", "/signin/code", code=code)  # a page with a form
    assert again.status_code == 400
    assert "This code was already used" in again.text
    assert count(site, WebSession) == 1


def test_sign_out_ends_the_session_for_good(site: Site) -> None:
    site.add_member(EMAIL)
    browser = site.browser()
    site.sign_in(browser, EMAIL)
    session_cookie = browser.cookies.get(SESSION_COOKIE)
    out = site.submit(browser, "/account", "/signout")
    assert out.headers["location"] == "/signin?done=signed-out"
    assert "You are signed out." in browser.get("/signin?done=signed-out").text
    stale = site.browser()
    stale.cookies.set(SESSION_COOKIE, session_cookie)
    assert stale.get("/account").headers["location"] == "/signin?next=%2Faccount"


def test_form_without_or_with_a_wrong_csrf_token_changes_nothing(site: Site) -> None:
    site.add_member(EMAIL)
    browser = site.browser()
    browser.get("/signin")
    missing = browser.post("/signin", data={"email": EMAIL, "password": GOOD_PASSWORD})
    forged = browser.post(
        "/signin", data={"email": EMAIL, "password": GOOD_PASSWORD, "csrf_token": "f" * 64}
    )
    other_browser = site.browser()
    stolen_token = site.csrf_of(other_browser.get("/signin"))
    cross = browser.post(
        "/signin", data={"email": EMAIL, "password": GOOD_PASSWORD, "csrf_token": stolen_token}
    )
    for response in (missing, forged, cross):
        assert response.status_code == 403
        assert "nothing was changed" in response.text
    assert count(site, SignInChallenge) == 0
    assert site.mailbox.count_for(EMAIL) == 0


def test_sign_out_needs_the_csrf_token(site: Site) -> None:
    site.add_member(EMAIL)
    browser = site.browser()
    site.sign_in(browser, EMAIL)
    assert browser.post("/signout", data={}).status_code == 403
    assert browser.get("/account").status_code == 200


def test_repeated_failures_per_account_and_address_are_throttled_with_a_time(
    site_factory: Any, backend: Any
) -> None:
    site = site_factory(backend, signin_failures_per_account_ip="3/15 minutes")
    site.add_member(EMAIL)
    browser = site.browser()
    for _ in range(3):
        assert site.start_sign_in(browser, EMAIL, "wrong password here").status_code == 400
    # From this address even the right password waits (it may be the guesser's own).
    throttled = site.start_sign_in(browser, EMAIL, GOOD_PASSWORD)
    assert throttled.status_code == 429
    assert "Too many failed sign-in attempts. Try again in 15 minutes." in throttled.text
    assert 0 < int(throttled.headers["retry-after"]) <= 900
    assert count(site, SignInChallenge) == 0
    with site.context.session() as db:
        actions = set(db.scalars(select(AuditEvent.action)))
    assert {"signin.failed", "signin.throttled"} <= actions


def test_repeated_failures_per_ip_are_throttled_across_accounts(
    site_factory: Any, backend: Any
) -> None:
    site = site_factory(backend, signin_failures_per_ip="4/hour")
    browser = site.browser()
    for number in range(4):
        site.start_sign_in(browser, f"guess{number}@example.com", "wrong password here")
    throttled = site.start_sign_in(browser, "another@example.com", "wrong password here")
    assert throttled.status_code == 429
    assert "Try again in" in throttled.text


def test_throttle_counters_are_shared_between_instances(site_factory: Any, backend: Any) -> None:
    """With Redis, two processes see one count (PRODUCT.md §6); in-process limits are per app."""
    first = site_factory(backend, signin_failures_per_account_ip="2/15 minutes")
    second = site_factory(backend, signin_failures_per_account_ip="2/15 minutes")
    first.add_member(EMAIL)
    first.start_sign_in(first.browser(), EMAIL, "wrong password here")
    second.start_sign_in(second.browser(), EMAIL, "wrong password here")
    verdict = second.start_sign_in(second.browser(), EMAIL, GOOD_PASSWORD)
    if backend.redis_url:
        assert verdict.status_code == 429
    else:
        assert verdict.status_code == 303


def test_disabled_member_cannot_sign_in(site: Site) -> None:
    member = site.add_member(EMAIL)
    with site.context.session() as db:
        db.get(type(member), member.id).is_disabled = True  # type: ignore[union-attr]
    response = site.start_sign_in(site.browser(), EMAIL)
    assert response.status_code == 400
    assert "This account is disabled" in response.text


def browser_at(site: Site, address: str) -> TestClient:
    """A browser whose requests come from `address`."""
    return TestClient(site.app, follow_redirects=False, client=(address, 50000))


def test_failures_from_elsewhere_never_lock_the_member_out(site_factory: Any, backend: Any) -> None:
    """Issue #11, defect 10: a guesser elsewhere throttles only their own address; past the
    account's ceiling the right password still signs in, with the emailed code even on a
    remembered browser; the code clears the ceiling."""
    site = site_factory(backend, signin_failures_per_account="3/hour")
    site.add_member(EMAIL)
    member = browser_at(site, "198.51.100.20")
    site.sign_in(member, EMAIL, remember=True)
    site.submit(member, "/account", "/signout")
    guesser = browser_at(site, "203.0.113.7")
    for _ in range(3):
        assert site.start_sign_in(guesser, EMAIL, "wrong password here").status_code == 400
    sent = site.mailbox.count_for(EMAIL)
    again = site.start_sign_in(member, EMAIL, GOOD_PASSWORD)
    assert again.status_code == 303
    assert again.headers["location"] == "/signin/code"  # the remembered browser is not enough
    code = site.mailbox.code_for(EMAIL, sent + 1)
    assert site.submit(member, "/signin/code", "/signin/code", code=code).status_code == 303
    site.submit(member, "/account", "/signout")
    remembered = site.start_sign_in(member, EMAIL, GOOD_PASSWORD)
    assert remembered.headers["location"] == "/account"  # the ceiling was cleared


def test_an_ipv6_guesser_is_counted_by_network(site_factory: Any, backend: Any) -> None:
    site = site_factory(backend, signin_failures_per_account_ip="2/15 minutes")
    site.add_member(EMAIL)
    for host in ("2001:db8:1:2::a", "2001:db8:1:2::b"):
        site.start_sign_in(browser_at(site, host), EMAIL, "wrong password here")
    same_network = site.start_sign_in(browser_at(site, "2001:db8:1:2::c"), EMAIL, GOOD_PASSWORD)
    assert same_network.status_code == 429
    other_network = site.start_sign_in(browser_at(site, "2001:db8:1:3::a"), EMAIL, GOOD_PASSWORD)
    assert other_network.status_code == 303


def test_wrong_codes_are_limited_across_codes(site: Site) -> None:
    """Issue #11, defect 10: a fresh code no longer brings fresh guesses. By default 5 tries
    a code and 10 wrong codes an hour per member: the third code is refused, even right."""
    site.add_member(EMAIL)
    browser = site.browser()
    for nth in (1, 2):
        site.start_sign_in(browser, EMAIL)
        real = site.mailbox.code_for(EMAIL, nth)
        wrong = "000000" if real != "000000" else "111111"
        for _ in range(5):
            site.submit(browser, "/signin/code", "/signin/code", code=wrong)
    site.start_sign_in(browser, EMAIL)
    third = site.mailbox.code_for(EMAIL, 3)
    refused = site.submit(browser, "/signin/code", "/signin/code", code=third)
    assert refused.status_code == 429
    assert 0 < int(refused.headers["retry-after"]) <= 3600
    assert "Too many wrong codes for this account. Try again in" in refused.text
    assert count(site, WebSession) == 0


def test_codes_mailed_per_member_are_limited(site: Site) -> None:
    """By default 5 codes per member in 15 minutes; then the password step says to wait."""
    site.add_member(EMAIL)
    browser = site.browser()
    for _ in range(5):
        assert site.start_sign_in(browser, EMAIL).headers["location"] == "/signin/code"
    site.mailbox.code_for(EMAIL, 5)
    refused = site.start_sign_in(browser, EMAIL)
    assert refused.status_code == 429
    assert 0 < int(refused.headers["retry-after"]) <= 900
    assert "We have sent this account several codes already" in refused.text
    assert count(site, SignInChallenge) == 5
    assert site.mailbox.count_for(EMAIL) == 5
