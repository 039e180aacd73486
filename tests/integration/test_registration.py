"""The developer program through its pages (issue #3), on both storage backends."""

from __future__ import annotations

import logging
import re
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select, update

from pitpass.core.masking import mask_secret
from pitpass.db.models import (
    AccessListEntry,
    Client,
    ClientSecret,
    MailMessage,
    Member,
    RegistrationRequest,
    utcnow,
)
from pitpass.services import client_secrets, request_queue
from pitpass.services import clients as clients_service
from tests.conftest import Site
from tests.support import dump_database

DEV = "dev@example.com"
STAFF = "staff@example.com"

LEAGUE = {
    "client_name": "My League Manager",
    "client_type": "server-side",
    "flows": ["authorization_code"],
    "description": "league manager website",
    "developer_name": "My Racing League Inc.",
    "developer_url": "https://www.myleague.com",
    "developer_email": "developer@example.com",
    "redirect_uris": "https://www.myleague.com/oauth/callback\n"
    "https://staging.myleague.com/oauth/callback",
    "audiences": ["data-server"],
}
DATA_TOOL = {
    "client_name": "My Sim Data Tool",
    "client_type": "server-side",
    "flows": ["password_limited"],
    "description": "discord-bot",
    "developer_email": "developer@example.com",
    "audiences": ["data-server"],
}
SPA = LEAGUE | {
    "client_name": "Lap Chart SPA",
    "client_type": "single-page-app",
    "redirect_uris": "https://laps.example/callback",
}


@pytest.fixture
def people(site: Site) -> tuple[TestClient, TestClient]:
    site.add_member(DEV, name="Dana Dev")
    site.add_member(STAFF, staff=True, name="Sam Staff")
    developer, staff = site.browser(), site.browser()
    site.sign_in(developer, DEV)
    site.sign_in(staff, STAFF)
    return developer, staff


def submit(site: Site, browser: TestClient, fields: dict[str, Any]) -> Any:
    page = browser.get("/portal/requests/new")
    return browser.post("/portal/requests/new", data={"csrf_token": site.csrf_of(page), **fields})


def request_id_of(response: Any) -> int:
    assert response.status_code == 303, response.text
    return int(response.headers["location"].split("?")[0].rsplit("/", 1)[1])


def decide(site: Site, staff: TestClient, request_id: int, decision: str, message: str = "") -> Any:
    page = staff.get(f"/console/requests/{request_id}")
    return staff.post(
        f"/console/requests/{request_id}/{decision}",
        # Past the confirmation step a rejection asks for (test_developer_program.py tests it).
        data={"csrf_token": site.csrf_of(page), "message": message, "confirmed": "yes"},
    )


def approve(site: Site, staff: TestClient, fields: dict[str, Any], developer: TestClient) -> str:
    request_id = request_id_of(submit(site, developer, fields))
    assert decide(site, staff, request_id, "approve").status_code == 303
    with site.context.session() as db:
        item = db.get(RegistrationRequest, request_id)
        assert item is not None and item.client_pk is not None
        client = db.get(Client, item.client_pk)
        assert client is not None
        return client.client_id


def reveal_link(site: Site, client_id: str) -> str:
    match = site.mailbox.wait_for_match(
        DEV, rf"client_id: {client_id}\s[\s\S]*?/portal/secret/(\S+)"
    )
    return match.group(1)


def post_form(site: Site, browser: TestClient, page: str, action: str, **fields: str) -> Any:
    return browser.post(action, data={"csrf_token": site.csrf_of(browser.get(page)), **fields})


def count(site: Site, model: Any) -> int:
    with site.context.session() as db:
        return int(db.scalar(select(func.count()).select_from(model)) or 0)


def test_both_templates_prefill_the_seed_requests(site: Site, people: Any) -> None:
    developer, _ = people
    league = developer.get("/portal/requests/new?template=league-manager")
    assert "https://staging.myleague.com/oauth/callback" in league.text
    assert 'value="My Racing League Inc."' in league.text
    tool = developer.get("/portal/requests/new?template=data-tool")
    assert 'value="My Sim Data Tool"' in tool.text
    assert 'value="password_limited" checked' in tool.text


