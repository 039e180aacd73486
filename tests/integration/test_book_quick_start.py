"""The quick start runs as printed (issue #13, item 5): every shell snippet of the served
chapter, in order, in one shell state, against a live server that `pitpass setup`
prepared. Where the chapter sends the reader to a page (the portal, the consent page)
the test does that step, and pastes what the reader would copy into the placeholder."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx

from pitpass.cli import BOOTSTRAP_STAFF_EMAIL
from pitpass.services import client_details, workflow
from pitpass.services.client_secrets import reveal_in_portal
from pitpass.services.clients import by_client_id
from pitpass.services.members import find_by_email
from tests.book_snippets import snippets
from tests.e2e.oauth_world import World
from tests.support import LiveServer, live_server, smtp_env, smtp_server

# `NAME='the … the reader pastes'`: a value the reader copies from somewhere else.
PLACEHOLDER = re.compile(r"^(\w+)='the [^']*'$", re.MULTILINE)
# What later snippets still use: variables and the one-line `mask()` function.
DEFINITION = re.compile(r"^(\w+=.*|mask\(\) \{.*\})$", re.MULTILINE)


class Reader:
    """A shell a reader types into: definitions carry over from snippet to snippet."""

    def __init__(self, server: LiveServer, workdir: Path) -> None:
        self.prelude = ""
        self.env = {k: v for k, v in os.environ.items() if k != "PITPASS_CONFIG"} | server.env
        # The chapter's `.venv/bin/pitpass` is the one running this test.
        self.workdir = workdir
        (workdir / ".venv" / "bin").mkdir(parents=True)
        (workdir / ".venv" / "bin" / "pitpass").symlink_to(Path(sys.executable).parent / "pitpass")

    def run(self, snippet: str, **pasted: str) -> str:
        names = PLACEHOLDER.findall(snippet)
        assert sorted(names) == sorted(pasted), f"the snippet asks for {names}"
        typed = PLACEHOLDER.sub(lambda m: f"{m[1]}={shlex.quote(pasted[m[1]])}", snippet)
        done = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", f"{self.prelude}\n{typed}"],
            cwd=self.workdir,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, f"{typed}\n{done.stderr}"
        self.prelude += "".join(f"{line}\n" for line in DEFINITION.findall(typed))
        return done.stdout


def request_the_client(server: LiveServer) -> None:
    """Step 2 in the portal: the league manager template, with the two changes."""
    details = client_details.template("league-manager", server.provision.context.settings)
    details.developer_email = BOOTSTRAP_STAFF_EMAIL
    details.redirect_uris = ["http://127.0.0.1:9000/callback"]
    with server.provision.context.session() as db:
        staff = find_by_email(db, BOOTSTRAP_STAFF_EMAIL)
        assert staff is not None
        workflow.submit(server.provision.context, db, staff, details)


def reveal_the_secret(server: LiveServer, client_id: str) -> str:
    """Step 3's **Show the secret once** in the portal."""
    with server.provision.context.session() as db:
        staff = find_by_email(db, BOOTSTRAP_STAFF_EMAIL)
        client = by_client_id(db, client_id)
        assert staff is not None and client is not None
        return reveal_in_portal(server.provision.context, db, client, staff)


def test_the_quick_start_runs_as_printed(tmp_path: Path) -> None:
    with smtp_server() as (mailbox, port), live_server(tmp_path, smtp_env(port)) as server:
        setup = server.pitpass("setup")
        assert setup.returncode == 0, setup.stderr
        password = re.search(r"password: (\S+)", setup.stdout)
        assert password is not None
        chapter = httpx.get(f"{server.base_url}/oauth2/book/quick_start.html", timeout=30).text
        shell = snippets(chapter, "sh")
        shown = snippets(chapter, "text") + snippets(chapter, "json")
        reader = Reader(server, tmp_path / "reader")

        assert shell[0].strip() == "make run"  # the live server stands in for it
        reader.run(shell[1], PASSWORD=password[1])

        request_the_client(server)
        approved = reader.run(shell[2])
        assert "approved request #1: client_id my-league-manager" in approved
        assert "approved request #1: client_id my-league-manager" in "".join(shown)
        reader.run(shell[3], CLIENT_SECRET=reveal_the_secret(server, "my-league-manager"))

        # Step 4: the authorize address the chapter shows, opened in a signed-in browser.
        authorize = next(text for text in shown if "/authorize?" in text).strip()
        world = World(server, mailbox)
        browser = world.browser()
        world.sign_in(browser, BOOTSTRAP_STAFF_EMAIL, password=password[1])
        consent = browser.get(authorize.removeprefix(server.base_url))
        back = world.consent(browser, consent)
        assert back.headers["location"].startswith("http://127.0.0.1:9000/callback?code=")
        code = parse_qs(urlsplit(back.headers["location"]).query)["code"][0]
        reader.run(shell[4], CODE=code)

        tokens = json.loads(reader.run(shell[5]))
        assert tokens["token_type"] == "Bearer" and "refresh_token" in tokens
        profile = json.loads(reader.run(shell[6], ACCESS_TOKEN=tokens["access_token"]))
        assert profile == next(json.loads(text) for text in shown if "iracing_cust_id" in text)

        created = reader.run(shell[7])
        secret = re.search(r"client_secret: (\S+)", created)
        assert secret is not None and "my-data-tool" in created
        limited = json.loads(reader.run(shell[8], CLIENT_SECRET=secret[1]))
        assert limited["scope"] == "iracing.auth iracing.profile"

        assert "client_secret:" in reader.run(shell[9])
        assert len(shell) == 10, "a snippet was added to the quick start: run it here"
