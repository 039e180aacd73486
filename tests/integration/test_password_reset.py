"""Forgot password and the reset link (issue #12, item 1), on both storage backends."""

from __future__ import annotations

import statistics
import time
from datetime import timedelta
from typing import Any
from urllib.parse import urlencode

import anyio
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import func, select, update

from pitpass.db.models import AuditEvent, MailMessage, PasswordReset, RememberedBrowser
from pitpass.http.cookies import CSRF_COOKIE
from pitpass.services import password_reset
from tests.conftest import GOOD_PASSWORD, Site
from tests.integration.test_app_journey import authorize_path, banner_of, issue_client
from tests.support import dump_database

EMAIL = "driver@example.com"
NEW_PASSWORD = "a brand new sturdy passphrase"
LINK = r"/signin/reset\?token=([A-Za-z0-9_-]+)"
SENT = "If an account uses that address, we have emailed it a link"


def count(site: Site, model: Any) -> int:
    with site.context.session() as db:
        return int(db.scalar(select(func.count()).select_from(model)) or 0)


def ask_for_link(site: Site, browser: TestClient, email: str, next_path: str = "") -> Any:
    page = "/signin/forgot" + (f"?{urlencode({'next': next_path})}" if next_path else "")
    fields = {"email": email} | ({"next": next_path} if next_path else {})
    return site.submit(browser, page, "/signin/forgot", **fields)


def link_token(site: Site, email: str) -> str:
    return site.mailbox.wait_for_match(email, LINK).group(1)


def reset(site: Site, browser: TestClient, token: str, password: str, again: str = "") -> Any:
    """Post the link's form (with the CSRF token of a page that has one, for spent links)."""
    path = f"/signin/reset?token={token}"
    page = path if browser.get(path).status_code == 200 else "/signin/forgot"
    fields = {"token": token, "password": password, "password_again": again or password}
    return site.submit(browser, page, "/signin/reset", **fields)


def signs_in(site: Site, email: str, password: str) -> bool:
    return site.start_sign_in(site.browser(), email, password).status_code == 303


def test_forgot_and_reset_then_sign_in_with_the_new_password(site: Site) -> None:
    site.add_member(EMAIL)
    other = site.browser()
    site.sign_in(other, EMAIL, remember=True)
    browser = site.browser()
    assert "Forgot your password?" in browser.get("/signin").text
    asked = ask_for_link(site, browser, EMAIL)
    assert asked.status_code == 303
    assert SENT in browser.get(asked.headers["location"]).text
    token = link_token(site, EMAIL)
    assert token not in dump_database(site.context.settings.database_url)  # a keyed hash only
    form = browser.get(f"/signin/reset?token={token}")
    assert form.status_code == 200 and EMAIL in form.text
    done = reset(site, browser, token, NEW_PASSWORD)
    assert done.status_code == 303
    assert done.headers["location"] == "/signin?next=%2Faccount&done=password-reset"
    assert "every browser was signed out" in browser.get(done.headers["location"]).text
    # The other browser is signed out and no longer remembered.
    assert other.get("/account").status_code == 303
    with site.context.session() as db:
        assert db.scalar(select(RememberedBrowser.revoked_at)) is not None
    told = site.mailbox.wait_for_match(EMAIL, r"Every browser was signed\s+out")
    assert told
    assert not signs_in(site, EMAIL, GOOD_PASSWORD)
    assert signs_in(site, EMAIL, NEW_PASSWORD)
    with site.context.session() as db:
        actions = set(db.scalars(select(AuditEvent.action)))
    assert {"password_reset.requested", "password.reset"} <= actions


def test_the_link_works_once_and_spends_the_others(site: Site) -> None:
    site.add_member(EMAIL)
    browser = site.browser()
    ask_for_link(site, browser, EMAIL)
    first = link_token(site, EMAIL)
    ask_for_link(site, browser, EMAIL)
    site.mailbox.wait_for(EMAIL, 2)
    second = link_token(site, EMAIL)
    assert first != second
    assert reset(site, browser, second, NEW_PASSWORD).status_code == 303
    for token in (second, first):
        again = browser.get(f"/signin/reset?token={token}")
        assert again.status_code == 410
        assert "This link was already used" in again.text
        assert "Ask for a new link" in again.text
        replay = reset(site, site.browser(), token, "yet another sturdy passphrase")
        assert replay.status_code == 410
    assert signs_in(site, EMAIL, NEW_PASSWORD)


def test_the_link_expires_after_30_minutes(site: Site) -> None:
    site.add_member(EMAIL)
    browser = site.browser()
    ask_for_link(site, browser, EMAIL)
    token = link_token(site, EMAIL)
    with site.context.session() as db:
        row = db.scalars(select(PasswordReset)).one()
        assert row.expires_at - row.created_at == timedelta(minutes=30)
        # Thirty-one minutes later:
        back = timedelta(minutes=31)
        db.execute(
            update(PasswordReset).values(
                created_at=row.created_at - back, expires_at=row.expires_at - back
            )
        )
    page = browser.get(f"/signin/reset?token={token}")
    assert page.status_code == 410
    assert "This link has expired. Ask for a new one." in page.text
    assert reset(site, browser, token, NEW_PASSWORD).status_code == 410
    assert signs_in(site, EMAIL, GOOD_PASSWORD)


