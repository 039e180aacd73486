"""The developer side of issue #12 (items 4, 5, 6, 8): type changes refused, every field
error at once, the change difference, checks never against the client itself, the client
page's snippets, confirmation steps and notices, the secret link's used state."""

from __future__ import annotations

import base64
import hashlib
import re
import subprocess
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from pitpass.core.masking import mask_secret
from pitpass.db.models import Client, ClientSecret, RegistrationRequest, utcnow
from pitpass.services import client_secrets
from pitpass.services import clients as clients_service
from pitpass.web.client_snippets import PYTHON_MASK, SHELL_MASK, token_snippets
from tests.conftest import Site
from tests.integration.test_registration import (
    DATA_TOOL,
    DEV,
    LEAGUE,
    STAFF,
    approve,
    count,
    post_form,
    request_id_of,
    reveal_link,
    submit,
)


@pytest.fixture
def people(sqlite_site: Site) -> tuple[TestClient, TestClient]:
    sqlite_site.add_member(DEV, name="Dana Dev")
    sqlite_site.add_member(STAFF, staff=True, name="Sam Staff")
    developer, staff = sqlite_site.browser(), sqlite_site.browser()
    sqlite_site.sign_in(developer, DEV)
    sqlite_site.sign_in(staff, STAFF)
    return developer, staff


def ask_change(site: Site, developer: TestClient, client_id: str, fields: dict[str, Any]) -> Any:
    page = developer.get(f"/portal/clients/{client_id}/change")
    return developer.post(
        f"/portal/clients/{client_id}/change", data={"csrf_token": site.csrf_of(page), **fields}
    )


def field_error(html: str, field: str) -> str:
    found = re.search(rf'id="{field}-error">([^<]*)<', html)
    assert found, html
    return found.group(1)


# ----- item 4: the type never changes, and staff see the difference ---------------------


def test_portal_refuses_a_type_change_beside_the_field_and_sends_nothing(
    sqlite_site: Site, people: Any
) -> None:
    developer, staff = people
    client_id = approve(sqlite_site, staff, LEAGUE, developer)
    refused = ask_change(
        sqlite_site, developer, client_id, LEAGUE | {"client_type": "single-page-app"}
    )
    assert refused.status_code == 400
    assert "the client type cannot change: request a new client instead" in field_error(
        refused.text, "client_type"
    )
    assert 'aria-describedby="client_type-error"' in refused.text
    with sqlite_site.context.session() as db:
        assert db.scalar(select(func.count()).where(RegistrationRequest.is_change)) == 0


def test_api_refuses_a_type_change_in_the_error_shape(sqlite_site: Site, people: Any) -> None:
    developer, staff = people
    client_id = approve(sqlite_site, staff, LEAGUE, developer)
    csrf = developer.get("/api/v1/me").json()["csrf_token"]
    body = {
        "client_name": LEAGUE["client_name"],
        "client_type": "mobile",
        "grant_types": LEAGUE["flows"],
        "developer_name": LEAGUE["developer_name"],
        "client_uri": LEAGUE["developer_url"],
        "contacts": [LEAGUE["developer_email"]],
        "redirect_uris": ["https://www.myleague.com/oauth/callback"],
        "audiences": LEAGUE["audiences"],
    }
    refused = developer.post(
        f"/api/v1/clients/{client_id}/change-requests", json=body, headers={"X-CSRF-Token": csrf}
    )
    assert refused.status_code == 400
    assert refused.json() == {
        "error": "invalid_client_metadata",
        "error_description": "client_type: the client type cannot change: "
        "request a new client instead",
        "fields": [
            {
                "field": "client_type",
                "message": "the client type cannot change: request a new client instead",
            }
        ],
    }
    same_type = developer.post(
        f"/api/v1/clients/{client_id}/change-requests",
        json=body | {"client_type": "server-side"},
        headers={"X-CSRF-Token": csrf},
    )
    assert same_type.status_code == 201, same_type.text