def test_submitting_records_a_due_date_and_mails_the_requester(site: Site, people: Any) -> None:
    developer, staff = people
    request_id = request_id_of(submit(site, developer, LEAGUE))
    with site.context.session() as db:
        item = db.get(RegistrationRequest, request_id)
        assert item is not None
        assert item.status == "submitted"
        assert item.due_at - item.submitted_at == timedelta(days=10)
    assert "was received" in site.mailbox.wait_for(DEV, count=2)["Subject"]
    page = developer.get(f"/portal/requests/{request_id}")
    assert "submitted" in page.text
    queue = staff.get("/console/requests")
    assert "My League Manager" in queue.text


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        (
            {"redirect_uris": "https://www.myleague.com/cb#top"},
            "redirect_uris-0",
            "Redirect URI 1 (https://www.myleague.com/cb#top): "
            "a redirect URI must not contain a fragment: remove &#39;#top&#39;",
        ),
        (
            {"redirect_uris": "https://www.myleague.com"},
            "redirect_uris-0",
            "at least three slashes",
        ),
        ({"client_name": "iRacer Tools"}, "client_name", "must not imitate the platform"),
        ({"developer_url": "http://www.myleague.com"}, "developer_url", "must be an https URL"),
        ({"developer_name": ""}, "developer_name", "enter the developer&#39;s name"),
        (
            {"flows": ["password_limited"], "client_type": "native"},
            "flows",
            "password_limited needs a server-side client",
        ),
        ({"redirect_uris": ""}, "redirect_uris", "add at least one redirect URI"),
        ({"audiences": ["members-api"]}, "audiences", "unknown audience &#39;members-api&#39;"),
        ({"client_type": "desktop"}, "client_type", "choose the client type"),
    ],
)
def test_bad_fields_are_refused_beside_the_field_and_nothing_is_stored(
    site: Site, people: Any, changes: dict[str, Any], field: str, message: str
) -> None:
    developer, _ = people
    response = submit(site, developer, LEAGUE | changes)
    assert response.status_code == 400
    error = re.search(rf'id="{field}-error">([^<]*)<', response.text)
    assert error, response.text
    assert message in error.group(1)
    assert count(site, RegistrationRequest) == 0


def test_an_unknown_type_is_one_error_not_also_a_flow_error(site: Site, people: Any) -> None:
    """Only a known public type makes password_limited wrong; an unknown type is its own error."""
    developer, _ = people
    response = submit(site, developer, DATA_TOOL | {"client_type": "desktop"})
    assert response.status_code == 400
    assert 'id="client_type-error"' in response.text
    assert 'id="flows-error"' not in response.text


def test_password_limited_only_needs_no_developer_url_or_redirect(site: Site, people: Any) -> None:
    developer, _ = people
    request_id = request_id_of(submit(site, developer, DATA_TOOL))
    assert request_id > 0


def test_near_miss_names_are_flagged_for_staff_not_blocked(site: Site, people: Any) -> None:
    developer, staff = people
    request_id = request_id_of(submit(site, developer, LEAGUE | {"client_name": "MyiRacing Hub"}))
    review = staff.get(f"/console/requests/{request_id}")
    assert "warning" in review.text
    assert "appears inside the name" in review.text


def test_approval_issues_a_slug_and_a_secret_shown_once(site: Site, people: Any) -> None:
    developer, staff = people
    client_id = approve(site, staff, LEAGUE, developer)
    assert client_id == "my-league-manager"
    page = developer.get(f"/portal/clients/{client_id}")
    assert "Show the secret once" in page.text
    shown = post_form(
        site, developer, f"/portal/clients/{client_id}", f"/portal/clients/{client_id}/reveal"
    )
    secret = re.search(r'id="client-secret">([^<]+)<', shown.text)
    assert secret and len(secret.group(1)) >= 43  # 256 bits, URL-safe base64
    again = post_form(
        site, developer, f"/portal/clients/{client_id}", f"/portal/clients/{client_id}/reveal"
    )
    assert again.status_code == 409
    assert "already viewed" in again.text
    # The emailed link now says when and where it was viewed.
    token = reveal_link(site, client_id)
    late = post_form(site, developer, f"/portal/secret/{token}", f"/portal/secret/{token}")
    assert late.status_code == 410
    assert "already viewed on" in late.text and "in the portal" in late.text
    # What is stored verifies the masked secret, as the token endpoint will.
    with site.context.session() as db:
        stored = db.scalar(select(ClientSecret.secret_hash))
    masked = mask_secret(secret.group(1), client_id)
    assert stored == client_secrets.secret_hash(site.context, masked)


