"""The `pitpass` command: members, keys, setup; one line and a non-zero exit on bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support import run_cli, server_env


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    environment = server_env(tmp_path, {})
    assert run_cli(environment, "db", "upgrade").returncode == 0
    return environment


def test_members_create_reads_the_password_from_stdin(env: dict[str, str]) -> None:
    created = run_cli(
        env,
        "members",
        "create",
        "--email",
        "Ana@Example.com",
        "--name",
        "Ana Lap",
        "--staff",
        "--group-id",
        "7",
        "--group-id",
        "9",
        "--json",
        stdin="a long and private password\n",
    )
    assert created.returncode == 0, created.stderr
    summary = json.loads(created.stdout)
    assert summary["email"] == "ana@example.com"
    assert summary["staff"] is True
    assert summary["group_ids"] == [7, 9]
    assert summary["customer_id"] == 100001
    listed = json.loads(run_cli(env, "members", "list", "--json").stdout)
    assert [row["email"] for row in listed] == ["ana@example.com"]


def test_members_create_has_no_password_option(env: dict[str, str]) -> None:
    result = run_cli(
        env,
        "members",
        "create",
        "--email",
        "a@example.com",
        "--name",
        "A",
        "--password",
        "visible in ps",
    )
    assert result.returncode != 0
    assert "No such option: --password" in result.stderr


@pytest.mark.parametrize(
    ("args", "stdin", "message"),
    [
        (
            ["--email", "dup@example.com", "--name", "B"],
            "another good password\n",
            "pitpass: --email: An account with this email already exists. Sign in instead.",
        ),
        (
            ["--email", "new@example.com", "--name", "C"],
            "short\n",
            "pitpass: --password: Use at least 10 characters.",
        ),
        (
            ["--email", "nonsense", "--name", "D"],
            "another good password\n",
            "pitpass: --email: Enter an email address like name@example.com.",
        ),
        (
            ["--email", "e@example.com", "--name", "E", "--customer-id", "100001"],
            "another good password\n",
            "pitpass: --customer-id: Customer id 100001 is already taken.",
        ),
        (["--email", "f@example.com", "--name", "F"], "", "pitpass: no password given on stdin"),
    ],
)
def test_members_create_refuses_bad_input_in_one_line(
    env: dict[str, str], args: list[str], stdin: str, message: str
) -> None:
    first = run_cli(
        env,
        "members",
        "create",
        "--email",
        "dup@example.com",
        "--name",
        "A",
        stdin="a long and private password\n",
    )
    assert first.returncode == 0
    result = run_cli(env, "members", "create", *args, stdin=stdin)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [message]
    listed = json.loads(run_cli(env, "members", "list", "--json").stdout)
    assert len(listed) == 1


def test_setup_prints_the_first_staff_password_once(tmp_path: Path) -> None:
    env = server_env(tmp_path, {})
    first = run_cli(env, "setup")
    assert first.returncode == 0, first.stderr
    assert "email:    staff@pitpass.test" in first.stdout
    password = first.stdout.split("password: ")[1].split()[0]
    assert len(password) >= 16
    second = run_cli(env, "setup")
    assert second.returncode == 0
    assert password not in second.stdout
    assert "sign in with an existing account" in second.stdout


def test_keys_list_and_rotate(env: dict[str, str]) -> None:
    assert run_cli(env, "setup").returncode == 0  # creates the first key
    before = json.loads(run_cli(env, "keys", "list", "--json").stdout)
    assert [row["status"] for row in before] == ["active"]
    rotated = json.loads(run_cli(env, "keys", "rotate", "--json").stdout)
    assert rotated["retired"] == [before[0]["kid"]]
    after = json.loads(run_cli(env, "keys", "list", "--json").stdout)
    assert {row["kid"]: row["status"] for row in after} == {
        rotated["kid"]: "active",
        before[0]["kid"]: "retired",
    }
    table = run_cli(env, "keys", "list")
    assert "Signing keys" in table.stdout


def test_serve_refuses_an_old_schema(tmp_path: Path) -> None:
    env = server_env(tmp_path, {})
    result = run_cli(env, "serve", "--port", "1")
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "pitpass: the database schema is not up to date; run `pitpass db upgrade` first"
    )


def test_commands_on_an_unreachable_database_fail_in_one_line(tmp_path: Path) -> None:
    env = server_env(tmp_path, {"PITPASS_DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none"})
    result = run_cli(env, "members", "list")
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1
    assert result.stderr.startswith("pitpass: the database refused the operation")
