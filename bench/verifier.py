"""`python -m bench verifier`: `pitpass_kit.resource.TokenVerifier` on one core (issue #13,
item 2).

What a resource server spends per request on the access token, pinned to one CPU:
- `fresh`: every token distinct, so every one is a cache miss: the header and the
  claims parsed, the ES256 signature checked (joserfc), `typ`, `iss`, `aud`, `exp`,
  `nbf`, `iat` and a required scope checked, and the result remembered;
- `repeated`: a thousand tokens presented again and again (all in the cache): a
  SHA-256 of the token, a look-up, `exp`, the key still published, the scope;
- beside them the ES256 signature check alone (`cryptography`), the ceiling of any
  verifier on this core at this hour (bench/protocol.py's `verify` scenario reports the
  same figure), to read the others against.

The tokens carry Pitpass's header and claims (oauth/access_tokens.py), minted up front
with PyJWT (a third of joserfc's signing time) on a key served as a JWKS through
`httpx.MockTransport`: offline verification never reaches the issuer, so no server runs.
"""

from __future__ import annotations

import os
import time
import uuid
from typing import Any

import httpx
import jwt
from cryptography.hazmat.primitives.asymmetric import ec
from joserfc import __version__ as joserfc_version
from joserfc.jwk import ECKey

from bench.protocol import TokenCheck, _ecdsa_ceiling
from pitpass_kit.resource import TokenVerifier

ISSUER = "https://auth.bench.example/oauth2"
AUDIENCE = "data-server"
SCOPE = "iracing.auth"
REPEATED_DISTINCT = 1_000


def _tokens(private: ec.EllipticCurvePrivateKey, kid: str, count: int) -> list[str]:
    now = int(time.time())
    header = {"typ": "at+jwt", "kid": kid, "jku": f"{ISSUER}/jwks"}
    minted = []
    for number in range(count):
        claims = {
            "iss": ISSUER,
            "sub": str(100001 + number),
            "aud": ["bench-client", AUDIENCE],
            "exp": now + 3600,
            "iat": now,
            "auth_time": now - 60,
            "jti": str(uuid.uuid4()),
            "session_id": str(uuid.uuid4()),
            "client_id": "bench-client",
            "scope": f"{SCOPE} iracing.profile",
            "iracing_cust_id": 100001 + number,
            "iracing_group_ids": [1],
            "iracing_env": None,
        }
        minted.append(jwt.encode(claims, private, algorithm="ES256", headers=header))
    return minted


def _rate(count: int, seconds: float) -> dict[str, Any]:
    return {
        "tokens": count,
        "seconds": round(seconds, 3),
        "per_second": round(count / seconds, 1),
        "us_per_token": round(seconds / count * 1e6, 2),
    }


def run(cpu: int, seconds: float, tokens: int) -> dict[str, Any]:
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {cpu})
    key = ECKey.generate_key("P-256")
    kid = key.thumbprint()
    jwks = {"keys": [key.as_dict(private=False) | {"kid": kid, "alg": "ES256", "use": "sig"}]}
    private = key.private_key
    assert isinstance(private, ec.EllipticCurvePrivateKey)
    fresh_tokens = _tokens(private, kid, tokens)
    repeated_tokens = _tokens(private, kid, REPEATED_DISTINCT)

    def issuer(_request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json=jwks)

    verifier = TokenVerifier(
        ISSUER, AUDIENCE, http=httpx.Client(transport=httpx.MockTransport(issuer))
    )
    for token in repeated_tokens:  # the JWKS fetched once, and these remembered
        verifier.verify(token, SCOPE)

    count, started = 0, time.perf_counter()
    for token in fresh_tokens:
        verifier.verify(token, SCOPE)
        count += 1
        if time.perf_counter() - started >= seconds:
            break
    fresh = _rate(count, time.perf_counter() - started)
    if count == len(fresh_tokens):
        fresh["note"] = "ran out of tokens before the time bound: raise --tokens"

    count, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        for token in repeated_tokens:
            verifier.verify(token, SCOPE)
        count += len(repeated_tokens)
    repeated = _rate(count, time.perf_counter() - started)
    repeated["distinct_tokens"] = REPEATED_DISTINCT

    check = TokenCheck(fresh_tokens[0], jwks, ISSUER, AUDIENCE)
    ceiling_count, ceiling_seconds = _ecdsa_ceiling(check, seconds, 10**9)
    assert verifier.jwks.fetches == 1
    return {
        "cpu": cpu,
        "library": f"joserfc {joserfc_version}",
        "seconds": seconds,
        "fresh": fresh,
        "repeated": repeated,
        "ecdsa_p256_ceiling_one_core": round(ceiling_count / ceiling_seconds, 1),
    }