def test_approval_refuses_a_stored_type_change_and_keeps_the_secret(
    sqlite_site: Site, people: Any
) -> None:
    """A request stored before the rule (or by other means) still cannot drop a secret."""
    developer, staff = people
    client_id = approve(sqlite_site, staff, LEAGUE, developer)
    with sqlite_site.context.session() as db:
        client = clients_service.by_client_id(db, client_id)
        assert client is not None
        old = RegistrationRequest(
            requester_id=client.owner_id,
            client_pk=client.id,
            is_change=True,
            status="submitted",
            submitted_at=utcnow(),
            due_at=utcnow(),
            client_name=client.name,
            client_type="single-page-app",
            flows=list(client.flows),
            description=client.description,
            developer_name=client.developer_name,
            developer_url=client.developer_url,
            developer_email=client.developer_email,
            redirect_uris=list(client.redirect_uris),
            audiences=list(client.audiences),
        )
        db.add(old)
        db.flush()
        request_id = old.id
    review = staff.get(f"/console/requests/{request_id}")
    assert "the client type cannot change" in review.text
    assert "Server-side app</del> → <ins>Single-page app" in review.text
    page = staff.get(f"/console/requests/{request_id}")
    refused = staff.post(
        f"/console/requests/{request_id}/approve", data={"csrf_token": sqlite_site.csrf_of(page)}
    )
    assert refused.status_code == 400
    assert "the request no longer passes the checks" in refused.text
    with sqlite_site.context.session() as db:
        client = clients_service.by_client_id(db, client_id)
        assert client is not None and client.client_type == "server-side"
        assert len(client_secrets.live_secrets(db, client)) == 1
        item = db.get(RegistrationRequest, request_id)
        assert item is not None and item.status == "submitted"


def test_staff_see_the_difference_from_the_live_client(sqlite_site: Site, people: Any) -> None:
    developer, staff = people
    client_id = approve(sqlite_site, staff, LEAGUE, developer)
    changed = LEAGUE | {
        "developer_name": "My Racing League Ltd.",
        "redirect_uris": "https://www.myleague.com/oauth/callback\nhttps://new.myleague.com/cb",
        "audiences": [],
    }
    change_id = request_id_of(ask_change(sqlite_site, developer, client_id, changed))
    review = staff.get(f"/console/requests/{change_id}").text
    differences = review.split('id="changes"')[1].split("</dl>")[0]
    assert "My Racing League Inc.</del> → <ins>My Racing League Ltd." in differences
    assert "added: <code>https://new.myleague.com/cb</code>" in differences
    assert "removed: <code>https://staging.myleague.com/oauth/callback</code>" in differences
    assert "removed: <code>data-server</code>" in differences
    assert "Client name" not in differences  # unchanged fields are not listed
    assert "All checks pass." in review  # never a clash with the live client itself
    # The developer sees the same difference on the request page.
    assert (
        "added: <code>https://new.myleague.com/cb</code>"
        in developer.get(f"/portal/requests/{change_id}").text
    )


def test_checks_stay_green_after_approval(sqlite_site: Site, people: Any) -> None:
    developer, staff = people
    approve(sqlite_site, staff, LEAGUE, developer)
    with sqlite_site.context.session() as db:
        request_id = db.scalar(select(RegistrationRequest.id))
    review = staff.get(f"/console/requests/{request_id}").text
    assert "All checks pass." in review
    assert "already called" not in review
    # A second request of the same name still clashes with the live client.
    clash = submit(sqlite_site, developer, LEAGUE)
    assert "a live client is already called" in field_error(clash.text, "client_name")


# ----- item 5: every error at once ----------------------------------------------------


