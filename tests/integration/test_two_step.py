"""The authenticator app (issue #12, item 2): enrolment, sign-in with its code or a
recovery code, and every refusal (a message beside its field, nothing changed)."""

from __future__ import annotations

import re
import time
from typing import Any

import pyotp
from fastapi.testclient import TestClient
from sqlalchemy import select

from pitpass.db.models import AuditEvent, Member, RecoveryCode
from pitpass.http.cookies import SESSION_COOKIE
from pitpass.services import members
from tests.conftest import GOOD_PASSWORD, Site

EMAIL = "driver@example.com"
SECRET_ON_PAGE = re.compile(r'id="secret-key">([A-Z2-7 ]+)<')
CODE_ON_PAGE = re.compile(r"<li><code>([a-z2-9]{5}-[a-z2-9]{5})</code></li>")


def member_row(site: Site, email: str = EMAIL) -> Member:
    with site.context.session() as db:
        member = members.find_by_email(db, email)
        assert member is not None
        db.expunge(member)
        return member


def next_code(secret: str) -> str:
    """The code of the next 30-second step: within the drift allowed, and later than
    any step used a moment ago (each step works once)."""
    return pyotp.TOTP(secret).at(time.time() + 30)


def enrol(site: Site, browser: TestClient) -> tuple[str, list[str]]:
    """Set up the app as the member does; the secret and the ten recovery codes."""
    started = site.submit(
        browser, "/account/two-step", "/account/two-step/start", password=GOOD_PASSWORD
    )
    assert started.status_code == 303
    page = browser.get("/account/two-step")
    match = SECRET_ON_PAGE.search(page.text)
    assert match, page.text
    assert "<svg" in page.text and 'role="img"' in page.text
    secret = match.group(1).replace(" ", "")
    done = site.submit(
        browser,
        "/account/two-step",
        "/account/two-step/confirm",
        code=pyotp.TOTP(secret).now(),
    )
    assert done.status_code == 200, done.text
    assert done.headers["cache-control"] == "no-store"
    codes = CODE_ON_PAGE.findall(done.text)
    assert len(codes) == 10
    return secret, codes


def enrolled_member(site: Site) -> tuple[str, list[str]]:
    site.add_member(EMAIL)
    browser = site.browser()
    site.sign_in(browser, EMAIL)
    return enrol(site, browser)


def password_step(site: Site, email: str = EMAIL) -> TestClient:
    browser = site.browser()
    started = site.start_sign_in(browser, email)
    assert started.status_code == 303 and started.headers["location"] == "/signin/code"
    return browser


def type_code(site: Site, browser: TestClient, code: str, **more: str) -> Any:
    return site.submit(browser, "/signin/code", "/signin/code", code=code, **more)


def test_enrolment_needs_a_right_first_code(site: Site) -> None:
    site.add_member(EMAIL)
    browser = site.browser()
    site.sign_in(browser, EMAIL)
    start = "/account/two-step/start"
    for password, message in (("", "Enter your password."), ("not it", "not your password")):
        refused = site.submit(browser, "/account/two-step", start, password=password)
        assert refused.status_code == 400 and message in refused.text
        assert 'id="start_password-error"' in refused.text
        assert member_row(site).totp_secret_sealed is None  # nothing started
    site.submit(browser, "/account/two-step", start, password=GOOD_PASSWORD)
    page = browser.get("/account/two-step")
    secret = SECRET_ON_PAGE.search(page.text).group(1).replace(" ", "")  # type: ignore[union-attr]
    wrong = str((int(pyotp.TOTP(secret).now()) + 1) % 1_000_000).zfill(6)
    refused = site.submit(browser, "/account/two-step", "/account/two-step/confirm", code=wrong)
    assert refused.status_code == 400
    assert 'id="code-error"' in refused.text and 'aria-invalid="true"' in refused.text
    malformed = site.submit(browser, "/account/two-step", "/account/two-step/confirm", code="12")
    assert malformed.status_code == 400 and "6-digit" in malformed.text
    row = member_row(site)
    assert row.totp_enabled_at is None and row.totp_secret_sealed is not None
    assert secret.encode() not in row.totp_secret_sealed  # sealed, not in clear
    # Sign-in still emails a code until the app is on.
    sent = site.mailbox.count_for(EMAIL)
    password_step(site)
    assert site.mailbox.code_for(EMAIL, sent + 1)