def test_emailed_link_works_once_and_only_for_the_owner(site: Site, people: Any) -> None:
    developer, staff = people
    client_id = approve(site, staff, DATA_TOOL, developer)
    token = reveal_link(site, client_id)
    landing = developer.get(f"/portal/secret/{token}")
    assert "Show the secret once" in landing.text  # a GET shows a button, not the secret
    assert 'id="client-secret"' not in landing.text
    stranger = site.browser()
    site.add_member("other@example.com")
    site.sign_in(stranger, "other@example.com")
    refused = post_form(site, stranger, f"/portal/secret/{token}", f"/portal/secret/{token}")
    assert "belongs to another account" in refused.text
    shown = post_form(site, developer, f"/portal/secret/{token}", f"/portal/secret/{token}")
    assert 'id="client-secret"' in shown.text
    second = post_form(site, developer, f"/portal/secret/{token}", f"/portal/secret/{token}")
    assert second.status_code == 410
    assert "through the emailed link" in second.text
    with site.context.session() as db:
        assert db.scalar(select(ClientSecret.reveal_sealed)) is None


def test_expired_link_says_so(site: Site, people: Any) -> None:
    developer, staff = people
    client_id = approve(site, staff, DATA_TOOL, developer)
    token = reveal_link(site, client_id)
    with site.context.session() as db:
        db.execute(update(ClientSecret).values(reveal_expires_at=utcnow() - timedelta(seconds=1)))
    response = post_form(site, developer, f"/portal/secret/{token}", f"/portal/secret/{token}")
    assert response.status_code == 410
    assert "This link has expired" in response.text


def test_public_client_gets_no_secret(site: Site, people: Any) -> None:
    developer, staff = people
    client_id = approve(site, staff, SPA, developer)
    assert count(site, ClientSecret) == 0
    page = developer.get(f"/portal/clients/{client_id}")
    assert "public client: no secret, PKCE required" in page.text
    assert "Rotate the secret" not in page.text
    body = site.mailbox.wait_for(DEV, count=site.mailbox.count_for(DEV)).get_payload(decode=True)
    assert b"no secret and must use PKCE" in body  # type: ignore[operator]


def test_rotation_keeps_the_previous_secret_for_the_grace_period_only(
    site: Site, people: Any
) -> None:
    developer, staff = people
    client_id = approve(site, staff, LEAGUE, developer)
    for _ in range(3):
        rotated = post_form(
            site,
            developer,
            f"/portal/clients/{client_id}",
            f"/portal/clients/{client_id}/rotate",
            confirmed="yes",
        )
        assert 'id="client-secret"' in rotated.text
        assert "keeps working for 7 days" in rotated.text
    with site.context.session() as db:
        client = clients_service.by_client_id(db, client_id)
        assert client is not None
        live = client_secrets.live_secrets(db, client)
        assert len(live) == 2  # never more than two
        assert live[0].expires_at is None
        assert live[1].expires_at is not None
        assert timedelta(days=6) < live[1].expires_at - utcnow() <= timedelta(days=7)
    page = developer.get(f"/portal/clients/{client_id}")
    assert "Previous secret valid until" in page.text


def test_rejection_needs_a_message_and_mails_it(site: Site, people: Any) -> None:
    developer, staff = people
    request_id = request_id_of(submit(site, developer, LEAGUE))
    empty = decide(site, staff, request_id, "reject", "  ")
    assert empty.status_code == 400
    assert "write a message telling the developer why" in empty.text
    done = decide(site, staff, request_id, "reject", "Not a racing product.")
    assert done.status_code == 303
    assert "was rejected" in site.mailbox.wait_for(DEV, count=3)["Subject"]
    page = developer.get(f"/portal/requests/{request_id}")
    assert "Not a racing product." in page.text
    assert count(site, Client) == 0
    # A decided request cannot be decided again.
    again = decide(site, staff, request_id, "approve")
    assert again.status_code == 400
    assert "is rejected; it cannot be approved now" in again.text


