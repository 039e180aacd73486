"""Staff managing members in the console (issue #12, item 7): search, a member's page,
disable and enable, grant and remove staff; every change audited with actor and reason."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from pitpass.core.masking import mask_secret
from pitpass.db.models import (
    AuditEvent,
    Member,
    OAuthSession,
    RecoveryCode,
    RegistrationRequest,
    utcnow,
)
from pitpass.services import member_admin
from pitpass.services.errors import ServiceError
from tests.conftest import GOOD_PASSWORD, Site
from tests.integration.test_two_step import enrol
from tests.support import Provisioner

STAFF = "staff@example.com"
OTHER_STAFF = "second@example.com"
MEMBER = "ana@example.com"


def staff_browser(site: Site, email: str = STAFF) -> TestClient:
    browser = site.browser()
    site.sign_in(browser, email)
    return browser


def member_row(site: Site, email: str) -> Member:
    with site.context.session() as db:
        member = db.scalar(select(Member).where(Member.email == email))
        assert member is not None
        db.expunge(member)
        return member


def post_action(site: Site, browser: TestClient, member_id: int, action: str, **fields: str) -> Any:
    return site.submit(
        browser, f"/console/members/{member_id}", f"/console/members/{member_id}/{action}", **fields
    )


def events(site: Site, action: str) -> list[AuditEvent]:
    with site.context.session() as db:
        rows = list(db.scalars(select(AuditEvent).where(AuditEvent.action == action)))
        for row in rows:
            db.expunge(row)
        return rows


def password_limited_tokens(site: Site, email: str) -> tuple[str, str, dict[str, Any]]:
    """A client on whose access list `email` is, and tokens for `email` from it."""
    provision = Provisioner(site.context)
    client_id, secret = provision.client(STAFF, "Headless Tool", flows=["password_limited"])
    assert secret
    provision.add_to_access_list(client_id, email, STAFF)
    masked = mask_secret(secret, client_id)
    tokens = site.browser().post(
        "/oauth2/token",
        data={
            "grant_type": "password_limited",
            "client_id": client_id,
            "client_secret": masked,
            "username": email,
            "password": mask_secret(GOOD_PASSWORD, email),
            "scope": "iracing.auth iracing.profile",
        },
    )
    assert tokens.status_code == 200, tokens.text
    return client_id, masked, tokens.json()


# ----- who may see the pages ------------------------------------------------------------


def test_member_pages_are_for_staff_only(sqlite_site: Site) -> None:
    sqlite_site.add_member(STAFF, staff=True)
    target = sqlite_site.add_member(MEMBER)
    path = f"/console/members/{target.id}"
    anonymous = sqlite_site.browser().get(path)
    assert anonymous.status_code == 303
    assert anonymous.headers["location"].startswith("/signin?next=")
    member = sqlite_site.browser()
    sqlite_site.sign_in(member, MEMBER)
    assert member.get(path).status_code == 403
    assert member.get("/console/members?q=ana").status_code == 403
    # A member's own CSRF token does not make them staff.
    refused = sqlite_site.submit(member, "/account", f"{path}/grant-staff", reason="me")
    assert refused.status_code == 403
    assert member_row(sqlite_site, MEMBER).is_staff is False


@pytest.mark.parametrize(
    "path",
    [
        "/console/members/0",
        "/console/members/999",
        "/console/members/2147483648",
        "/console/members/-1",
        "/console/members/abc",
        "/console/members/1.5",
    ],
)
def test_bad_member_ids_are_404(sqlite_site: Site, path: str) -> None:
    sqlite_site.add_member(STAFF, staff=True)
    assert staff_browser(sqlite_site).get(path).status_code == 404


def test_actions_on_a_missing_member_or_an_unknown_action_are_404(sqlite_site: Site) -> None:
    sqlite_site.add_member(STAFF, staff=True)
    target = sqlite_site.add_member(MEMBER)
    staff = staff_browser(sqlite_site)
    missing = sqlite_site.submit(staff, "/console", "/console/members/999/disable", reason="x")
    assert missing.status_code == 404
    unknown = post_action(sqlite_site, staff, target.id, "delete", reason="x")
    assert unknown.status_code == 404
    assert member_row(sqlite_site, MEMBER).is_disabled is False


# ----- search -------------------------------------------------------------------------------


def test_search_by_email_name_or_customer_id(sqlite_site: Site) -> None:
    sqlite_site.add_member(STAFF, staff=True, name="Sam Staff")
    ana = sqlite_site.add_member(MEMBER, name="Ana Kart")
    sqlite_site.add_member("bo@example.org", name="Bo 50% Racer")
    staff = staff_browser(sqlite_site)

    def found(q: str) -> str:
        page = staff.get("/console/members", params={"q": q})
        assert page.status_code == 200, page.text
        return page.text.split('id="members"')[1]

    assert MEMBER in found("ANA@EXAMPLE") and "bo@example.org" not in found("ana@")
    assert MEMBER in found("kart") and STAFF not in found("kart")
    assert MEMBER in found(str(ana.customer_id)) and STAFF not in found(str(ana.customer_id))
    # LIKE's wildcards are literal characters here.
    assert "bo@example.org" in found("50%") and MEMBER not in found("50%")
    assert "No member matches." in found("_")
    assert "No member matches." in found("nobody-at-all")
    everyone = found("")
    assert MEMBER in everyone and STAFF in everyone
    assert f'href="/console/members/{ana.id}"' in everyone


@pytest.mark.parametrize(
    "q",
    ["ana\x00@example.com", "\x00", "a" * 5000, "x\x1by", "9" * 40, "%", "'; DROP TABLE", "²", "٣"],
)
def test_search_with_odd_input_is_a_4xx_or_an_empty_result(site: Site, q: str) -> None:
    site.add_member(STAFF, staff=True)
    site.add_member(MEMBER)
    page = staff_browser(site).get("/console/members", params={"q": q})
    assert page.status_code in (200, 400), page.text
    if "\x00" in q:  # refused before any route (middleware.py)
        assert page.status_code == 400
    elif page.status_code == 400:
        assert 'id="q-error"' in page.text and 'aria-invalid="true"' in page.text
    else:
        assert MEMBER not in page.text.split('id="members"')[1]


def test_search_pages_are_bounded(sqlite_site: Site) -> None:
    sqlite_site.add_member(STAFF, staff=True)
    staff = staff_browser(sqlite_site)
    for page in ("0", "-5", "99999999999999999999"):
        assert staff.get("/console/members", params={"page": page}).status_code == 200
    assert staff.get("/console/members", params={"page": "two"}).status_code == 400


# ----- disable and enable -------------------------------------------------------------------


def test_disable_asks_once_then_signs_out_everything_and_tokens_go_inactive(site: Site) -> None:
    site.add_member(STAFF, staff=True)
    target = site.add_member(MEMBER)
    client_id, secret, tokens = password_limited_tokens(site, MEMBER)
    bearer = {"Authorization": f"Bearer {tokens['access_token']}"}
    assert site.browser().get("/oauth2/iracing/profile", headers=bearer).status_code == 200
    member_browser = site.browser()
    site.sign_in(member_browser, MEMBER)
    assert member_browser.get("/account").status_code == 200
    staff = staff_browser(site)

    page = staff.get(f"/console/members/{target.id}")
    assert "Headless Tool" in page.text  # the live OAuth session
    assert "No live session." not in page.text.split('id="member-web-sessions"')[1][:600]

    no_reason = post_action(site, staff, target.id, "disable", reason="   ")
    assert no_reason.status_code == 400
    assert 'id="reason-error"' in no_reason.text and "Say why" in no_reason.text
    asked = post_action(site, staff, target.id, "disable", reason="spam bot")
    assert asked.status_code == 200
    assert f"Disable {MEMBER}?" in asked.text and 'name="confirmed"' in asked.text
    assert member_row(site, MEMBER).is_disabled is False  # nothing yet

    done = post_action(site, staff, target.id, "disable", reason="spam bot", confirmed="yes")
    assert done.status_code == 303
    assert done.headers["location"] == f"/console/members/{target.id}?done=member-disabled"
    assert "Account disabled" in staff.get(done.headers["location"]).text

    assert member_row(site, MEMBER).is_disabled is True
    assert member_browser.get("/account").status_code == 303  # signed out of Pitpass
    introspected = site.browser().post(
        "/oauth2/introspect",
        data={"token": tokens["access_token"], "client_id": client_id, "client_secret": secret},
    )
    assert introspected.json() == {"active": False}
    assert site.browser().get("/oauth2/iracing/profile", headers=bearer).status_code == 401
    refreshed = site.browser().post(
        "/oauth2/token",
        data={
            "grant_type": "refresh_token",
            "client_id": client_id,
            "client_secret": secret,
            "refresh_token": tokens["refresh_token"],
        },
    )
    assert refreshed.status_code == 400
    with site.context.session() as db:
        reasons = {s.revoked_reason for s in db.scalars(select(OAuthSession))}
    assert reasons == {"member_disabled"}
    [event] = events(site, "member.disabled")
    assert event.actor == STAFF and event.target_id == str(target.customer_id)
    assert event.details["reason"] == "spam bot" and event.details["oauth_sessions"] == 1

    enabled = post_action(site, staff, target.id, "enable", reason="appeal accepted")
    assert enabled.headers["location"].endswith("?done=member-enabled")
    assert member_row(site, MEMBER).is_disabled is False
    [event] = events(site, "member.enabled")
    assert event.actor == STAFF and event.details["reason"] == "appeal accepted"
    # The old sessions stay ended: the member signs in afresh.
    assert site.browser().get("/oauth2/iracing/profile", headers=bearer).status_code == 401
    assert "appeal accepted" in staff.get(f"/console/members/{target.id}").text


def test_a_staff_member_cannot_disable_themself_or_drop_their_own_staff(
    sqlite_site: Site,
) -> None:
    me = sqlite_site.add_member(STAFF, staff=True)
    sqlite_site.add_member(OTHER_STAFF, staff=True)
    staff = staff_browser(sqlite_site)
    own_page = staff.get(f"/console/members/{me.id}").text
    assert "Disable the account" not in own_page and "Remove staff" not in own_page
    disabled = post_action(sqlite_site, staff, me.id, "disable", reason="x", confirmed="yes")
    assert disabled.status_code == 400
    assert "You cannot disable your own account" in disabled.text
    dropped = post_action(sqlite_site, staff, me.id, "remove-staff", reason="x", confirmed="yes")
    assert dropped.status_code == 400
    assert "You cannot remove your own staff flag" in dropped.text
    row = member_row(sqlite_site, STAFF)
    assert row.is_staff and not row.is_disabled
    assert not events(sqlite_site, "member.disabled") + events(sqlite_site, "member.staff_removed")


def test_grant_and_remove_staff(sqlite_site: Site) -> None:
    sqlite_site.add_member(STAFF, staff=True)
    target = sqlite_site.add_member(MEMBER)
    staff = staff_browser(sqlite_site)
    member = sqlite_site.browser()
    sqlite_site.sign_in(member, MEMBER)
    assert member.get("/console").status_code == 403

    granted = post_action(sqlite_site, staff, target.id, "grant-staff", reason="new hire")
    assert granted.headers["location"].endswith("?done=staff-granted")
    assert member.get("/console").status_code == 200
    again = post_action(sqlite_site, staff, target.id, "grant-staff", reason="twice")
    assert again.status_code == 400 and "is already staff" in again.text

    asked = post_action(sqlite_site, staff, target.id, "remove-staff", reason="left the team")
    assert asked.status_code == 200 and f"Remove staff from {MEMBER}?" in asked.text
    assert member_row(sqlite_site, MEMBER).is_staff is True
    removed = post_action(
        sqlite_site, staff, target.id, "remove-staff", reason="left the team", confirmed="yes"
    )
    assert removed.headers["location"].endswith("?done=staff-removed")
    assert member.get("/console").status_code == 403
    [grant] = events(sqlite_site, "member.staff_granted")
    [removal] = events(sqlite_site, "member.staff_removed")
    assert (grant.actor, grant.details["reason"]) == (STAFF, "new hire")
    assert (removal.actor, removal.details["reason"]) == (STAFF, "left the team")


def test_the_last_enabled_staff_member_keeps_staff(site: Site) -> None:
    site.add_member(STAFF, staff=True)
    site.add_member(OTHER_STAFF, staff=True)
    with site.context.session() as db:
        me = db.scalar(select(Member).where(Member.email == STAFF))
        other = db.scalar(select(Member).where(Member.email == OTHER_STAFF))
        assert me and other
        member_admin.disable(db, other, me, "left")
    with site.context.session() as db:
        me = db.scalar(select(Member).where(Member.email == STAFF))
        assert me
        for action in ("remove-staff", "disable"):
            with pytest.raises(ServiceError) as refused:
                member_admin.act(site.context, db, me, me, action, "testing")
            assert "the last enabled staff member" in refused.value.errors["member"]
            assert "Grant staff to someone else first" in refused.value.errors["member"]
    assert member_row(site, STAFF).is_staff is True


def _staff_pair(db: Session) -> tuple[Member, Member]:
    first = db.scalar(select(Member).where(Member.email == STAFF))
    second = db.scalar(select(Member).where(Member.email == OTHER_STAFF))
    assert first and second
    return first, second


def test_two_staff_removing_each_other_at_once_leave_one(site: Site) -> None:
    """The enabled staff are read FOR UPDATE: the second removal waits for the first,
    then sees itself the last (PostgreSQL); SQLite's one writer refuses it outright."""
    site.add_member(STAFF, staff=True)
    site.add_member(OTHER_STAFF, staff=True)
    outcome: list[object] = []

    def second_removal() -> None:
        try:
            with site.context.session() as db:
                me, other = _staff_pair(db)
                member_admin.set_staff(db, me, other, False, "race")
            outcome.append("removed")
        except Exception as error:
            outcome.append(error)

    with site.context.session_factory() as first, first.begin():
        me, other = _staff_pair(first)
        member_admin.set_staff(first, other, me, False, "race")
        first.flush()  # written, not yet committed
        racer = threading.Thread(target=second_removal)
        if site.context.engine.dialect.name != "postgresql":
            racer.start()
        else:
            # This database only (others run other tests), and the watcher connected before
            # the racer starts: the first commits as soon as the second waits on its lock,
            # well within the statement timeout even on a loaded machine.
            waiting = (
                "SELECT count(*) FROM pg_stat_activity"
                " WHERE wait_event_type = 'Lock' AND datname = current_database()"
            )
            deadline = time.monotonic() + 15
            with site.context.engine.connect() as watcher:
                racer.start()
                while time.monotonic() < deadline:
                    seen = watcher.execute(text(waiting)).scalar()
                    watcher.rollback()  # pg_stat_activity is a snapshot per transaction
                    if seen:
                        break
                    racer.join(0.01)
    racer.join(30)
    assert outcome and outcome[0] != "removed", outcome
    if site.context.engine.dialect.name == "postgresql":
        assert isinstance(outcome[0], ServiceError)
        assert "last enabled staff member" in outcome[0].errors["member"]
    with site.context.session() as db:
        staff_left = db.scalar(select(func.count()).where(Member.is_staff.is_(True)))
    assert staff_left == 1