def test_each_bad_redirect_uri_has_its_own_message_and_the_banner_counts_them(
    sqlite_site: Site, people: Any
) -> None:
    developer, _ = people
    uris = (
        "https://ok.example/cb\nhttp://app.example/cb\nhttps://x.example/#top\nhttps://*.example/"
    )
    refused = submit(sqlite_site, developer, LEAGUE | {"redirect_uris": uris})
    assert refused.status_code == 400
    assert 'id="redirect_uris-0-error"' not in refused.text
    assert "http is only allowed for loopback" in field_error(refused.text, "redirect_uris-1")
    assert "fragment" in field_error(refused.text, "redirect_uris-2")
    assert "wildcards" in field_error(refused.text, "redirect_uris-3")
    assert field_error(refused.text, "redirect_uris-2").startswith(
        "Redirect URI 3 (https://x.example/#top):"
    )
    marked = len(re.findall(r'class="error field-error"', refused.text))
    assert marked == 3
    assert "fix the 3 problem(s) marked below" in refused.text
    assert (
        'aria-describedby="redirect_uris-1-error redirect_uris-2-error redirect_uris-3-error "'
        in refused.text
    )
    assert count(sqlite_site, RegistrationRequest) == 0


def test_every_field_error_is_marked_and_counted(sqlite_site: Site, people: Any) -> None:
    developer, _ = people
    bad = LEAGUE | {
        "client_name": "iRacer Tools",
        "developer_url": "http://www.myleague.com",
        "developer_email": "nobody",
        "redirect_uris": "https://a.example\nftp://b.example/",
        "audiences": ["members-api", "other-api"],
    }
    refused = submit(sqlite_site, developer, bad)
    marked = len(re.findall(r'class="error field-error"', refused.text))
    assert marked == 6
    assert f"fix the {marked} problem(s) marked below" in refused.text
    assert "unknown audiences &#39;members-api&#39;, &#39;other-api&#39;" in refused.text


# ----- item 6: the client page and the small fixes ------------------------------------


def test_client_page_has_copy_buttons_and_snippets_without_the_secret(
    sqlite_site: Site, people: Any
) -> None:
    developer, staff = people
    client_id = approve(sqlite_site, staff, LEAGUE, developer)
    page = developer.get(f"/portal/clients/{client_id}").text
    assert 'data-copy="client-id"' in page
    assert '<script src="/static/copy.js" defer></script>' in page
    assert developer.get("/static/copy.js").status_code == 200
    assert "--data-urlencode &#34;client_secret=$(mask &#34;$CLIENT_SECRET&#34;" in page
    assert "mask(CLIENT_SECRET, CLIENT_ID)" in page
    assert "CLIENT_SECRET = os.environ[&#34;CLIENT_SECRET&#34;]" in page
    assert "https://www.myleague.com/oauth/callback" in page
    shown = post_form(
        sqlite_site,
        developer,
        f"/portal/clients/{client_id}",
        f"/portal/clients/{client_id}/reveal",
    )
    secret = re.search(r'id="client-secret">([^<]+)<', shown.text).group(1)  # type: ignore[union-attr]
    assert 'data-copy="client-secret"' in shown.text
    page = developer.get(f"/portal/clients/{client_id}").text
    assert secret not in page and mask_secret(secret, client_id) not in page


def test_shell_mask_of_the_snippets_matches_the_test_vectors() -> None:
    for secret, identifier, expected in [
        ("SuperSecret", "MyClient", "CDZpTp0GQYZXHJ2tSnH9GtXnutZvyGxESQXfBnqTCVo="),
        ("MyPassWord", " CLunky@iracing.Com ", "xGKecAR27ALXNuMLsGaG0v5Q9pSs2tZTZRKNgmHMg+Q="),
    ]:
        script = f'{SHELL_MASK}\nmask "$1" "$2"'
        done = subprocess.run(
            ["sh", "-c", script, "sh", secret, identifier],
            capture_output=True,
            text=True,
            check=True,
        )
        assert done.stdout.strip() == expected