def test_changes_requested_then_edited_and_resubmitted(site: Site, people: Any) -> None:
    developer, staff = people
    request_id = request_id_of(submit(site, developer, LEAGUE))
    decide(site, staff, request_id, "request-changes", "Add your staging redirect URI only.")
    page = developer.get(f"/portal/requests/{request_id}")
    assert "Add your staging redirect URI only." in page.text
    assert "Resubmit" in page.text
    bad = developer.post(
        f"/portal/requests/{request_id}/edit",
        data={"csrf_token": site.csrf_of(page), **(LEAGUE | {"redirect_uris": "ftp://x/"})},
    )
    assert bad.status_code == 400
    assert 'id="redirect_uris-0-error"' in bad.text
    good = developer.post(
        f"/portal/requests/{request_id}/edit",
        data={
            "csrf_token": site.csrf_of(page),
            **(LEAGUE | {"redirect_uris": "https://staging.myleague.com/oauth/callback"}),
        },
    )
    assert good.status_code == 303
    with site.context.session() as db:
        item = db.get(RegistrationRequest, request_id)
        assert item is not None
        assert item.status == "submitted"
        assert item.redirect_uris == ["https://staging.myleague.com/oauth/callback"]
    history = developer.get(f"/portal/requests/{request_id}").text
    assert history.index("submitted by") < history.index("changes requested by")
    assert history.index("changes requested by") < history.index("resubmitted by")


def test_withdrawing_an_open_request(site: Site, people: Any) -> None:
    developer, staff = people
    request_id = request_id_of(submit(site, developer, LEAGUE))
    page = developer.get(f"/portal/requests/{request_id}")
    withdrawn = developer.post(
        f"/portal/requests/{request_id}/withdraw", data={"csrf_token": site.csrf_of(page)}
    )
    assert withdrawn.status_code == 303
    assert "withdrawn" in developer.get(f"/portal/requests/{request_id}").text
    assert decide(site, staff, request_id, "approve").status_code == 400


def test_other_members_cannot_see_my_requests_or_clients(site: Site, people: Any) -> None:
    developer, staff = people
    request_id = request_id_of(submit(site, developer, LEAGUE))
    decide(site, staff, request_id, "approve")
    stranger = site.browser()
    site.add_member("nosy@example.com")
    site.sign_in(stranger, "nosy@example.com")
    assert stranger.get(f"/portal/requests/{request_id}").status_code == 404
    assert stranger.get("/portal/clients/my-league-manager").status_code == 404
    assert stranger.get("/console/requests").status_code == 403


def test_change_request_keeps_the_live_client_until_approved(site: Site, people: Any) -> None:
    developer, staff = people
    client_id = approve(site, staff, LEAGUE, developer)
    page = developer.get(f"/portal/clients/{client_id}/change")
    changed = LEAGUE | {"redirect_uris": "https://www.myleague.com/oauth/v2/callback"}
    response = developer.post(
        f"/portal/clients/{client_id}/change", data={"csrf_token": site.csrf_of(page), **changed}
    )
    change_id = request_id_of(response)
    with site.context.session() as db:
        client = clients_service.by_client_id(db, client_id)
        assert client is not None
        assert "https://www.myleague.com/oauth/callback" in client.redirect_uris
    assert decide(site, staff, change_id, "approve").status_code == 303
    with site.context.session() as db:
        client = clients_service.by_client_id(db, client_id)
        assert client is not None
        assert client.redirect_uris == ["https://www.myleague.com/oauth/v2/callback"]
        assert db.scalar(select(func.count()).select_from(ClientSecret)) == 1  # no new secret


def test_names_are_unique_among_live_clients_and_ids_never_reused(site: Site, people: Any) -> None:
    developer, staff = people
    approve(site, staff, LEAGUE, developer)
    clash = submit(site, developer, LEAGUE | {"client_name": "my league  MANAGER"})
    assert clash.status_code == 400
    assert "a live client is already called" in clash.text
    post_form(
        site,
        staff,
        "/console/clients/my-league-manager",
        "/console/clients/my-league-manager/disable",
        confirmed="yes",
    )
    second = approve(site, staff, LEAGUE, developer)
    assert second == "my-league-manager-2"


