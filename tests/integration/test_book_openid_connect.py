"""The OpenID Connect chapter's programs run, as printed, against a live server (issue #13,
item 3): discovery, and a relying party that signs a member in, checks the ID token and
asks /userinfo, while this test plays the member's browser."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import httpx

from tests.book_snippets import python_snippets
from tests.e2e.oauth_world import NAMES, World
from tests.support import free_port

LOOPBACK = "http://127.0.0.1/callback"  # any port (RFC 8252 §7.3)


def chapter_programs(world: World, tmp_path: Path) -> list[Path]:
    page = httpx.get(f"{world.issuer}/book/openid_connect.html")
    assert page.status_code == 200
    paths = []
    for number, source in enumerate(python_snippets(page.text)):
        path = tmp_path / f"snippet_{number}.py"
        path.write_text(source, encoding="utf-8")
        paths.append(path)
    return paths


def program_env(**values: str) -> dict[str, str]:
    """The test's environment without any server setting, and the program's inputs."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PITPASS_", "OIDC_"))}
    return env | values


def test_python_snippets_unescape_the_rendered_blocks() -> None:
    page = (
        '<p>x</p><pre tabindex="0"><code class="language-python">print(&quot;a &lt; b&quot;)\n'
        '</code></pre><pre><code class="language-text">no</code></pre>'
    )
    assert python_snippets(page) == ['print("a < b")\n']


def test_the_chapters_programs_run_against_the_server(world: World, tmp_path: Path) -> None:
    discovery, sign_in = chapter_programs(world, tmp_path)

    printed = subprocess.run(
        [sys.executable, str(discovery)],
        env=program_env(OIDC_ISSUER=world.issuer),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert printed.returncode == 0, printed.stderr
    assert f"userinfo_endpoint: {world.issuer}/userinfo" in printed.stdout
    assert "scopes: iracing.auth iracing.profile openid" in printed.stdout
    assert "ID token signatures: ES256" in printed.stdout

    n = next(NAMES)
    email = f"book-rp{n}@example.com"
    member = world.member(email, name="Book Reader")
    client_id, secret = world.client(f"Book RP {n}", redirect_uris=(LOOPBACK,))
    assert secret is not None
    port = free_port()
    relying_party = subprocess.Popen(
        [sys.executable, str(sign_in)],
        env=program_env(
            OIDC_ISSUER=world.issuer,
            OIDC_CLIENT_ID=client_id,
            OIDC_CLIENT_SECRET=secret,
            OIDC_REDIRECT_URI=f"http://127.0.0.1:{port}/callback",
            OIDC_MAX_AGE="3600",
        ),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert relying_party.stdout is not None
        url = relying_party.stdout.readline().strip()  # printed once it listens
        if not url:  # it ended without printing: say why
            assert relying_party.stderr is not None
            raise AssertionError(relying_party.stderr.read())
        assert url.startswith(f"{world.issuer}/authorize?"), url
        # The member's browser: signed in, it opens the URL, consents, follows the redirect.
        browser = world.browser()
        world.sign_in(browser, email)
        consent = browser.get(url)
        assert consent.status_code == 200 and "Know who you are" in consent.text
        back = world.consent(browser, consent)
        assert back.status_code == 302
        assert back.headers["location"].startswith(f"http://127.0.0.1:{port}/callback?code=")
        landed = httpx.get(back.headers["location"], timeout=30)
        assert landed.text == "Signed in: you can close this tab."
        out, err = relying_party.communicate(timeout=60)
    finally:
        relying_party.kill()
    assert relying_party.returncode == 0, err
    result = json.loads(out)
    sub = str(member.customer_id)
    assert result["sub"] == sub
    assert result["userinfo"] == {
        "sub": sub,
        "name": "Book Reader",
        "iracing_cust_id": member.customer_id,
    }
