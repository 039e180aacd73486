"""The statements both engines share (":name" placeholders), and rows read by column name.

Each exactly-once step (a code, a refresh token) is a conditional
`UPDATE … RETURNING`: whoever updates the row owns it; everyone else sees no row.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from pitpass.storage.records import (
    MemberFields,
    NewCode,
    NewRefreshToken,
    NewSession,
    SessionActivity,
    SessionRecord,
    SessionsToSignOut,
)

Row = Mapping[str, Any]  # sqlite3.Row and asyncpg.Record both read by column name
ReadTime = Callable[[Any], datetime]  # a stored timestamp → aware UTC (base.timestamp_codec)
WriteTime = Callable[[datetime], Any]  # aware UTC → as the engine stores it

# A code's columns are named as NewCode's fields.
CODE_FIELDS = tuple(field.name for field in dataclasses.fields(NewCode))
CODE_TIMES = ("auth_time", "expires_at")
CODE_COLUMNS = ", ".join(CODE_FIELDS[1:])  # after code_hash
MEMBER_COLUMNS = "m.customer_id, m.display_name, m.group_ids, m.is_disabled AS member_disabled"
SESSION_COLUMNS = (
    "s.id AS session_id, s.member_id, s.client_pk, s.scope, s.auth_time, "
    "s.expires_at AS session_expires_at, s.revoked_at, "
    f"{MEMBER_COLUMNS}, c.is_disabled AS client_disabled"
)
SESSION_JOINS = "JOIN members m ON m.id = s.member_id JOIN clients c ON c.id = s.client_pk"

# ----- clients -------------------------------------------------------------------------------

SELECT_CLIENT = (
    "SELECT id, client_id, name, client_type, flows, redirect_uris, audiences, "
    "is_disabled, access_token_seconds, refresh_token_seconds, refresh_grace_seconds "
    "FROM clients WHERE client_id = :client_id"
)
SELECT_CLIENT_SECRETS = (
    "SELECT secret_hash FROM client_secrets WHERE client_pk = :pk "
    "AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > :now)"
)

# ----- codes ---------------------------------------------------------------------------------

INSERT_CODE = (
    f"INSERT INTO authorization_codes ({', '.join(CODE_FIELDS)}) "
    f"VALUES ({', '.join(':' + name for name in CODE_FIELDS)})"
)
SELECT_CODE_STATE = (
    f"SELECT code_hash, {CODE_COLUMNS}, consumed_at, {MEMBER_COLUMNS} FROM authorization_codes "
    "LEFT JOIN members m ON m.id = member_id WHERE code_hash = :code_hash"
)
CONSUME_CODE = (
    "UPDATE authorization_codes SET consumed_at = :now "
    "WHERE code_hash = :code_hash AND consumed_at IS NULL RETURNING session_id"
)

# ----- sessions ------------------------------------------------------------------------------

SELECT_SESSION = f"SELECT {SESSION_COLUMNS} FROM oauth_sessions s {SESSION_JOINS} WHERE s.id = :id"
SELECT_LIVENESS = (
    "SELECT s.revoked_at, s.expires_at, m.is_disabled AS member_disabled, "
    f"c.is_disabled AS client_disabled FROM oauth_sessions s {SESSION_JOINS} WHERE s.id = :id"
)
SESSION_INSERT_COLUMNS = (
    "id, member_id, client_pk, scope, auth_time, created_at, last_activity_at, expires_at, "
    "first_ip, last_ip, first_user_agent, last_user_agent, web_session_id"
)
SESSION_INSERT_VALUES = (
    ":id, :member_id, :client_pk, :scope, :auth_time, :now, :now, :expires_at, "
    ":ip, :ip, :ua, :ua, :web_session_id"
)
INSERT_SESSION = (
    f"INSERT INTO oauth_sessions ({SESSION_INSERT_COLUMNS}) VALUES ({SESSION_INSERT_VALUES})"
)
SIGN_OUT = (
    "UPDATE oauth_sessions SET revoked_at = :now, revoked_reason = :reason WHERE revoked_at IS NULL"
)
SIGN_OUT_CONDITIONS = {
    "session_id": "id = :session_id",
    "member_id": "member_id = :member_id",
    "client_pk": "client_pk = :client_pk",
}
SELECT_MEMBER_BY_EMAIL = (
    f"SELECT m.id, m.password_hash, {MEMBER_COLUMNS} FROM members m WHERE m.email = :email"
)
SELECT_ACCESS = (
    "SELECT 1 FROM client_access WHERE client_pk = :client_pk AND member_id = :member_id "
    "AND accepted_at IS NOT NULL AND removed_at IS NULL"
)

# ----- refresh tokens ------------------------------------------------------------------------

SELECT_REFRESH_STATE = (
    f"SELECT r.used_at, r.expires_at, r.created_at, {SESSION_COLUMNS} FROM refresh_tokens r "
    f"JOIN oauth_sessions s ON s.id = r.session_id {SESSION_JOINS} "
    "WHERE r.token_hash = :token_hash"
)
INSERT_REFRESH_INTO = "INSERT INTO refresh_tokens (token_hash, session_id, created_at, expires_at)"
# A refresh token is spent only while its session stands: a sign-out racing a refresh wins.
# A correlated EXISTS looks up the one session by its key; `session_id IN (SELECT id …
# WHERE revoked_at IS NULL)` made SQLite list every live session on each refresh.
SPEND_REFRESH = (
    "UPDATE refresh_tokens SET {assignments} WHERE token_hash = :spent_hash "
    "AND used_at IS NULL AND expires_at > :now "
    "AND EXISTS (SELECT 1 FROM oauth_sessions s WHERE s.id = refresh_tokens.session_id "
    "AND s.revoked_at IS NULL) "
    "RETURNING session_id"
)
MARK_REFRESH_SPENT = SPEND_REFRESH.format(assignments="used_at = :now")
# A retry retires the successor nobody heard of: spent, and expired at that moment, which
# tells it from a successor its client used (records.RefreshState.retired).
MARK_REFRESH_RETIRED = SPEND_REFRESH.format(assignments="used_at = :now, expires_at = :now")
# The token a rotation issued in place of the one it spent: the rotation writes the spent
# token's used_at and its successor's created_at from one `now`, in one atomic write.
SELECT_REFRESH_SUCCESSOR = (
    "SELECT token_hash, used_at FROM refresh_tokens "
    "WHERE session_id = :session_id AND created_at = :spent_at"
)
TOUCH_SESSION = (
    "UPDATE oauth_sessions SET last_activity_at = :now, expires_at = :session_expires_at, "
    "last_ip = :ip, last_user_agent = :ua"
)


def sign_out(which: SessionsToSignOut) -> str:
    """The statement that signs out the live sessions `which` names."""
    conditions = [SIGN_OUT_CONDITIONS[name] for name in which.params()]
    if not conditions:
        raise ValueError("a sign-out names its sessions")
    return " AND ".join([SIGN_OUT, *conditions]) + " RETURNING id"


# ----- rows → records --------------------------------------------------------------------


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


def member_fields(row: Row) -> MemberFields:
    """The MEMBER_COLUMNS of a row."""
    return MemberFields(
        customer_id=row["customer_id"],
        display_name=row["display_name"],
        group_ids=list(_json(row["group_ids"]) or []),
        member_disabled=bool(row["member_disabled"]),
    )


def session_record(row: Row, read_time: ReadTime) -> SessionRecord:
    """The SESSION_COLUMNS of a row."""
    return SessionRecord(
        session_id=row["session_id"],
        member_id=row["member_id"],
        client_pk=row["client_pk"],
        scope=row["scope"],
        auth_time=read_time(row["auth_time"]),
        expires_at=read_time(row["session_expires_at"]),
        revoked=row["revoked_at"] is not None,
        member=member_fields(row),
        client_disabled=bool(row["client_disabled"]),
    )


def code_record(row: Row, read_time: ReadTime) -> NewCode:
    """The code_hash and CODE_COLUMNS of a row."""
    values = {name: row[name] for name in CODE_FIELDS}
    for name in CODE_TIMES:
        values[name] = read_time(values[name])
    return NewCode(**values)


def json_list(value: Any) -> tuple[Any, ...]:
    """A JSON column as a tuple (text on SQLite, decoded or text on PostgreSQL)."""
    return tuple(_json(value) or ())


# ----- records → parameters --------------------------------------------------------------


def code_params(code: NewCode, write_time: WriteTime) -> dict[str, Any]:
    params = {name: getattr(code, name) for name in CODE_FIELDS}
    for name in CODE_TIMES:
        params[name] = write_time(params[name])
    return params


def session_params(session: NewSession, write_time: WriteTime) -> dict[str, Any]:
    return {
        "id": session.session_id,
        "member_id": session.member_id,
        "client_pk": session.client_pk,
        "scope": session.scope,
        "auth_time": write_time(session.auth_time),
        "now": write_time(session.now),
        "expires_at": write_time(session.expires_at),
        "ip": session.ip,
        "ua": session.user_agent,
        "web_session_id": session.web_session_id,
    }


def refresh_params(refresh: NewRefreshToken, write_time: WriteTime) -> dict[str, Any]:
    return {
        "token_hash": refresh.token_hash,
        "session_id": refresh.session_id,
        "now": write_time(refresh.now),
        "refresh_expires_at": write_time(refresh.expires_at),
    }


def activity_params(activity: SessionActivity, write_time: WriteTime) -> dict[str, Any]:
    return {
        "now": write_time(activity.now),
        "session_expires_at": write_time(activity.expires_at),
        "ip": activity.ip,
        "ua": activity.user_agent,
    }


def sign_out_params(
    which: SessionsToSignOut, reason: str, now: datetime, write_time: WriteTime
) -> dict[str, Any]:
    return which.params() | {"now": write_time(now), "reason": reason}