def test_an_unknown_link_says_so(site: Site) -> None:
    page = site.browser().get("/signin/reset?token=not-a-real-token")
    assert page.status_code == 404
    assert "This link is not valid" in page.text


def test_the_apps_sign_in_journey_survives_the_reset(site: Site) -> None:
    site.add_member(EMAIL)
    browser = site.browser()
    journey = "/oauth2/authorize?client_id=league&state=xyz"
    signin = browser.get("/signin?" + urlencode({"next": journey})).text
    assert (
        'href="/signin/forgot?next=/oauth2/authorize%3Fclient_id%3Dleague%26state%3Dxyz"' in signin
    )
    asked = ask_for_link(site, browser, EMAIL, journey)
    assert asked.headers["location"] == "/signin/forgot/sent?" + urlencode({"next": journey})
    done = reset(site, browser, link_token(site, EMAIL), NEW_PASSWORD)
    assert done.headers["location"] == (
        "/signin?" + urlencode({"next": journey}) + "&done=password-reset"
    )
    # An outside address is not carried.
    ask_for_link(site, browser, EMAIL, "https://evil.example/")
    site.mailbox.wait_for(EMAIL, 3)
    with site.context.session() as db:
        paths = set(db.scalars(select(PasswordReset.next_path)))
    assert paths == {journey, "/account"}


def test_known_and_unknown_emails_get_the_same_answer(site: Site) -> None:
    site.add_member(EMAIL)
    answers = []
    for email in (EMAIL, "nobody@example.com"):
        browser = site.browser()
        browser.get("/signin/forgot")  # the same CSRF cookie shape for both
        asked = ask_for_link(site, browser, email)
        followed = browser.get(asked.headers["location"])
        answers.append((asked.status_code, asked.headers["location"], asked.content))
        answers.append((followed.status_code, followed.text))
    assert answers[0] == answers[2]
    assert answers[1] == answers[3]
    assert site.mailbox.count_for(EMAIL) == 1
    assert count(site, PasswordReset) == 1
    with site.context.session() as db:
        assert db.scalar(
            select(AuditEvent.actor).where(AuditEvent.action == "password_reset.no_account")
        ) == ("nobody@example.com")


def timed_post(app: FastAPI, path: str, form: dict[str, str], cookies: dict[str, str]) -> float:
    """Seconds until the response is sent, as a remote caller measures it; the background
    tasks run after that and are waited for, but not counted."""

    async def run() -> float:
        body = urlencode(form).encode()
        done = anyio.Event()
        answered: list[float] = []
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "POST",
            "scheme": "http",
            "path": path,
            "raw_path": path.encode(),
            "root_path": "",
            "query_string": b"",
            "headers": [
                (b"host", b"testserver"),
                (b"content-type", b"application/x-www-form-urlencoded"),
                (b"content-length", str(len(body)).encode()),
                (b"cookie", "; ".join(f"{k}={v}" for k, v in cookies.items()).encode()),
            ],
            "client": ("192.0.2.7", 50000),
            "server": ("testserver", 80),
        }
        delivered = False

        async def receive() -> dict[str, Any]:
            nonlocal delivered
            if not delivered:
                delivered = True
                return {"type": "http.request", "body": body, "more_body": False}
            await done.wait()
            return {"type": "http.disconnect"}

        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                assert message["status"] == 303, message
            if message["type"] == "http.response.body" and not message.get("more_body"):
                answered.append(time.perf_counter())
                done.set()

        started = time.perf_counter()
        await app(scope, receive, send)
        return answered[0] - started

    return anyio.run(run)


def test_asking_takes_as_long_for_a_known_and_an_unknown_email(
    site_factory: Any, sqlite_backend: Any
) -> None:
    """The medians of 20 answers each differ by less than 50 ms, even when sending mail is
    made slow: nothing that depends on the account is done before the answer."""
    site = site_factory(
        sqlite_backend, password_resets_per_email="1000/hour", password_resets_per_ip="1000/hour"
    )
    site.add_member(EMAIL)
    real_deliver = site.context.mailer.deliver

    async def slow_deliver(*args: Any) -> None:
        await anyio.sleep(0.2)
        await real_deliver(*args)

    site.context.mailer.deliver = slow_deliver  # type: ignore[method-assign]
    browser = site.browser()
    page = browser.get("/signin/forgot")
    cookie, token = browser.cookies[CSRF_COOKIE], site.csrf_of(page)
    timings: dict[str, list[float]] = {EMAIL: [], "nobody@example.com": []}
    for _round in range(20):
        for email, seconds in timings.items():
            form = {"email": email, "csrf_token": token}
            seconds.append(timed_post(site.app, "/signin/forgot", form, {CSRF_COOKIE: cookie}))
    known, unknown = (statistics.median(seconds) for seconds in timings.values())
    assert abs(known - unknown) < 0.05, (known, unknown)
    assert known < 0.2  # the slow mail was not waited for
    assert count(site, PasswordReset) == 20  # yet every link was made and mailed
    assert site.mailbox.count_for(EMAIL) == 20


