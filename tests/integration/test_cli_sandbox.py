"""`pitpass sandbox` (issue #13, item 4): on a new database after `pitpass setup`, the
printed snippet gets a token at once; run again, it reuses the member and the client and
prints credentials that work; a choice it cannot honour is one line and exit 2."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from pitpass.cli import BOOTSTRAP_STAFF_EMAIL as STAFF_EMAIL
from pitpass.services.members import find_by_email
from tests.support import LiveServer, Provisioner, live_server, run_cli


def run_snippet(snippet: str) -> dict[str, object]:
    """The snippet as a developer pastes it into bash."""
    done = subprocess.run(
        ["bash", "-c", snippet], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    answer: dict[str, object] = json.loads(done.stdout)
    return answer


def password_hash_of(server: LiveServer, email: str) -> str:
    provision = Provisioner.for_env(server.env)
    try:
        with provision.context.session() as db:
            member = find_by_email(db, email)
            assert member is not None
            return member.password_hash
    finally:
        provision.close()


def sandbox(server: LiveServer, *args: str) -> dict[str, object]:
    made = run_cli(server.env, "sandbox", "--json", *args)
    assert made.returncode == 0, made.stderr
    answer: dict[str, object] = json.loads(made.stdout)
    return answer


def test_the_printed_snippet_gets_a_token_and_a_second_run_reuses(tmp_path: Path) -> None:
    with live_server(tmp_path, {}) as server:
        refused = run_cli(server.env, "sandbox")
        assert refused.returncode == 2 and "run `pitpass setup`" in refused.stderr
        assert len(refused.stderr.strip().splitlines()) == 1
        assert run_cli(server.env, "setup").returncode == 0

        first = sandbox(server, "--customer-id", "424242")
        assert first["customer_id"] == 424242 and first["reused"] is False
        assert first["issuer"] == server.env["PITPASS_ISSUER"]
        tokens = run_snippet(str(first["snippet"]))
        assert tokens["token_type"] == "Bearer" and "refresh_token" in tokens, tokens

        second = sandbox(server)
        assert second["reused"] is True
        assert (second["client_id"], second["customer_id"]) == (first["client_id"], 424242)
        assert second["client_secret"] != first["client_secret"]
        assert second["password"] != first["password"]
        assert "access_token" in run_snippet(str(second["snippet"]))

        human = run_cli(server.env, "sandbox")
        assert human.returncode == 0 and "curl -sS -X POST" in human.stdout
        assert "client_secret:" in human.stdout and "password:" in human.stdout
        # The kit's book snippets read these names: pasted into a shell, they are set.
        exports = human.stdout.split("read these:")[1].strip()
        shown = subprocess.run(
            ["bash", "-c", f'{exports}\necho "$MEMBER_EMAIL $CLIENT_ID"'],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        assert shown.stdout.split() == ["sandbox.driver@example.com", first["client_id"]]


def test_a_customer_id_it_cannot_honour_is_one_line(tmp_path: Path) -> None:
    with live_server(tmp_path, {}) as server:
        assert run_cli(server.env, "setup").returncode == 0
        sandbox(server, "--customer-id", "5000")
        staff_hash = password_hash_of(server, STAFF_EMAIL)
        for args, words in (
            (("--customer-id", "6000"), "--customer-id: sandbox.driver@example.com already has"),
            (("--email", "not-an-email"), "--email:"),
            (("--email", "other@example.com", "--customer-id", "5000"), "--customer-id:"),
            (("--email", STAFF_EMAIL), "--email: staff@pitpass.test belongs to a member the"),
            (("--as", "nobody@example.com"), "--as: 'nobody@example.com' is not an active staff"),
        ):
            refused = run_cli(server.env, "sandbox", *args)
            assert refused.returncode == 2, (args, refused.stdout)
            assert words in refused.stderr, (args, refused.stderr)
            assert len(refused.stderr.strip().splitlines()) == 1
        assert password_hash_of(server, STAFF_EMAIL) == staff_hash  # a real account: untouched
        # A second sandbox member gets a client of its own (live client names are unique).
        other = sandbox(server, "--email", "other@example.com")
        assert other["reused"] is False and "access_token" in run_snippet(str(other["snippet"]))