def test_the_write_itself_keeps_one_staff_when_the_check_read_stale_rows(
    site: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Between the check's read and the write another staff member may go (SQLite's reads
    hold no snapshot and it has no FOR UPDATE): the write's own condition refuses."""
    site.add_member(STAFF, staff=True)
    site.add_member(OTHER_STAFF, staff=True)
    with site.context.session_factory() as late, late.begin():
        me, other = _staff_pair(late)  # read while both are staff
        with site.context.session() as db:
            first, second = _staff_pair(db)
            member_admin.set_staff(db, second, first, False, "moved on")
        monkeypatch.setattr(member_admin, "keep_one_staff", lambda *_args: None)
        with pytest.raises(ServiceError) as refused:
            member_admin.set_staff(late, me, other, False, "stale")
        assert "last enabled staff member" in refused.value.errors["member"]
    assert member_row(site, STAFF).is_staff is True


def test_a_reason_is_required_and_bounded(sqlite_site: Site) -> None:
    sqlite_site.add_member(STAFF, staff=True)
    target = sqlite_site.add_member(MEMBER)
    staff = staff_browser(sqlite_site)
    for reason, message in (("", "Say why"), ("x" * 501, "at most 500"), ("a\x1bb", "plain")):
        refused = post_action(sqlite_site, staff, target.id, "grant-staff", reason=reason)
        assert refused.status_code == 400
        assert message in refused.text and 'aria-describedby="reason-error"' in refused.text
    assert member_row(sqlite_site, MEMBER).is_staff is False


