"""The floor of the code exchange on Pitpass's stack, for `../shared/peers` (issue #14).

A PKCE code exchange with one transaction per request, as Pitpass does it, and nothing
else, on the pieces Pitpass's token endpoint uses: a plain Starlette route served as
`pitpass serve` serves (serve.py), stdlib `sqlite3` (WAL, synchronous=NORMAL),
claims and answer encoded with orjson, ES256 by PyJWT's JWS layer. It parses the form,
spends the unspent code whose S256 challenge (checked by Pitpass's `core.pkce`) and
redirect URI match, opens a session, stores
a refresh token, commits, signs an access token and answers JSON with
`Cache-Control: no-store` (RFC 6749 §5.1). No client authentication, keyed hashes,
access log, metrics or request ids. What it reaches in a run bounds what a code exchange
of this design reaches on this stack in that run; docs/benchmarks.md ("the floor of the
code exchange") has the figures, README.md how to add it to the harness.

Started by the harness as `python serve.py PORT` from this folder; the database is FLOOR_DB.
"""

from __future__ import annotations

import hashlib
import secrets
import sqlite3
import time
import uuid
from typing import Any
from urllib.parse import parse_qsl

import jwt
import orjson
from cryptography.hazmat.primitives.asymmetric import ec
from mint import database_path
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from pitpass.core.pkce import verifier_matches

ISSUER = "http://127.0.0.1:8601"
ACCESS_TOKEN_SECONDS = 600
SESSION_SECONDS = 86_400
SIGNING_KEY = ec.generate_private_key(ec.SECP256R1())
# One connection, used by the event loop's thread only (a test client runs the app in another).
database = sqlite3.connect(database_path(), check_same_thread=False)
database.execute("PRAGMA journal_mode=WAL")
database.execute("PRAGMA synchronous=NORMAL")  # as Pitpass's SQLite engine


def answer(body: dict[str, Any], status_code: int = 200) -> Response:
    return Response(
        orjson.dumps(body),
        status_code=status_code,
        media_type="application/json",
        headers={"Cache-Control": "no-store"},
    )


def exchange(form: dict[str, str]) -> tuple[str, str] | None:
    """Spend the code and open its session and refresh token, in one transaction:
    (session id, refresh token), or None when no unspent code matches."""
    code_hash = hashlib.sha256(form.get("code", "").encode()).hexdigest()
    row = database.execute(
        "SELECT session_id, challenge, redirect_uri FROM codes "
        "WHERE code_hash = ? AND consumed_at IS NULL",
        (code_hash,),
    ).fetchone()
    if row is None:
        return None
    session_id, challenge, redirect_uri = row
    verifier = form.get("code_verifier", "")
    # Pitpass's own check (RFC 7636 §4.6, constant time), as its exchange makes it.
    if (
        not verifier_matches(verifier, challenge, "S256")
        or form.get("redirect_uri") != redirect_uri
    ):
        return None
    now = int(time.time())
    spent = database.execute(
        "UPDATE codes SET consumed_at = ? WHERE code_hash = ? AND consumed_at IS NULL",
        (now, code_hash),
    )
    if spent.rowcount != 1:
        database.rollback()
        return None
    refresh_token = secrets.token_urlsafe(32)
    database.execute(
        "INSERT INTO sessions (id, created_at, expires_at) VALUES (?, ?, ?)",
        (session_id, now, now + SESSION_SECONDS),
    )
    database.execute(
        "INSERT INTO refresh_tokens (token_hash, session_id, expires_at) VALUES (?, ?, ?)",
        (hashlib.sha256(refresh_token.encode()).hexdigest(), session_id, now + SESSION_SECONDS),
    )
    database.commit()
    return session_id, refresh_token


async def token(request: Request) -> Response:
    exchanged = exchange(dict(parse_qsl((await request.body()).decode())))
    if exchanged is None:
        return answer({"error": "invalid_grant"}, status_code=400)
    session_id, refresh_token = exchanged
    now = int(time.time())
    claims = {
        "iss": ISSUER,
        "sub": "1",
        "aud": "data-server",
        "iat": now,
        "exp": now + ACCESS_TOKEN_SECONDS,
        "jti": str(uuid.uuid4()),
        "session_id": session_id,
    }
    access_token = jwt.api_jws.encode(
        orjson.dumps(claims), SIGNING_KEY, algorithm="ES256", headers={"typ": "at+jwt"}
    )
    return answer(
        {
            "access_token": access_token,
            "token_type": "Bearer",
            "expires_in": ACCESS_TOKEN_SECONDS,
            "refresh_token": refresh_token,
        }
    )


async def healthz(request: Request) -> Response:
    return PlainTextResponse("ok")


app = Starlette(routes=[Route("/token", token, methods=["POST"]), Route("/healthz", healthz)])
