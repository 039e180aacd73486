"""No password, code or secret in clear in the database or the logs (issue #2, acceptance).

A real server process, a real SMTP server, a real HTTP client: sign up through
the CLI, sign in with the emailed code and "remember this browser", then read
every row of every table, the raw database files and the whole log.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import httpx

from pitpass.core.masking import mask_secret
from pitpass.http.cookies import CHALLENGE_COOKIE, REMEMBER_COOKIE, SESSION_COOKIE
from tests.support import TEST_SECRET_KEY, dump_database, live_server, smtp_env, smtp_server

EMAIL = "secret.keeper@example.com"
PASSWORD = "Hunter2-but-much-longer!"
CSRF_FIELD = re.compile(r'name="csrf_token" value="([^"]+)"')


def form_post(client: httpx.Client, page: str, action: str, **fields: str) -> httpx.Response:
    token = CSRF_FIELD.search(client.get(page).text)
    assert token
    return client.post(action, data={"csrf_token": token.group(1), **fields})


def test_sign_in_leaves_no_secret_in_the_database_or_the_logs(tmp_path: Path) -> None:
    with smtp_server() as (mailbox, port), live_server(tmp_path, smtp_env(port)) as server:
        created = server.pitpass(
            "members", "create", "--email", EMAIL, "--name", "Keeper", stdin=PASSWORD + "\n"
        )
        assert created.returncode == 0, created.stderr
        with httpx.Client(base_url=server.base_url) as client:
            started = form_post(client, "/signin", "/signin", email=EMAIL, password=PASSWORD)
            assert started.status_code == 303
            challenge = client.cookies[CHALLENGE_COOKIE]
            code = mailbox.code_for(EMAIL)
            done = form_post(client, "/signin/code", "/signin/code", code=code, remember="1")
            assert done.status_code == 303
            assert client.get("/account").status_code == 200
            session, remember = client.cookies[SESSION_COOKIE], client.cookies[REMEMBER_COOKIE]
            log = server.log_text()

    secrets_in_clear = {
        "password": PASSWORD,
        "masked password": mask_secret(PASSWORD, EMAIL),
        "session token": session,
        "remember cookie": remember,
        "challenge token": challenge,
        "secret key": TEST_SECRET_KEY,
    }
    rows = dump_database(server.env["PITPASS_DATABASE_URL"])
    assert EMAIL in rows  # the dump does read the tables
    raw_files = b"".join(path.read_bytes() for path in tmp_path.glob("pitpass.db*"))
    for name, value in secrets_in_clear.items():
        assert value not in rows, f"{name} is in the database"
        assert value.encode() not in raw_files, f"{name} is in the database files"
        assert value not in log, f"{name} is in the log"
    assert code not in rows, "the sign-in code is in the database"
    assert not re.search(rf"\b{code}\b", log), "the sign-in code is in the log"
    # The log is JSON, one object a line, and it did record the sign-in.
    events = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
    assert any(event.get("path") == "/signin/code" for event in events)