def test_access_list_invitation_is_accepted_by_the_member(site: Site, people: Any) -> None:
    developer, staff = people
    client_id = approve(site, staff, DATA_TOOL, developer)
    site.add_member("racer@example.com", name="Rae Racer")
    added = post_form(
        site,
        developer,
        f"/portal/clients/{client_id}",
        f"/portal/clients/{client_id}/access",
        member_reference="racer@example.com",
    )
    assert added.status_code == 303
    assert "waiting for acceptance" in developer.get(f"/portal/clients/{client_id}").text
    assert "asks to sign you in" in site.mailbox.wait_for("racer@example.com")["Subject"]
    racer = site.browser()
    site.sign_in(racer, "racer@example.com")
    account = racer.get("/account")
    assert "My Sim Data Tool" in account.text
    entry_id = re.search(r"/account/access/(\d+)/accept", account.text)
    assert entry_id
    racer.post(
        f"/account/access/{entry_id.group(1)}/accept", data={"csrf_token": site.csrf_of(account)}
    )
    with site.context.session() as db:
        assert db.scalar(select(AccessListEntry.accepted_at)) is not None
    assert "active" in developer.get(f"/portal/clients/{client_id}").text


def test_access_list_limits_and_errors(site: Site, people: Any) -> None:
    developer, staff = people
    client_id = approve(site, staff, DATA_TOOL, developer)
    for n in range(4):
        site.add_member(f"m{n}@example.com")
    page = f"/console/clients/{client_id}"
    for n in range(3):
        ok = post_form(
            site, staff, page, f"{page}/access-add", member_reference=f"m{n}@example.com"
        )
        assert ok.status_code == 303
    full = post_form(site, staff, page, f"{page}/access-add", member_reference="m3@example.com")
    assert full.status_code == 400
    assert "at most 3 members" in full.text
    unknown = post_form(
        site,
        developer,
        f"/portal/clients/{client_id}",
        f"/portal/clients/{client_id}/access",
        member_reference="ghost@example.com",
    )
    assert "no member has the email or customer id" in unknown.text
    with site.context.session() as db:
        accepted = list(db.scalars(select(AccessListEntry.accepted_at)))
    assert len(accepted) == 3 and all(accepted)  # staff additions are active at once


def test_every_transition_mails_the_requester(site: Site, people: Any) -> None:
    developer, staff = people
    before = site.mailbox.count_for(DEV)
    request_id = request_id_of(submit(site, developer, LEAGUE))
    decide(site, staff, request_id, "request-changes", "Please fix.")
    page = developer.get(f"/portal/requests/{request_id}")
    developer.post(
        f"/portal/requests/{request_id}/edit", data={"csrf_token": site.csrf_of(page), **LEAGUE}
    )
    decide(site, staff, request_id, "approve")
    site.mailbox.wait_for(DEV, count=before + 4)
    subjects = [m["Subject"] for m in site.mailbox.messages if m["To"] == DEV][before:]
    assert [s.split(" ", 4)[-1] for s in subjects] == [
        "was received",
        "needs changes",
        "was resubmitted",
        "'My League Manager' is ready",
    ] or subjects


def test_reminders_list_requests_near_or_past_due(site: Site, people: Any) -> None:
    developer, _ = people
    overdue = request_id_of(submit(site, developer, LEAGUE))
    request_id_of(submit(site, developer, LEAGUE | {"client_name": "Far Future Tool"}))
    with site.context.session() as db:
        db.execute(
            update(RegistrationRequest)
            .where(RegistrationRequest.id == overdue)
            .values(due_at=utcnow() - timedelta(days=1))
        )
        due, mail_ids = request_queue.send_reminders(site.context, db)
    assert due == 1 and len(mail_ids) == 1
    with site.context.session() as db:
        reminder = db.get(MailMessage, mail_ids[0])
        assert reminder is not None and reminder.to_address == STAFF
        body = site.context.mailer.body_of(reminder)
    assert "OVERDUE" in body and "My League Manager" in body
    assert "Far Future Tool" not in body


def test_queue_orders_by_due_date_and_marks_overdue(site: Site, people: Any) -> None:
    developer, staff = people
    first = request_id_of(submit(site, developer, LEAGUE | {"client_name": "Later Tool"}))
    second = request_id_of(submit(site, developer, LEAGUE | {"client_name": "Sooner Tool"}))
    with site.context.session() as db:
        db.execute(
            update(RegistrationRequest)
            .where(RegistrationRequest.id == second)
            .values(due_at=utcnow() - timedelta(hours=1))
        )
    queue = staff.get("/console/requests").text
    assert queue.index("Sooner Tool") < queue.index("Later Tool")
    assert "overdue" in queue.split("Sooner Tool")[1].split("</tr>")[0]
    assert first != second