def test_python_snippets_compile_and_mask_like_the_book() -> None:
    client = Client(
        client_id="my-league-manager",
        client_type="server-side",
        flows=["authorization_code", "password_limited"],
        redirect_uris=["https://www.myleague.com/oauth/callback"],
    )
    snippets = token_snippets(client, "https://id.example/oauth2")
    assert [s.id for s in snippets] == [
        "curl-authorization_code",
        "python-authorization_code",
        "curl-password_limited",
        "python-password_limited",
    ]
    for snippet in snippets:
        if snippet.id.startswith("python-"):
            compile(snippet.code, snippet.id, "exec")
    space: dict[str, Any] = {"base64": base64, "hashlib": hashlib}
    exec(PYTHON_MASK, space)  # noqa: S102 -- our own snippet: the mask every one carries
    assert space["mask"]("SuperSecret", "MyClient") == mask_secret("SuperSecret", "MyClient")
    assert space["mask"]("MyPassWord", " CLunky@iracing.Com") == (
        "xGKecAR27ALXNuMLsGaG0v5Q9pSs2tZTZRKNgmHMg+Q="
    )


def test_public_and_password_limited_snippets(sqlite_site: Site, people: Any) -> None:
    developer, staff = people
    spa = approve(
        sqlite_site,
        staff,
        LEAGUE | {"client_name": "Lap Chart", "client_type": "single-page-app"},
        developer,
    )
    page = developer.get(f"/portal/clients/{spa}").text
    assert "CLIENT_SECRET" not in page and "code_verifier" in page
    tool = approve(sqlite_site, staff, DATA_TOOL, developer)
    page = developer.get(f"/portal/clients/{tool}").text
    assert "mask(MEMBER_PASSWORD, MEMBER_EMAIL)" in page
    assert "password=$(mask &#34;$MEMBER_PASSWORD&#34; &#34;$MEMBER_EMAIL&#34;)" in page


def test_resubmitting_retires_the_staff_message(sqlite_site: Site, people: Any) -> None:
    developer, staff = people
    request_id = request_id_of(submit(sqlite_site, developer, LEAGUE))
    page = staff.get(f"/console/requests/{request_id}")
    staff.post(
        f"/console/requests/{request_id}/request-changes",
        data={"csrf_token": sqlite_site.csrf_of(page), "message": "Add a staging URI."},
    )
    page = developer.get(f"/portal/requests/{request_id}")
    assert 'id="staff-message"' in page.text
    done = developer.post(
        f"/portal/requests/{request_id}/edit",
        data={"csrf_token": sqlite_site.csrf_of(page), **LEAGUE},
    )
    assert done.headers["location"] == f"/portal/requests/{request_id}?done=request-resubmitted"
    after = developer.get(done.headers["location"]).text
    assert 'id="staff-message"' not in after
    assert "Request resubmitted" in after
    assert "Add a staging URI." in after  # still in the history


def test_a_used_secret_link_offers_no_button_and_links_to_the_client(
    sqlite_site: Site, people: Any
) -> None:
    developer, staff = people
    client_id = approve(sqlite_site, staff, LEAGUE, developer)
    token = reveal_link(sqlite_site, client_id)
    page = developer.get(f"/portal/secret/{token}")
    assert "Show the secret once" in page.text
    assert (
        developer.post(
            f"/portal/secret/{token}", data={"csrf_token": sqlite_site.csrf_of(page)}
        ).status_code
        == 200
    )
    used = developer.get(f"/portal/secret/{token}")
    assert "Show the secret once" not in used.text
    assert "already viewed on" in used.text
    assert f'href="/portal/clients/{client_id}"' in used.text
    again = developer.post(
        f"/portal/secret/{token}", data={"csrf_token": sqlite_site.csrf_of(used)}
    )
    assert again.status_code == 410
    assert "Secret not shown" in again.text
    assert f'href="/portal/clients/{client_id}"' in again.text
    assert 'href="/">Go to the start page' not in again.text


# ----- item 8: confirmation steps and notices ------------------------------------------