def test_asking_is_throttled_per_email_beside_the_field(site_factory: Any, backend: Any) -> None:
    site = site_factory(backend, password_resets_per_email="2/hour")
    site.add_member(EMAIL)
    for email in (EMAIL, "nobody@example.com"):  # alike for an email with no account
        browser = site.browser()
        for _ in range(2):
            assert ask_for_link(site, browser, email).status_code == 303
        refused = ask_for_link(site, site.browser(), email)
        assert refused.status_code == 429
        assert 'id="email-error"' in refused.text
        assert "Too many reset links were asked for. Try again in" in refused.text
        assert 0 < int(refused.headers["retry-after"]) <= 3600
    assert count(site, PasswordReset) == 2
    with site.context.session() as db:
        throttled = db.scalars(
            select(AuditEvent.actor).where(AuditEvent.action == "password_reset.throttled")
        )
        assert set(throttled) == {EMAIL, "nobody@example.com"}


def test_asking_is_throttled_per_address(site_factory: Any, backend: Any) -> None:
    site = site_factory(backend, password_resets_per_ip="3/hour")
    browser = site.browser()
    for number in range(3):
        assert ask_for_link(site, browser, f"guess{number}@example.com").status_code == 303
    refused = ask_for_link(site, browser, "another@example.com")
    assert refused.status_code == 429
    assert 'id="email-error"' in refused.text


def test_bad_emails_are_explained_beside_the_field(site: Site) -> None:
    site.add_member(EMAIL)
    browser = site.browser()
    for typed, message in (
        ("", "Enter your email address."),
        ("not an email", "Enter an email address like name@example.com."),
        ("a" * 400 + "@example.com", "Enter an email address like name@example.com."),
    ):
        refused = ask_for_link(site, browser, typed)
        assert refused.status_code == 400
        assert f'<p class="error field-error" id="email-error">{message}</p>' in refused.text
        assert 'aria-invalid="true"' in refused.text
    nul = ask_for_link(site, browser, "driver\x00@example.com")
    assert nul.status_code == 400
    assert count(site, PasswordReset) == 0
    assert count(site, MailMessage) == 0


def test_a_bad_new_password_is_explained_and_spends_nothing(site: Site) -> None:
    site.add_member(EMAIL, name="Jo Racer")
    browser = site.browser()
    ask_for_link(site, browser, EMAIL)
    token = link_token(site, EMAIL)
    for password, again, field, message in (
        ("", "", "password", "Use at least 10 characters."),
        ("short", "short", "password", "Use at least 10 characters."),
        ("1234567890", "1234567890", "password", "too easy to guess"),
        ("x" * 300, "x" * 300, "password", "Use at most 256 characters."),
        (NEW_PASSWORD, NEW_PASSWORD + "!", "password_again", "The two passwords are not the same."),
    ):
        refused = reset(site, browser, token, password, again)
        assert refused.status_code == 400
        assert f'id="{field}-error"' in refused.text
        assert message in refused.text
    with site.context.session() as db:
        assert db.scalar(select(PasswordReset.used_at)) is None
    assert signs_in(site, EMAIL, GOOD_PASSWORD)
    assert reset(site, browser, token, NEW_PASSWORD).status_code == 303


def test_the_make_link_step_ignores_disabled_accounts(site: Site) -> None:
    member = site.add_member(EMAIL)
    with site.context.session() as db:
        db.merge(member).is_disabled = True
    client = password_reset.Client(ip="192.0.2.1")
    assert password_reset.make_link(site.context, EMAIL, "/account", client) == []
    assert count(site, PasswordReset) == 0


def test_the_recovery_pages_name_the_app_being_signed_in_to(sqlite_site: Site) -> None:
    """Forgot, sent, reset and a spent link say "to continue to <client>" (issue #12, item 3)."""
    site = sqlite_site
    journey = authorize_path(issue_client(site, "Lap Timer"))
    site.add_member(EMAIL)
    browser = site.browser()
    expected = "to continue to <strong>Lap Timer</strong> by Lap Labs"
    assert banner_of(browser.get("/signin/forgot", params={"next": journey}).text) == expected
    asked = ask_for_link(site, browser, EMAIL, journey)
    assert banner_of(browser.get(asked.headers["location"]).text) == expected
    token = link_token(site, EMAIL)
    assert banner_of(browser.get(f"/signin/reset?token={token}").text) == expected
    assert banner_of(reset(site, browser, token, "short").text) == expected
    assert reset(site, browser, token, NEW_PASSWORD).status_code == 303
    assert banner_of(browser.get(f"/signin/reset?token={token}").text) == expected
    assert banner_of(browser.get("/signin/forgot").text) is None