def test_sign_in_asks_for_the_app_code_and_sends_no_mail(site: Site) -> None:
    secret, _codes = enrolled_member(site)
    sent = site.mailbox.count_for(EMAIL)
    browser = password_step(site)
    page = browser.get("/signin/code")
    assert "authenticator app" in page.text and "Use a recovery code instead" in page.text
    done = type_code(site, browser, next_code(secret))
    assert done.status_code == 303 and done.headers["location"] == "/account"
    assert browser.get("/account").status_code == 200
    time.sleep(0.3)
    assert site.mailbox.count_for(EMAIL) == sent  # no mail for the app's code


def test_a_wrong_or_replayed_app_code_is_refused_and_counted(site: Site) -> None:
    secret, _codes = enrolled_member(site)
    code = next_code(secret)
    first = password_step(site)
    assert type_code(site, first, code).status_code == 303
    second = password_step(site)
    replayed = type_code(site, second, code)
    assert replayed.status_code == 400
    assert "That code was already used. 4 tries left." in replayed.text
    assert SESSION_COOKIE not in second.cookies
    wrong = type_code(site, second, "000000" if code != "000000" else "111111")
    assert wrong.status_code == 400 and "not right. 3 tries left" in wrong.text
    malformed = type_code(site, second, "abc")
    assert malformed.status_code == 400 and "authenticator app" in malformed.text
    for _ in range(3):
        last = type_code(site, second, "000000" if code != "000000" else "111111")
    assert "Too many wrong codes" in last.text
    assert SESSION_COOKIE not in second.cookies


def test_a_recovery_code_signs_in_once(site: Site) -> None:
    _secret, codes = enrolled_member(site)
    browser = password_step(site)
    page = browser.get("/signin/code?recovery=1")
    assert 'for="code">Recovery code<' in page.text
    done = type_code(site, browser, codes[0].upper(), method="recovery")
    assert done.status_code == 303 and done.headers["location"] == "/account"
    assert "9</strong> of 10" in browser.get("/account/two-step").text
    again = password_step(site)
    used = type_code(site, again, codes[0], method="recovery")
    assert used.status_code == 400 and "already used" in used.text
    assert SESSION_COOKIE not in again.cookies
    # A recovery code is not an app code, and an app code's form does not take one.
    assert type_code(site, again, codes[1]).status_code == 400


def test_new_recovery_codes_need_the_password_and_replace_the_old(site: Site) -> None:
    site.add_member(EMAIL)
    browser = site.browser()
    site.sign_in(browser, EMAIL)
    _secret, codes = enrol(site, browser)
    refused = site.submit(
        browser, "/account/two-step", "/account/two-step/recovery-codes", password="wrong one!"
    )
    assert refused.status_code == 400
    assert 'id="codes_password-error"' in refused.text and "not your password" in refused.text
    with site.context.session() as db:
        hashes = set(db.scalars(select(RecoveryCode.code_hash)))
    fresh = site.submit(
        browser, "/account/two-step", "/account/two-step/recovery-codes", password=GOOD_PASSWORD
    )
    new_codes = CODE_ON_PAGE.findall(fresh.text)
    assert len(new_codes) == 10 and not set(new_codes) & set(codes)
    with site.context.session() as db:
        assert not set(db.scalars(select(RecoveryCode.code_hash))) & hashes
    old = password_step(site)
    assert type_code(site, old, codes[2], method="recovery").status_code == 400