def test_rotation_asks_first_and_the_first_post_changes_nothing(
    sqlite_site: Site, people: Any
) -> None:
    developer, staff = people
    client_id = approve(sqlite_site, staff, LEAGUE, developer)
    rotate = f"/portal/clients/{client_id}/rotate"
    asked = post_form(sqlite_site, developer, f"/portal/clients/{client_id}", rotate)
    assert asked.status_code == 200
    assert 'name="confirmed" value="yes"' in asked.text
    assert "Rotate the secret of My League Manager?" in asked.text
    with sqlite_site.context.session() as db:
        assert db.scalar(select(func.count()).select_from(ClientSecret)) == 1
    csrf = sqlite_site.csrf_of(asked)
    done = developer.post(rotate, data={"csrf_token": csrf, "confirmed": "yes"})
    assert 'id="client-secret"' in done.text
    assert "Secret rotated" in done.text
    with sqlite_site.context.session() as db:
        assert db.scalar(select(func.count()).select_from(ClientSecret)) == 2


def test_rejection_asks_first_and_keeps_the_reason(sqlite_site: Site, people: Any) -> None:
    developer, staff = people
    request_id = request_id_of(submit(sqlite_site, developer, LEAGUE))
    reject = f"/console/requests/{request_id}/reject"
    page = staff.get(f"/console/requests/{request_id}")
    empty = staff.post(reject, data={"csrf_token": sqlite_site.csrf_of(page), "message": ""})
    assert empty.status_code == 400 and "write a message" in empty.text  # no confirmation yet
    asked = staff.post(
        reject, data={"csrf_token": sqlite_site.csrf_of(page), "message": "Not racing."}
    )
    assert asked.status_code == 200
    assert 'name="message" value="Not racing."' in asked.text
    assert 'name="confirmed" value="yes"' in asked.text
    with sqlite_site.context.session() as db:
        item = db.get(RegistrationRequest, request_id)
        assert item is not None and item.status == "submitted"
    done = staff.post(
        reject,
        data={
            "csrf_token": sqlite_site.csrf_of(asked),
            "message": "Not racing.",
            "confirmed": "yes",
        },
    )
    assert done.headers["location"] == f"/console/requests/{request_id}?done=request-rejected"
    assert "Request rejected" in staff.get(done.headers["location"]).text


def test_staff_disabling_a_client_asks_first(sqlite_site: Site, people: Any) -> None:
    developer, staff = people
    client_id = approve(sqlite_site, staff, LEAGUE, developer)
    page, action = f"/console/clients/{client_id}", f"/console/clients/{client_id}/disable"
    asked = post_form(sqlite_site, staff, page, action)
    assert asked.status_code == 200 and 'name="confirmed" value="yes"' in asked.text
    with sqlite_site.context.session() as db:
        assert db.scalar(select(Client.is_disabled)) is False
    done = post_form(sqlite_site, staff, page, action, confirmed="yes")
    assert done.headers["location"] == f"{page}?done=client-disabled"
    with sqlite_site.context.session() as db:
        assert db.scalar(select(Client.is_disabled)) is True


@pytest.mark.parametrize(
    ("path", "fields", "notice"),
    [
        ("/portal/requests/new", LEAGUE, "Request sent"),
        ("withdraw", {}, "Request withdrawn"),
        ("approve", {}, "Request approved"),
        ("request-changes", {"message": "More detail."}, "Changes requested"),
    ],
)
def test_each_action_confirms_itself(
    sqlite_site: Site, people: Any, path: str, fields: dict[str, Any], notice: str
) -> None:
    developer, staff = people
    if path == "/portal/requests/new":
        sent = submit(sqlite_site, developer, fields)
        assert notice in developer.get(sent.headers["location"]).text
        return
    request_id = request_id_of(submit(sqlite_site, developer, LEAGUE))
    if path == "withdraw":
        browser, page = developer, f"/portal/requests/{request_id}"
    else:
        browser, page = staff, f"/console/requests/{request_id}"
    done = post_form(sqlite_site, browser, page, f"{page}/{path}", **fields)
    assert done.status_code == 303, done.text
    assert notice in browser.get(done.headers["location"]).text
