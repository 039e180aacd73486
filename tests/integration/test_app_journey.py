"""An app's sign-in is one journey (issue #12, item 3): the pages name the app only when
`next` is `/authorize` of an enabled client, sign-up keeps `next` to consent, and consent
says who is signed in, offers "Not you?", and names the host the browser goes to."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from pitpass.http.cookies import SESSION_COOKIE
from pitpass.services.members import find_by_email
from tests.conftest import GOOD_PASSWORD, Site
from tests.support import Provisioner

CALLBACK = "https://app.example/callback"
CSRF = re.compile(r'name="csrf_token" value="[^"]+"')
BANNER = re.compile(r'<p class="continuing" id="continuing">(.*?)</p>', re.S)


def issue_client(site: Site, name: str, **developer: str) -> str:
    if not _is_member(site, "staff@example.com"):
        site.add_member("staff@example.com", staff=True)
    client_id, _secret = Provisioner(site.context).client(
        "staff@example.com",
        name,
        "server-side",
        redirect_uris=[CALLBACK],
        **({"developer_name": "Lap Labs", "developer_email": "dev@laplabs.example"} | developer),
    )
    return client_id


def _is_member(site: Site, email: str) -> bool:
    with site.context.session() as db:
        return find_by_email(db, email) is not None


def authorize_path(client_id: str) -> str:
    query = {"client_id": client_id, "redirect_uri": CALLBACK, "response_type": "code"}
    return "/oauth2/authorize?" + urlencode(query | {"state": "s1", "scope": "iracing.auth"})


def banner_of(html: str) -> str | None:
    match = BANNER.search(html)
    return re.sub(r"\s+", " ", match.group(1)) if match else None


def signin_page(browser: Any, next_path: str) -> str:
    page = browser.get("/signin", params={"next": next_path})
    assert page.status_code == 200
    return str(page.text)


def test_the_sign_in_page_names_the_app_and_its_developer(sqlite_site: Site) -> None:
    client_id = issue_client(sqlite_site, "Lap Timer")
    page = signin_page(sqlite_site.browser(), authorize_path(client_id))
    assert banner_of(page) == "to continue to <strong>Lap Timer</strong> by Lap Labs"
    # "Create one" keeps the request, so a new member ends at consent too.
    link = re.search(r'<a href="([^"]+)">Create one</a>', page)
    assert link is not None
    signup = urlsplit(link.group(1).replace("&amp;", "&"))
    assert signup.path == "/signup"
    assert parse_qs(signup.query)["next"] == [authorize_path(client_id)]


def test_no_banner_for_unknown_or_disabled_clients_or_other_pages(sqlite_site: Site) -> None:
    client_id = issue_client(sqlite_site, "Soon Gone")
    Provisioner(sqlite_site.context).disable_client(client_id, "staff@example.com")
    browser = sqlite_site.browser()
    for next_path in (
        authorize_path(client_id),  # disabled
        authorize_path("no-such-client"),
        "/oauth2/authorize?client_id=",
        f"/oauth2/authorize?client_id={client_id}&client_id=other",
        f"/account?client_id={client_id}",
        f"https://evil.example/oauth2/authorize?client_id={client_id}",
        f"//evil.example/oauth2/authorize?client_id={client_id}",
    ):
        page = signin_page(browser, next_path)
        assert banner_of(page) is None, next_path
        assert 'id="continuing"' not in page
    assert banner_of(sqlite_site.browser().get("/signup").text) is None
    assert '<a href="/signup">Create one</a>' in signin_page(browser, "")


def test_the_banner_escapes_the_client_and_developer_names(sqlite_site: Site) -> None:
    client_id = issue_client(
        sqlite_site, "<img src=x onerror=alert(1)> Tools", developer_name="<b>Bold</b> & Co"
    )
    page = signin_page(sqlite_site.browser(), authorize_path(client_id))
    assert banner_of(page) == (
        "to continue to <strong>&lt;img src=x onerror=alert(1)&gt; Tools</strong>"
        " by &lt;b&gt;Bold&lt;/b&gt; &amp; Co"
    )
    assert "<img src=x" not in page


def sign_up(site: Site, browser: Any, email: str, next_path: str) -> Any:
    page = browser.get("/signup", params={"next": next_path})
    assert page.status_code == 200
    fields = {
        "csrf_token": site.csrf_of(page),
        "email": email,
        "display_name": "New Driver",
        "password": GOOD_PASSWORD,
        "password_again": GOOD_PASSWORD,
        "next": next_path,
    }
    return browser.post("/signup", data=fields)


def test_sign_up_from_an_app_ends_at_consent(sqlite_site: Site) -> None:
    client_id = issue_client(sqlite_site, "Lap Timer")
    browser = sqlite_site.browser()
    form = browser.get("/signup", params={"next": authorize_path(client_id)})
    assert banner_of(form.text) == "to continue to <strong>Lap Timer</strong> by Lap Labs"
    # A mistake keeps the app: the form comes back with the banner and `next`.
    refused = browser.post(
        "/signup",
        data={"csrf_token": sqlite_site.csrf_of(form), "email": "bad", "password": "x"}
        | {"next": authorize_path(client_id)},
    )
    assert refused.status_code == 400
    assert banner_of(refused.text) is not None
    assert 'name="next" value="/oauth2/authorize?' in refused.text

    started = sign_up(sqlite_site, browser, "newbie@example.com", authorize_path(client_id))
    assert started.headers["location"] == "/signin/code"
    code_page = browser.get("/signin/code")
    assert banner_of(code_page.text) == "to continue to <strong>Lap Timer</strong> by Lap Labs"
    code = sqlite_site.mailbox.code_for("newbie@example.com")
    done = sqlite_site.submit(browser, "/signin/code", "/signin/code", code=code)
    assert done.headers["location"] == authorize_path(client_id)
    consent = browser.get(done.headers["location"])
    assert consent.status_code == 200
    assert "Allow" in consent.text and 'name="decision"' in consent.text


def test_an_unsafe_next_on_sign_up_leads_to_the_account(sqlite_site: Site) -> None:
    browser = sqlite_site.browser()
    started = sign_up(sqlite_site, browser, "newbie@example.com", "https://evil.example/")
    assert started.headers["location"] == "/signin/code"
    code = sqlite_site.mailbox.code_for("newbie@example.com")
    done = sqlite_site.submit(browser, "/signin/code", "/signin/code", code=code)
    assert done.headers["location"] == "/account"


def test_an_apps_sign_up_answers_alike_whether_or_not_the_email_has_an_account(
    site: Site,
) -> None:
    """The decoy code step keeps the same `next`, so its page names the same app."""
    client_id = issue_client(site, "Lap Timer")
    site.add_member("taken@example.com")
    taken, fresh = site.browser(), site.browser()
    answers = [
        sign_up(site, taken, "taken@example.com", authorize_path(client_id)),
        sign_up(site, fresh, "tabby@example.com", authorize_path(client_id)),
    ]
    assert [a.status_code for a in answers] == [303, 303]
    assert [a.headers["location"] for a in answers] == ["/signin/code", "/signin/code"]
    pages = [CSRF.sub("", b.get("/signin/code").text) for b in (taken, fresh)]
    assert pages[0] == pages[1]
    assert banner_of(pages[0]) == "to continue to <strong>Lap Timer</strong> by Lap Labs"


def consent_page(site: Site, browser: Any, client_id: str) -> Any:
    page = browser.get(authorize_path(client_id))
    assert page.status_code == 200, page.text
    return page


def test_consent_says_who_is_signed_in_and_where_the_browser_goes(sqlite_site: Site) -> None:
    client_id = issue_client(sqlite_site, "Lap Timer")
    sqlite_site.add_member("ana@example.com", name="Ana Driver")
    browser = sqlite_site.browser()
    sqlite_site.sign_in(browser, "ana@example.com")
    page = consent_page(sqlite_site, browser, client_id).text
    assert re.search(r"Signed in as <strong>Ana Driver</strong> \(<span[^>]*>ana@example.com", page)
    assert 'you will be sent to <strong class="wrap">app.example</strong>' in page
    # The consent form still posts exactly the request's fields (tests/e2e/oauth_world.py).
    consent_form = page.split('action="/oauth2/authorize"', 1)[1].split("</form>", 1)[0]
    names = re.findall(r'<input type="hidden" name="([^"]+)"', consent_form)
    assert sorted(names) == sorted(
        ["csrf_token", "client_id", "redirect_uri", "response_type", "state", "scope"]
    )


def test_not_you_signs_out_and_returns_to_sign_in_for_the_same_request(
    sqlite_site: Site,
) -> None:
    client_id = issue_client(sqlite_site, "Lap Timer")
    sqlite_site.add_member("ana@example.com", name="Ana Driver")
    browser = sqlite_site.browser()
    sqlite_site.sign_in(browser, "ana@example.com")
    page = consent_page(sqlite_site, browser, client_id)
    button = re.search(r'<button type="submit" class="link" name="next" value="([^"]+)"', page.text)
    assert button is not None
    next_path = button.group(1).replace("&amp;", "&")
    assert next_path == authorize_path(client_id)
    # Sign-out is a state change: no CSRF token, no sign-out.
    assert browser.post("/signout", data={"next": next_path}).status_code == 403
    assert browser.get(authorize_path(client_id)).status_code == 200  # still signed in
    out = browser.post(
        "/signout", data={"csrf_token": sqlite_site.csrf_of(page), "next": next_path}
    )
    assert out.status_code == 303
    location = urlsplit(out.headers["location"])
    assert location.path == "/signin"
    assert parse_qs(location.query) == {"next": [next_path], "done": ["signed-out"]}
    assert SESSION_COOKIE not in browser.cookies
    again = browser.get(out.headers["location"])
    assert "You are signed out." in again.text
    assert banner_of(again.text) == "to continue to <strong>Lap Timer</strong> by Lap Labs"
    # A next that is not a path on this site is dropped, as everywhere else.
    sqlite_site.sign_in(browser, "ana@example.com")
    elsewhere = sqlite_site.submit(browser, "/account", "/signout", next="https://evil.example/")
    assert elsewhere.headers["location"] == "/signin?done=signed-out"