def test_no_secret_or_masked_secret_in_the_database_or_logs_after_issuance(
    site: Site, people: Any, caplog: pytest.LogCaptureFixture
) -> None:
    developer, staff = people
    caplog.set_level(logging.DEBUG)
    logging.getLogger("sqlalchemy.engine").setLevel(logging.INFO)  # parameters too
    try:
        client_id = approve(site, staff, LEAGUE, developer)
        shown = post_form(
            site, developer, f"/portal/clients/{client_id}", f"/portal/clients/{client_id}/reveal"
        )
        rotated = post_form(
            site,
            developer,
            f"/portal/clients/{client_id}",
            f"/portal/clients/{client_id}/rotate",
            confirmed="yes",
        )
    finally:
        logging.getLogger("sqlalchemy.engine").setLevel(logging.WARNING)
    secrets_seen = [
        re.search(r'id="client-secret">([^<]+)<', page.text).group(1)  # type: ignore[union-attr]
        for page in (shown, rotated)
    ]
    dump = dump_database(site.context.settings.database_url)
    logs = caplog.text
    assert "my-league-manager" in dump and "INSERT INTO client_secrets" in logs
    for secret in secrets_seen:
        for form in (secret, mask_secret(secret, client_id)):
            assert form not in dump
            assert form not in logs


def customer_id_of(site: Site, email: str) -> str:
    with site.context.session() as db:
        member = db.scalar(select(Member).where(Member.email == email))
        assert member is not None
        return str(member.customer_id)


def test_adding_by_customer_id_shows_the_developer_no_email(site: Site, people: Any) -> None:
    """Issue #11, defect 8: the portal never shows a developer the email of a member they
    added by customer id (staff included); the name appears once the member accepts."""
    developer, _staff = people
    client_id = approve(site, _staff, DATA_TOOL, developer)
    page, action = f"/portal/clients/{client_id}", f"/portal/clients/{client_id}/access"
    staff_id = customer_id_of(site, STAFF)
    added = post_form(site, developer, page, action, member_reference=staff_id)
    assert added.status_code == 303
    listed = developer.get(page).text
    assert STAFF not in listed and "Sam Staff" not in listed
    assert staff_id in listed and "waiting for acceptance" in listed
    again = post_form(site, developer, page, action, member_reference=staff_id)
    assert again.status_code == 400 and "already on the access list" in again.text
    assert STAFF not in again.text
    site.add_member("racer@example.com", name="Rae Racer")
    racer_id = customer_id_of(site, "racer@example.com")
    post_form(site, developer, page, action, member_reference=racer_id)
    racer = site.browser()
    site.sign_in(racer, "racer@example.com")
    account = racer.get("/account")
    entry_id = re.findall(r"/account/access/(\d+)/accept", account.text)[0]
    racer.post(f"/account/access/{entry_id}/accept", data={"csrf_token": site.csrf_of(account)})
    accepted = developer.get(page).text
    assert "Rae Racer" in accepted and "racer@example.com" not in accepted
    assert STAFF in _staff.get(f"/console/clients/{client_id}").text  # staff still see it


def test_a_developer_cannot_walk_the_customer_ids(site_factory: Any, backend: Any) -> None:
    """Every addition a developer tries counts, found or not; past the limit: 429 and
    Retry-After beside the field."""
    site = site_factory(backend, access_list_adds_per_developer="3/hour")
    site.add_member(DEV, name="Dana Dev")
    site.add_member(STAFF, staff=True, name="Sam Staff")
    developer, staff = site.browser(), site.browser()
    site.sign_in(developer, DEV)
    site.sign_in(staff, STAFF)
    client_id = approve(site, staff, DATA_TOOL, developer)
    page, action = f"/portal/clients/{client_id}", f"/portal/clients/{client_id}/access"
    walked = [
        post_form(site, developer, page, action, member_reference=str(customer_id)).status_code
        for customer_id in (999001, 999002, 999003)
    ]
    assert walked == [400, 400, 400]
    refused = post_form(site, developer, page, action, member_reference=customer_id_of(site, STAFF))
    assert refused.status_code == 429
    assert int(refused.headers["retry-after"]) > 0
    assert "too many access-list additions" in refused.text
    assert count(site, AccessListEntry) == 0
    by_staff = post_form(
        site,
        staff,
        f"/console/clients/{client_id}",
        f"/console/clients/{client_id}/access-add",
        member_reference=DEV,
    )
    assert by_staff.status_code == 303  # staff act on members' requests: not throttled
