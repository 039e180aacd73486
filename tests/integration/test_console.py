"""Staff pages: refused to members, audit log filters, recent mail."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import Site

STAFF = "staff@example.com"
MEMBER = "member@example.com"


@pytest.mark.parametrize(
    "path", ["/console", "/console/audit", "/console/mail", "/console/members"]
)
def test_staff_pages_are_refused_to_members_and_need_sign_in(sqlite_site: Site, path: str) -> None:
    sqlite_site.add_member(MEMBER)
    anonymous = sqlite_site.browser().get(path)
    assert anonymous.status_code == 303
    assert anonymous.headers["location"].startswith("/signin?next=")
    browser = sqlite_site.browser()
    sqlite_site.sign_in(browser, MEMBER)
    refused = browser.get(path)
    assert refused.status_code == 403
    assert "This page is for staff" in refused.text


def test_audit_log_records_and_filters(sqlite_site: Site) -> None:
    sqlite_site.add_member(STAFF, staff=True)
    sqlite_site.add_member(MEMBER)
    sqlite_site.start_sign_in(sqlite_site.browser(), MEMBER, "wrong password here")
    staff = sqlite_site.browser()
    sqlite_site.sign_in(staff, STAFF)
    everything = staff.get("/console/audit")
    assert everything.status_code == 200
    for action in ("member.created", "signin.failed", "signin.code_sent", "signin.succeeded"):
        assert action in everything.text
    failed_only = staff.get("/console/audit", params={"action": "signin.failed"})
    assert "signin.failed" in failed_only.text
    assert "signin.succeeded" not in failed_only.text
    by_actor = staff.get("/console/audit", params={"actor": MEMBER})
    assert STAFF not in by_actor.text.split("<tbody>")[1]
    assert "testclient" in everything.text  # the client IP is recorded


def test_audit_filter_with_a_bad_date_says_so_beside_it(sqlite_site: Site) -> None:
    sqlite_site.add_member(STAFF, staff=True)
    staff = sqlite_site.browser()
    sqlite_site.sign_in(staff, STAFF)
    response = staff.get("/console/audit", params={"since": "yesterday"})
    assert response.status_code == 400
    assert 'id="since-error"' in response.text
    assert "&#39;yesterday&#39; is not a date; use YYYY-MM-DD." in response.text


def test_mail_page_hides_bodies_when_smtp_delivers(sqlite_site: Site) -> None:
    sqlite_site.add_member(STAFF, staff=True)
    staff = sqlite_site.browser()
    sqlite_site.sign_in(staff, STAFF)
    page = staff.get("/console/mail")
    assert "Your Pitpass sign-in code" in page.text
    assert ">Sent<" in page.text
    assert sqlite_site.mailbox.code_for(STAFF) not in page.text


def test_members_page_lists_accounts(sqlite_site: Site) -> None:
    sqlite_site.add_member(STAFF, staff=True)
    sqlite_site.add_member(MEMBER, name="Casey Kart")
    staff = sqlite_site.browser()
    sqlite_site.sign_in(staff, STAFF)
    page: Any = staff.get("/console/members")
    assert "Casey Kart" in page.text
    assert "email not confirmed" in page.text