# ----- the console home ---------------------------------------------------------------------


def test_console_home_counts_the_queue(sqlite_site: Site) -> None:
    from datetime import timedelta

    staff_member = sqlite_site.add_member(STAFF, staff=True)
    now = utcnow()
    with sqlite_site.context.session() as db:
        for name, submitted_days_ago, status in (
            ("Overdue One", 12, "submitted"),
            ("Due Soon", 9, "submitted"),
            ("Fresh", 1, "submitted"),
            ("Back With Developer", 11, "changes_requested"),
        ):
            submitted = now - timedelta(days=submitted_days_ago)
            db.add(
                RegistrationRequest(
                    requester_id=staff_member.id,
                    status=status,
                    client_name=name,
                    client_type="server-side",
                    flows=["authorization_code"],
                    developer_email="dev@example.com",
                    redirect_uris=["https://app.example/cb"],
                    audiences=[],
                    submitted_at=submitted,
                    due_at=submitted + timedelta(days=10),
                )
            )
    home = staff_browser(sqlite_site).get("/console").text
    assert 'id="count-waiting">3<' in home
    assert 'id="count-due-soon">1<' in home
    assert 'id="count-overdue">1<' in home
    oldest = home.split('id="oldest-requests"')[1].split("</ol>")[0]
    assert oldest.index("Overdue One") < oldest.index("Due Soon") < oldest.index("Fresh")
    assert "Back With Developer" not in oldest
    for link in (
        "/console/requests",
        "/console/clients",
        "/console/members",
        "/console/audit",
        "/console/mail",
    ):
        assert f'href="{link}"' in home


