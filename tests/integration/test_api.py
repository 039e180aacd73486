"""The registration JSON API (issue #3, item 4)."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.conftest import Site

DEV, STAFF = "dev@example.com", "staff@example.com"
LEAGUE = {
    "client_name": "My League Manager",
    "client_type": "server-side",
    "grant_types": ["authorization_code"],
    "developer_name": "My Racing League Inc.",
    "client_uri": "https://www.myleague.com",
    "contacts": ["developer@example.com"],
    "redirect_uris": ["https://www.myleague.com/oauth/callback"],
    "audiences": ["data-server"],
}


class Api:
    def __init__(self, browser: TestClient) -> None:
        self.browser = browser
        me = browser.get("/api/v1/me")
        assert me.status_code == 200, me.text
        self.me = me.json()
        self.headers = {"X-CSRF-Token": self.me["csrf_token"]}

    def get(self, path: str, **kw: Any) -> Any:
        return self.browser.get(f"/api/v1{path}", **kw)

    def post(self, path: str, body: Any = None) -> Any:
        return self.browser.post(f"/api/v1{path}", json=body or {}, headers=self.headers)

    def put(self, path: str, body: Any) -> Any:
        return self.browser.put(f"/api/v1{path}", json=body, headers=self.headers)

    def delete(self, path: str) -> Any:
        return self.browser.delete(f"/api/v1{path}", headers=self.headers)


@pytest.fixture
def apis(site: Site) -> tuple[Api, Api]:
    site.add_member(DEV)
    site.add_member(STAFF, staff=True)
    developer, staff = site.browser(), site.browser()
    site.sign_in(developer, DEV)
    site.sign_in(staff, STAFF)
    return Api(developer), Api(staff)


def test_full_cycle_through_the_api(site: Site, apis: tuple[Api, Api]) -> None:
    dev, staff = apis
    created = dev.post("/requests", LEAGUE)
    assert created.status_code == 201, created.text
    request = created.json()
    assert request["status"] == "submitted"
    assert request["token_endpoint_auth_method"] == "client_secret_post"
    queue = staff.get("/staff/requests").json()
    assert [item["id"] for item in queue["items"]] == [request["id"]]
    assert "checks" not in queue["items"][0]
    assert staff.get(f"/staff/requests/{request['id']}").json()["checks"] == []
    approved = staff.post(f"/staff/requests/{request['id']}/approve", {"message": "Welcome"})
    assert approved.status_code == 200, approved.text
    assert approved.json()["client_id"] == "my-league-manager"
    client = dev.get("/clients/my-league-manager").json()
    assert client["redirect_uris"] == LEAGUE["redirect_uris"]
    assert client["secret"]["reveal_pending_until"] is not None
    secret = dev.post("/clients/my-league-manager/secret/reveal")
    assert secret.status_code == 200 and len(secret.json()["client_secret"]) >= 43
    again = dev.post("/clients/my-league-manager/secret/reveal")
    assert again.status_code == 409
    assert again.json()["error"] == "already_viewed"
    rotated = dev.post("/clients/my-league-manager/secret/rotate").json()
    assert rotated["client_secret"] != secret.json()["client_secret"]
    assert rotated["previous_secret_valid_until"] is not None
    listed = dev.get("/clients").json()
    assert listed["total"] == 1


def test_errors_name_the_field_in_rfc_7591_terms(apis: tuple[Api, Api]) -> None:
    dev, _ = apis
    bad = dev.post("/requests", LEAGUE | {"redirect_uris": ["https://ok.example/", "https://x/#f"]})
    assert bad.status_code == 400
    body = bad.json()
    assert body["error"] == "invalid_redirect_uri"
    assert body["fields"] == [
        {
            "field": "redirect_uris[1]",
            "message": "a redirect URI must not contain a fragment: remove '#f'",
        }
    ]
    brand = dev.post("/requests", LEAGUE | {"client_name": "1Racing", "client_uri": "http://x/"})
    assert brand.json()["error"] == "invalid_client_metadata"
    assert {f["field"] for f in brand.json()["fields"]} == {"client_name", "client_uri"}
    malformed = dev.post("/requests", {"client_name": 7, "grant_types": "nope"})
    assert malformed.status_code == 400
    assert malformed.json()["error"] == "invalid_request"
    assert dev.get("/requests").json()["total"] == 0


def test_changes_need_the_csrf_header(apis: tuple[Api, Api]) -> None:
    dev, _ = apis
    response = dev.browser.post("/api/v1/requests", json=LEAGUE)
    assert response.status_code == 403
    assert response.json()["error"] == "csrf_token_missing"
    assert dev.get("/requests").json()["total"] == 0


def test_signed_out_and_non_staff_are_refused(site: Site, apis: tuple[Api, Api]) -> None:
    dev, _ = apis
    anonymous = site.browser().get("/api/v1/requests")
    assert anonymous.status_code == 401
    assert anonymous.json()["error"] == "unauthorized"
    assert dev.get("/staff/requests").status_code == 403
    assert dev.post("/staff/requests/1/approve").status_code == 403
    assert dev.get("/requests/999").status_code == 404
    assert dev.get("/no-such-endpoint").json()["error"] == "not_found"


def test_decisions_and_state_conflicts(apis: tuple[Api, Api]) -> None:
    dev, staff = apis
    request_id = dev.post("/requests", LEAGUE).json()["id"]
    no_message = staff.post(f"/staff/requests/{request_id}/reject", {"message": ""})
    assert no_message.status_code == 400
    assert no_message.json()["fields"][0]["field"] == "message"
    changes = staff.post(f"/staff/requests/{request_id}/request-changes", {"message": "Fix it"})
    assert changes.json()["status"] == "changes_requested"
    resubmitted = dev.put(f"/requests/{request_id}", LEAGUE | {"description": "fixed"})
    assert resubmitted.json()["status"] == "submitted"
    withdrawn = dev.post(f"/requests/{request_id}/withdraw")
    assert withdrawn.json()["status"] == "withdrawn"
    late = staff.post(f"/staff/requests/{request_id}/approve")
    assert late.status_code == 409
    assert late.json()["error"] == "conflict"


def test_access_list_through_the_api(site: Site, apis: tuple[Api, Api]) -> None:
    dev, staff = apis
    tool = LEAGUE | {
        "client_name": "Sim Data Tool",
        "grant_types": ["password_limited"],
        "redirect_uris": [],
        "developer_name": "",
        "client_uri": "",
    }
    request_id = dev.post("/requests", tool).json()["id"]
    client_id = staff.post(f"/staff/requests/{request_id}/approve").json()["client_id"]
    site.add_member("racer@example.com")
    invited = dev.post(f"/clients/{client_id}/access-list", {"member": "racer@example.com"})
    assert invited.status_code == 201
    assert invited.json()[0]["state"] == "pending"
    site.add_member("second@example.com")  # customer id 100004
    by_staff = staff.post(f"/staff/clients/{client_id}/access-list", {"member": "100004"})
    assert {e["state"] for e in by_staff.json()} == {"pending", "active"}
    removed = dev.delete(f"/clients/{client_id}/access-list/racer@example.com")
    assert [e["customer_id"] for e in removed.json()] == [100004]
    disabled = staff.post(f"/staff/clients/{client_id}/disable")
    assert disabled.json()["disabled"] is True


def test_access_list_shows_a_developer_no_email(site: Site, apis: tuple[Api, Api]) -> None:
    """Issue #11, defect 8: adding by customer id (here a staff member's) answers with the
    customer id and state; the name only once the member accepted; emails to staff only."""
    dev, staff = apis
    tool = LEAGUE | {
        "client_name": "Quiet Tool",
        "grant_types": ["password_limited"],
        "redirect_uris": [],
        "developer_name": "",
        "client_uri": "",
    }
    request_id = dev.post("/requests", tool).json()["id"]
    client_id = staff.post(f"/staff/requests/{request_id}/approve").json()["client_id"]
    staff_id = staff.me["customer_id"]
    added = dev.post(f"/clients/{client_id}/access-list", {"member": str(staff_id)})
    assert added.status_code == 201
    assert added.json() == [
        {"email": None, "customer_id": staff_id, "display_name": None, "state": "pending"}
    ]
    again = dev.post(f"/clients/{client_id}/access-list", {"member": str(staff_id)})
    assert again.status_code == 400 and STAFF not in again.text
    listed = dev.get(f"/clients/{client_id}/access-list")
    assert STAFF not in listed.text
    seen_by_staff = staff.post(f"/staff/clients/{client_id}/access-list", {"member": DEV})
    assert STAFF in seen_by_staff.text  # staff see the emails


def test_access_list_additions_are_throttled_per_developer(site_factory: Any, backend: Any) -> None:
    site = site_factory(backend, access_list_adds_per_developer="2/hour")
    site.add_member(DEV)
    site.add_member(STAFF, staff=True)
    developer, staffer = site.browser(), site.browser()
    site.sign_in(developer, DEV)
    site.sign_in(staffer, STAFF)
    dev, staff = Api(developer), Api(staffer)
    tool = LEAGUE | {"grant_types": ["password_limited"], "redirect_uris": [], "client_uri": ""}
    request_id = dev.post("/requests", tool).json()["id"]
    client_id = staff.post(f"/staff/requests/{request_id}/approve").json()["client_id"]
    for walked in (999001, 999002):
        assert (
            dev.post(f"/clients/{client_id}/access-list", {"member": str(walked)}).status_code
            == 400
        )
    refused = dev.post(
        f"/clients/{client_id}/access-list", {"member": str(staff.me["customer_id"])}
    )
    assert refused.status_code == 429
    assert refused.json()["error"] == "too_many_requests"
    assert int(refused.headers["retry-after"]) > 0
    assert dev.get(f"/clients/{client_id}/access-list").json() == []


def test_openapi_document_and_docs_page(site: Site) -> None:
    browser = site.browser()
    schema = browser.get("/openapi.json").json()
    assert "/api/v1/requests" in schema["paths"]
    assert not any(path.startswith("/signin") for path in schema["paths"])
    docs = browser.get("/docs")
    assert docs.status_code == 200
    assert "swagger-ui" in docs.text
    assert "frame-ancestors 'none'" in docs.headers["content-security-policy"]
