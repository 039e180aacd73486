"""`pitpass members disable|enable|set-staff EMAIL --as STAFF --reason TEXT` (issue #12,
item 7): the console's rules from the command line; bad input is one line and exit 2."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from pitpass.db.models import AuditEvent, Member
from tests.support import CliResult, Provisioner, run_cli, server_env

STAFF = "staff@example.com"
OTHER_STAFF = "second@example.com"
MEMBER = "ana@example.com"
PASSWORD = "a long enough password"


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    environment = server_env(tmp_path, {})
    assert run_cli(environment, "db", "upgrade").returncode == 0
    provision = Provisioner.for_env(environment)
    try:
        provision.member(STAFF, PASSWORD, staff=True)
        provision.member(MEMBER, PASSWORD)
    finally:
        provision.close()
    return environment


def state(env: dict[str, str], email: str) -> tuple[bool, bool]:
    """(is_staff, is_disabled) as stored."""
    provision = Provisioner.for_env(env)
    try:
        with provision.context.session() as db:
            member = db.scalar(select(Member).where(Member.email == email))
            assert member is not None
            return member.is_staff, member.is_disabled
    finally:
        provision.close()


def audit_rows(env: dict[str, str]) -> list[tuple[str, str, str | None, str | None]]:
    """(action, actor, target, reason) of the member.* events, oldest first."""
    provision = Provisioner.for_env(env)
    try:
        with provision.context.session() as db:
            query = (
                select(AuditEvent)
                .where(AuditEvent.action.startswith("member."))
                .order_by(AuditEvent.id)
            )
            return [
                (e.action, e.actor, e.target_id, e.details.get("reason"))
                for e in db.scalars(query)
                if e.action != "member.created"
            ]
    finally:
        provision.close()


def refused(result: CliResult, text: str) -> None:
    assert result.returncode == 2, result.stdout
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("pitpass: ") and text in lines[0], lines[0]


def test_disable_enable_and_set_staff_are_audited_with_actor_and_reason(
    env: dict[str, str],
) -> None:
    disabled = run_cli(env, "members", "disable", MEMBER, "--as", STAFF, "--reason", "spam")
    assert disabled.returncode == 0, disabled.stderr
    assert "disabled ana@example.com" in disabled.stdout
    assert state(env, MEMBER) == (False, True)
    enabled = run_cli(env, "members", "enable", MEMBER, "--as", STAFF, "--reason", "appeal won")
    assert enabled.returncode == 0, enabled.stderr
    assert state(env, MEMBER) == (False, False)
    granted = run_cli(env, "members", "set-staff", MEMBER, "--as", STAFF, "--reason", "hired")
    assert granted.returncode == 0 and "now staff" in granted.stdout
    assert state(env, MEMBER) == (True, False)
    removed = run_cli(
        env, "members", "set-staff", MEMBER, "--as", STAFF, "--off", "--reason", "moved on"
    )
    assert removed.returncode == 0 and "no longer staff" in removed.stdout
    assert state(env, MEMBER) == (False, False)
    customer_id = "100002"
    assert audit_rows(env) == [
        ("member.disabled", STAFF, customer_id, "spam"),
        ("member.enabled", STAFF, customer_id, "appeal won"),
        ("member.staff_granted", STAFF, customer_id, "hired"),
        ("member.staff_removed", STAFF, customer_id, "moved on"),
    ]


def test_refusals_are_one_line_and_change_nothing(env: dict[str, str]) -> None:
    reason = ["--reason", "because"]
    refused(
        run_cli(env, "members", "disable", "nobody@example.com", "--as", STAFF, *reason),
        "no member has the email 'nobody@example.com'",
    )
    refused(
        run_cli(env, "members", "disable", MEMBER, "--as", MEMBER, *reason),
        "--as: 'ana@example.com' is not an active staff member",
    )
    refused(
        run_cli(env, "members", "disable", MEMBER, "--as", "ghost@example.com", *reason),
        "is not an active staff member",
    )
    refused(run_cli(env, "members", "disable", MEMBER, "--as", STAFF), "--reason: Say why")
    refused(
        run_cli(env, "members", "disable", MEMBER, "--as", STAFF, "--reason", "x" * 501),
        "--reason: Use at most 500 characters.",
    )
    refused(run_cli(env, "members", "enable", MEMBER, "--as", STAFF, *reason), "is not disabled")
    refused(
        run_cli(env, "members", "set-staff", MEMBER, "--as", STAFF, "--off", *reason),
        "ana@example.com is not staff.",
    )
    refused(
        run_cli(env, "members", "disable", "nul\x00@example.com", "--as", STAFF, *reason),
        "no member has the email",
    )
    assert state(env, MEMBER) == (False, False)
    assert audit_rows(env) == []


def test_staff_cannot_disable_themself_and_the_last_staff_member_keeps_staff(
    env: dict[str, str],
) -> None:
    reason = ["--reason", "testing"]
    refused(
        run_cli(env, "members", "set-staff", STAFF, "--as", STAFF, "--off", *reason),
        "staff@example.com is the last enabled staff member and cannot lose staff: nobody "
        "would be left to review requests or manage members",
    )
    refused(
        run_cli(env, "members", "disable", STAFF, "--as", STAFF, *reason),
        "is the last enabled staff member and cannot be disabled",
    )
    granted = run_cli(env, "members", "set-staff", OTHER_STAFF, "--as", STAFF, *reason)
    refused(granted, "no member has the email")  # not a member yet
    provision = Provisioner.for_env(env)
    try:
        provision.member(OTHER_STAFF, PASSWORD, staff=True)
    finally:
        provision.close()
    refused(
        run_cli(env, "members", "disable", STAFF, "--as", STAFF, *reason),
        "You cannot disable your own account; ask another staff member.",
    )
    refused(
        run_cli(env, "members", "set-staff", STAFF, "--as", STAFF, "--off", *reason),
        "You cannot remove your own staff flag",
    )
    assert state(env, STAFF) == (True, False)
    # Another staff member may.
    removed = run_cli(env, "members", "set-staff", STAFF, "--as", OTHER_STAFF, "--off", *reason)
    assert removed.returncode == 0, removed.stderr
    assert state(env, STAFF) == (False, False)
    assert audit_rows(env) == [("member.staff_removed", OTHER_STAFF, "100001", "testing")]


def test_clear_two_step_turns_the_app_off_with_a_reason(env: dict[str, str]) -> None:
    provision = Provisioner.for_env(env)
    try:
        with provision.context.session() as db:
            member = db.scalar(select(Member).where(Member.email == MEMBER))
            assert member is not None
            member.totp_secret_sealed = b"sealed secret"
            member.totp_enabled_at = member.created_at
    finally:
        provision.close()
    no_reason = run_cli(env, "members", "clear-two-step", MEMBER, "--as", STAFF)
    assert no_reason.returncode == 2 and "--reason" in no_reason.stderr
    done = run_cli(
        env, "members", "clear-two-step", MEMBER, "--as", STAFF, "--reason", "lost phone"
    )
    assert done.returncode == 0, done.stderr
    assert "authenticator app is off" in done.stdout
    action, actor, _target, reason = audit_rows(env)[-1]
    assert (action, actor, reason) == ("member.two_step_cleared", STAFF, "lost phone")
    again = run_cli(env, "members", "clear-two-step", MEMBER, "--as", STAFF, "--reason", "again")
    assert again.returncode == 2 and "has no authenticator app" in again.stderr
    assert len(again.stderr.strip().splitlines()) == 1