def test_a_deleted_account_cannot_be_made_staff(sqlite_site: Site) -> None:
    sqlite_site.add_member(STAFF, staff=True)
    sqlite_site.add_member(MEMBER)
    with sqlite_site.context.session() as db:
        me = db.scalar(select(Member).where(Member.email == STAFF))
        gone = db.scalar(select(Member).where(Member.email == MEMBER))
        assert me and gone
        gone.deleted_at = gone.created_at
        with pytest.raises(ServiceError) as refused:
            member_admin.check(db, gone, me, "grant-staff", "testing")
        assert "deleted by its member" in refused.value.errors["member"]


def test_staff_turn_off_a_lost_authenticator_app(site: Site) -> None:
    """A member who lost the phone and the recovery codes: staff turn the app off, with a
    reason and a confirmation step; the member is told and signs in with a mailed code."""
    site.add_member(STAFF, staff=True)
    target = site.add_member(MEMBER)
    member_browser = site.browser()
    site.sign_in(member_browser, MEMBER)
    enrol(site, member_browser)
    staff = staff_browser(site)
    assert "Turn off the authenticator app" in staff.get(f"/console/members/{target.id}").text

    no_reason = post_action(site, staff, target.id, "clear-two-step", reason="")
    assert no_reason.status_code == 400 and 'id="reason-error"' in no_reason.text
    asked = post_action(site, staff, target.id, "clear-two-step", reason="lost phone, id checked")
    assert asked.status_code == 200 and 'name="confirmed"' in asked.text
    assert member_row(site, MEMBER).totp_enabled_at is not None  # nothing yet
    done = post_action(
        site, staff, target.id, "clear-two-step", reason="lost phone, id checked", confirmed="yes"
    )
    assert done.status_code == 303
    assert done.headers["location"].endswith("?done=two-step-cleared")
    row = member_row(site, MEMBER)
    assert row.totp_enabled_at is None and row.totp_secret_sealed is None
    with site.context.session() as db:
        assert not db.scalars(select(RecoveryCode).where(RecoveryCode.member_id == row.id)).all()
    (event,) = events(site, "member.two_step_cleared")
    assert event.actor == STAFF and event.details["reason"] == "lost phone, id checked"
    site.mailbox.wait_for_match(MEMBER, r"Staff turned off the authenticator app")
    sent = site.mailbox.count_for(MEMBER)
    assert site.start_sign_in(site.browser(), MEMBER).status_code == 303
    assert site.mailbox.code_for(MEMBER, sent + 1)  # the emailed code again
    again = post_action(site, staff, target.id, "clear-two-step", reason="twice")
    assert again.status_code == 400 and "has no authenticator app" in again.text


def test_staff_cannot_clear_their_own_app_or_one_only_half_set_up(site: Site) -> None:
    """Their own goes through the account page's password step; a set-up never finished
    is no app to turn off (sign-in still mails a code)."""
    me = site.add_member(STAFF, staff=True)
    half = site.add_member(MEMBER)
    staff = staff_browser(site)
    enrol(site, staff)
    own = post_action(site, staff, me.id, "clear-two-step", reason="testing")
    assert own.status_code == 400 and "on your account page" in own.text
    assert "Turn off the authenticator app" not in staff.get(f"/console/members/{me.id}").text
    member_browser = site.browser()
    site.sign_in(member_browser, MEMBER)
    start = "/account/two-step/start"
    site.submit(member_browser, "/account/two-step", start, password=GOOD_PASSWORD)
    assert member_row(site, MEMBER).totp_secret_sealed is not None  # started, not confirmed
    assert "Turn off the authenticator app" not in staff.get(f"/console/members/{half.id}").text
    refused = post_action(site, staff, half.id, "clear-two-step", reason="testing")
    assert refused.status_code == 400 and "has no authenticator app" in refused.text