def test_turning_the_app_off_needs_the_password_and_a_confirmation(site: Site) -> None:
    site.add_member(EMAIL)
    browser = site.browser()
    site.sign_in(browser, EMAIL)
    enrol(site, browser)
    refused = site.submit(
        browser, "/account/two-step", "/account/two-step/disable", password="not it at all"
    )
    assert refused.status_code == 400 and 'id="disable_password-error"' in refused.text
    assert member_row(site).totp_enabled_at is not None
    asked = site.submit(
        browser, "/account/two-step", "/account/two-step/disable", password=GOOD_PASSWORD
    )
    assert asked.status_code == 200 and "Turn off the authenticator app?" in asked.text
    assert GOOD_PASSWORD not in asked.text  # the confirmation carries a proof instead
    assert member_row(site).totp_enabled_at is not None
    forged = site.submit(
        browser, "/account/two-step", "/account/two-step/disable", confirmed="yes", proof="x"
    )
    assert forged.status_code == 400 and member_row(site).totp_enabled_at is not None
    proof = re.search(r'name="proof" value="([^"]+)"', asked.text).group(1)  # type: ignore[union-attr]
    done = site.submit(
        browser, "/account/two-step", "/account/two-step/disable", confirmed="yes", proof=proof
    )
    assert done.status_code == 303 and done.headers["location"].endswith("done=two-step-off")
    row = member_row(site)
    assert row.totp_enabled_at is None and row.totp_secret_sealed is None
    assert site.mailbox.wait_for_match(EMAIL, "authenticator app was turned off")
    sent = site.mailbox.count_for(EMAIL)
    password_step(site)
    assert site.mailbox.code_for(EMAIL, sent + 1)  # back to the emailed code
    with site.context.session() as db:
        actions = set(db.scalars(select(AuditEvent.action)))
    assert {"two_step.enabled", "two_step.disabled", "account.password_refused"} <= actions


def test_staff_must_enrol_when_required(site_factory: Any, sqlite_backend: Any) -> None:
    site: Site = site_factory(sqlite_backend, staff_require_totp=True)
    site.add_member("staff@example.com", staff=True)
    site.add_member(EMAIL)
    staff = site.browser()
    site.sign_in(staff, "staff@example.com")
    sent_away = staff.get("/console/members?q=x")
    assert sent_away.status_code == 303
    assert sent_away.headers["location"] == "/account/two-step?next=%2Fconsole%2Fmembers%3Fq%3Dx"
    page = staff.get(sent_away.headers["location"])
    assert "Staff pages on this service need an authenticator app" in page.text
    api = staff.get("/api/v1/staff/requests")
    assert api.status_code == 403 and api.json()["error"] == "two_step_required"
    # Members are not asked; staff are let in once the app is on.
    member = site.browser()
    site.sign_in(member, EMAIL)
    assert member.get("/account").status_code == 200
    enrol(site, staff)
    assert staff.get("/console").status_code == 200
    assert staff.get("/api/v1/staff/requests").status_code == 200


def test_staff_are_not_asked_by_default(site: Site) -> None:
    site.add_member("staff@example.com", staff=True)
    staff = site.browser()
    site.sign_in(staff, "staff@example.com")
    assert staff.get("/console").status_code == 200


def test_a_remembered_browser_skips_the_app_unless_asked_to_verify(site: Site) -> None:
    secret, _codes = enrolled_member(site)
    browser = password_step(site)
    assert type_code(site, browser, next_code(secret), remember="1").status_code == 303
    browser.cookies.delete(SESSION_COOKIE)
    sent = site.mailbox.count_for(EMAIL)
    again = site.start_sign_in(browser, EMAIL)
    assert again.status_code == 303 and again.headers["location"] == "/account"
    browser.cookies.delete(SESSION_COOKIE)
    verify = site.start_sign_in(browser, EMAIL, verify="1")
    assert verify.headers["location"] == "/signin/code"
    assert "Enter the code from your app" in browser.get("/signin/code").text
    time.sleep(0.3)
    assert site.mailbox.count_for(EMAIL) == sent  # the app's code, never a mail


def test_no_emailed_code_can_replace_the_app(site: Site) -> None:
    """'Send a new code' is for the emailed code; for an app challenge it would mail a
    code that skips the authenticator app, so it is refused and the challenge is kept."""
    secret, _codes = enrolled_member(site)
    sent = site.mailbox.count_for(EMAIL)
    browser = password_step(site)
    assert "Send a new code" not in browser.get("/signin/code").text
    resent = site.submit(browser, "/signin/code", "/signin/code/resend")
    assert resent.status_code == 400
    assert "authenticator app makes the codes" in resent.text
    assert "Retry-After" not in resent.headers
    time.sleep(0.3)
    assert site.mailbox.count_for(EMAIL) == sent
    done = type_code(site, browser, next_code(secret))
    assert done.status_code == 303 and done.headers["location"] == "/account"
