"""Staff commands (issue #3, item 5): every change names its actor; one line on bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pitpass.config import load_settings
from pitpass.core.masking import mask_secret
from pitpass.db.models import ClientSecret
from pitpass.services import client_secrets, members, workflow
from pitpass.services.client_details import ClientDetails
from pitpass.services.context import AppContext
from tests.support import run_cli, server_env

STAFF = "staff@example.com"
LEAGUE = [
    "--name",
    "My League Manager",
    "--type",
    "server-side",
    "--flow",
    "authorization_code",
    "--developer-name",
    "My Racing League Inc.",
    "--developer-url",
    "https://www.myleague.com",
    "--developer-email",
    "developer@example.com",
    "--redirect-uri",
    "https://www.myleague.com/oauth/callback",
    "--audience",
    "data-server",
]


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    environment = server_env(tmp_path, {})
    assert run_cli(environment, "db", "upgrade").returncode == 0
    for email, staff in ((STAFF, True), ("dev@example.com", False)):
        created = run_cli(
            environment,
            "members",
            "create",
            "--email",
            email,
            "--name",
            "X",
            *(["--staff"] if staff else []),
            stdin="a long enough password\n",
        )
        assert created.returncode == 0, created.stderr
    return environment


def context_for(env: dict[str, str]) -> AppContext:
    return AppContext.from_settings(
        load_settings(
            database_url=env["PITPASS_DATABASE_URL"],
            secret_key=env["PITPASS_SECRET_KEY"],
            data_dir=env["PITPASS_DATA_DIR"],
        )
    )


def test_clients_create_prints_the_secret_once_and_stores_only_its_hash(
    env: dict[str, str],
) -> None:
    created = run_cli(env, "clients", "create", "--as", STAFF, *LEAGUE, "--json")
    assert created.returncode == 0, created.stderr
    issued = json.loads(created.stdout)
    assert issued["client_id"] == "my-league-manager"
    context = context_for(env)
    with context.session() as db:
        stored = db.query(ClientSecret).one()
        expected = client_secrets.secret_hash(
            context, mask_secret(issued["client_secret"], issued["client_id"])
        )
        assert stored.secret_hash == expected
        assert stored.reveal_sealed is None  # printed once; nothing left to show
    context.close()
    shown = json.loads(run_cli(env, "clients", "show", "my-league-manager", "--json").stdout)
    assert "client_secret" not in shown
    assert shown["redirect_uris"] == ["https://www.myleague.com/oauth/callback"]


def test_public_client_gets_no_secret(env: dict[str, str]) -> None:
    spa = [a if a != "server-side" else "single-page-app" for a in LEAGUE]
    created = run_cli(env, "clients", "create", "--as", STAFF, *spa)
    assert created.returncode == 0, created.stderr
    assert "no client_secret: public clients use PKCE" in created.stdout


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            ["--redirect-uri", "https://x.example/cb#frag"],
            "pitpass: --redirect-uri #2: a redirect URI must not contain a fragment: "
            "remove '#frag'",
        ),
        (["--name", "iRacer Tools"], "pitpass: --name: the name must not imitate"),
        (["--type", "desktop"], "pitpass: --type: choose the client type"),
        (
            ["--flow", "password_limited", "--type", "mobile"],
            "pitpass: --flow: password_limited needs a server-side client",
        ),
    ],
)
def test_clients_create_refuses_bad_input_in_one_line(
    env: dict[str, str], change: list[str], message: str
) -> None:
    args = list(LEAGUE)
    for option, value in zip(change[::2], change[1::2], strict=True):
        if option in ("--redirect-uri",):
            args += [option, value]
        else:
            args[args.index(option) + 1] = value
    result = run_cli(env, "clients", "create", "--as", STAFF, *args)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith(message), lines[0]
    listed = json.loads(run_cli(env, "clients", "list", "--json").stdout)
    assert listed["total"] == 0


def test_actions_need_an_active_staff_member(env: dict[str, str]) -> None:
    result = run_cli(env, "clients", "create", "--as", "dev@example.com", *LEAGUE)
    assert result.returncode == 2
    expected = "pitpass: --as: 'dev@example.com' is not an active staff member"
    assert result.stderr.strip() == expected


def test_review_commands_walk_a_request(env: dict[str, str]) -> None:
    context = context_for(env)
    with context.session() as db:
        developer = members.find_by_email(db, "dev@example.com")
        assert developer is not None
        item, _ = workflow.submit(
            context,
            db,
            developer,
            ClientDetails(
                client_name="Pit Wall",
                client_type="server-side",
                flows=["password_limited"],
                developer_email="dev@example.com",
                audiences=["data-server"],
            ),
        )
        request_id = item.id
    context.close()
    queue = json.loads(run_cli(env, "requests", "list", "--json").stdout)
    assert [r["id"] for r in queue["items"]] == [request_id]
    shown = run_cli(env, "requests", "show", str(request_id))
    assert "Pit Wall" in shown.stdout
    no_message = run_cli(env, "requests", "reject", str(request_id), "--as", STAFF)
    assert no_message.returncode == 2
    assert "write a message telling the developer why" in no_message.stderr
    changes = run_cli(
        env, "requests", "request-changes", str(request_id), "--as", STAFF, "--message", "Why?"
    )
    assert changes.returncode == 0, changes.stderr
    too_early = run_cli(env, "requests", "approve", str(request_id), "--as", STAFF)
    assert too_early.returncode == 2
    assert "is changes requested; it cannot be approved now" in too_early.stderr
    bad_status = run_cli(env, "requests", "list", "--status", "pending")
    assert bad_status.stderr.strip().startswith("pitpass: --status: unknown status 'pending'")
    missing = run_cli(env, "requests", "show", "999")
    assert missing.stderr.strip() == "pitpass: there is no request #999"


def test_approve_and_access_list_commands(env: dict[str, str]) -> None:
    context = context_for(env)
    with context.session() as db:
        developer = members.find_by_email(db, "dev@example.com")
        assert developer is not None
        item, _ = workflow.submit(
            context,
            db,
            developer,
            ClientDetails(
                client_name="Pit Wall",
                client_type="server-side",
                flows=["password_limited"],
                developer_email="dev@example.com",
            ),
        )
        request_id = item.id
    context.close()
    approved = run_cli(env, "requests", "approve", str(request_id), "--as", STAFF, "--json")
    assert json.loads(approved.stdout)["client_id"] == "pit-wall"
    added = run_cli(env, "access-list", "add", "pit-wall", "dev@example.com", "--as", STAFF)
    assert added.returncode == 0, added.stderr
    listed = json.loads(run_cli(env, "access-list", "show", "pit-wall", "--json").stdout)
    assert listed == [
        {"email": "dev@example.com", "customer_id": 100002, "display_name": "X", "state": "active"}
    ]
    again = run_cli(env, "access-list", "add", "pit-wall", "100002", "--as", STAFF)
    assert again.stderr.strip() == "pitpass: member: dev@example.com is already on the access list"
    removed = run_cli(env, "access-list", "remove", "pit-wall", "dev@example.com", "--as", STAFF)
    assert removed.returncode == 0
    disabled = run_cli(env, "clients", "disable", "pit-wall", "--as", STAFF)
    assert disabled.stdout.strip() == "disabled pit-wall"
    twice = run_cli(env, "clients", "disable", "pit-wall", "--as", STAFF)
    assert twice.stderr.strip() == "pitpass: client: client pit-wall is already disabled"
    rotated = run_cli(env, "clients", "rotate-secret", "pit-wall", "--as", STAFF, "--json")
    assert len(json.loads(rotated.stdout)["client_secret"]) >= 43
    remind = run_cli(env, "requests", "remind")
    assert remind.stdout.strip() == "0 request(s) near or past due; 0 reminder(s) sent"


def test_set_lifetimes_command(tmp_path: Path) -> None:
    env = server_env(tmp_path, {})
    assert run_cli(env, "db", "upgrade").returncode == 0
    run_cli(
        env,
        "members",
        "create",
        "--email",
        "s@example.com",
        "--name",
        "S",
        "--staff",
        stdin="a long enough password\n",
    )
    created = run_cli(
        env,
        "clients",
        "create",
        "--as",
        "s@example.com",
        "--name",
        "Life",
        "--type",
        "server-side",
        "--flow",
        "password_limited",
        "--developer-email",
        "d@example.com",
    )
    assert created.returncode == 0, created.stderr
    bad = run_cli(
        env,
        "clients",
        "set-lifetimes",
        "life",
        "--as",
        "s@example.com",
        "--refresh-grace-seconds",
        "999",
    )
    assert bad.returncode == 2
    assert (
        bad.stderr.strip() == "pitpass: --refresh-grace-seconds: must be between 0 and 300 seconds"
    )
    ok = run_cli(
        env,
        "clients",
        "set-lifetimes",
        "life",
        "--as",
        "s@example.com",
        "--refresh-grace-seconds",
        "30",
    )
    assert ok.stdout.strip() == (
        "access_token_seconds 600, refresh_token_seconds 604800, refresh_grace_seconds 30"
    )
