"""The floor of the code exchange on Pitpass's stack, for `../shared/peers` (issue #14).

The least a PKCE code exchange can do on Starlette + uvicorn (uvloop, httptools) +
stdlib `sqlite3` + PyJWT's ES256: parse the form, find the unspent code, check the
S256 challenge, spend it, open a session, store a refresh token, commit, sign an
access token, answer JSON. Nothing else: no client authentication, no keyed hashes,
no access log, no metrics, no headers of its own. What it reaches in a run is the
most Pitpass's code exchange could reach in that run on this stack; docs/benchmarks.md
("The floor") says how to add it to the harness and what it measured.

Run by the harness as `uvicorn app:app` from this folder; the database is FLOOR_DB.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import sqlite3
import time
import uuid
from urllib.parse import parse_qsl

import jwt
from cryptography.hazmat.primitives.asymmetric import ec
from mint import s256
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

ISSUER = "http://127.0.0.1:8601"
ACCESS_TOKEN_SECONDS = 600
SESSION_SECONDS = 86_400
SIGNING_KEY = ec.generate_private_key(ec.SECP256R1())
# One connection, used by the event loop's thread only (a test client runs the app in another).
database = sqlite3.connect(os.environ.get("FLOOR_DB", "floor.db"), check_same_thread=False)
database.execute("PRAGMA journal_mode=WAL")
database.execute("PRAGMA synchronous=NORMAL")  # as Pitpass's SQLite engine


def invalid_grant() -> Response:
    return JSONResponse({"error": "invalid_grant"}, status_code=400)


async def token(request: Request) -> Response:
    form = dict(parse_qsl((await request.body()).decode()))
    code_hash = hashlib.sha256(form.get("code", "").encode()).hexdigest()
    row = database.execute(
        "SELECT session_id, challenge, redirect_uri FROM codes "
        "WHERE code_hash = ? AND consumed_at IS NULL",
        (code_hash,),
    ).fetchone()
    if row is None:
        return invalid_grant()
    session_id, challenge, redirect_uri = row
    if s256(form.get("code_verifier", "")) != challenge or form.get("redirect_uri") != redirect_uri:
        return invalid_grant()
    now = int(time.time())
    refresh_token = secrets.token_urlsafe(32)
    database.execute("UPDATE codes SET consumed_at = ? WHERE code_hash = ?", (now, code_hash))
    database.execute(
        "INSERT INTO sessions (id, created_at, expires_at) VALUES (?, ?, ?)",
        (session_id, now, now + SESSION_SECONDS),
    )
    database.execute(
        "INSERT INTO refresh_tokens (token_hash, session_id, expires_at) VALUES (?, ?, ?)",
        (hashlib.sha256(refresh_token.encode()).hexdigest(), session_id, now + SESSION_SECONDS),
    )
    database.commit()
    claims = {
        "iss": ISSUER,
        "sub": "1",
        "aud": "data-server",
        "iat": now,
        "exp": now + ACCESS_TOKEN_SECONDS,
        "jti": str(uuid.uuid4()),
        "session_id": session_id,
    }
    access_token = jwt.encode(
        claims, SIGNING_KEY, algorithm="ES256", headers={"typ": "at+jwt", "kid": "floor"}
    )
    return JSONResponse(
        {
            "access_token": access_token,
            "token_type": "Bearer",
            "expires_in": ACCESS_TOKEN_SECONDS,
            "refresh_token": refresh_token,
        },
        headers={"Cache-Control": "no-store"},
    )


async def healthz(request: Request) -> Response:
    return PlainTextResponse("ok")


app = Starlette(routes=[Route("/token", token, methods=["POST"]), Route("/healthz", healthz)])
