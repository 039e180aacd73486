"""What a client can discover: RFC 8414 metadata, generated from the policy (it never
advertises what the server would refuse, PRODUCT.md §4), OpenID Connect Discovery 1.0's
document, which adds to it, and the JWKS (RFC 7517)."""

from __future__ import annotations

from typing import Any

import anyio
from starlette.requests import Request
from starlette.responses import Response

from pitpass.config import Settings
from pitpass.core import openid, policy
from pitpass.http.json_body import FastJSONResponse
from pitpass.oauth.access_tokens import jwks_document
from pitpass.oauth.runtime import OAuthRuntime
from pitpass.services import keys


def metadata_document(settings: Settings) -> dict[str, Any]:
    issuer = settings.issuer
    return {
        "issuer": issuer,
        "authorization_endpoint": f"{issuer}/authorize",
        "token_endpoint": f"{issuer}/token",
        "jwks_uri": f"{issuer}/jwks",
        "revocation_endpoint": f"{issuer}/revoke",
        "introspection_endpoint": f"{issuer}/introspect",
        "scopes_supported": sorted(settings.profile.scopes),
        "response_types_supported": list(policy.RESPONSE_TYPES),
        "response_modes_supported": list(policy.RESPONSE_MODES),
        "grant_types_supported": list(policy.GRANT_TYPES),
        "token_endpoint_auth_methods_supported": list(policy.TOKEN_AUTH_METHODS),
        # RFC 7009 revocation authenticates clients as the token endpoint does.
        "revocation_endpoint_auth_methods_supported": list(policy.TOKEN_AUTH_METHODS),
        "introspection_endpoint_auth_methods_supported": list(policy.INTROSPECTION_AUTH_METHODS),
        "code_challenge_methods_supported": list(policy.PKCE_METHODS),
        "authorization_response_iss_parameter_supported": True,  # RFC 9207
        "service_documentation": f"{issuer}/book/",
    }


def openid_configuration_document(settings: Settings) -> dict[str, Any]:
    """OpenID Connect Discovery 1.0 §3: the RFC 8414 document (which stays as it is at its
    own paths) with what OpenID Connect adds. `id_token_signing_alg_values_supported` is
    ES256 alone, the signing keys' algorithm (Discovery asks for RS256 too: see
    docs/decisions.md)."""
    issuer = settings.issuer
    return metadata_document(settings) | {
        "scopes_supported": sorted([*settings.profile.scopes, openid.OPENID_SCOPE]),
        "userinfo_endpoint": f"{issuer}/userinfo",
        "subject_types_supported": list(openid.SUBJECT_TYPES),
        "id_token_signing_alg_values_supported": [keys.ALGORITHM],
        "claims_supported": openid.claims_supported(settings.profile),
        "prompt_values_supported": list(openid.PROMPT_VALUES),
        "claims_parameter_supported": False,
        "request_parameter_supported": False,
        "request_uri_parameter_supported": False,  # its default is true (Discovery §3)
    }


async def metadata(request: Request, runtime: OAuthRuntime) -> Response:
    return FastJSONResponse(
        metadata_document(runtime.ctx.settings), headers={"Cache-Control": "public, max-age=300"}
    )


async def openid_configuration(request: Request, runtime: OAuthRuntime) -> Response:
    return FastJSONResponse(
        openid_configuration_document(runtime.ctx.settings),
        headers={"Cache-Control": "public, max-age=300"},
    )


async def jwks(request: Request, runtime: OAuthRuntime) -> Response:
    document = await anyio.to_thread.run_sync(_jwks_document, runtime)
    return FastJSONResponse(document, headers={"Cache-Control": "public, max-age=60"})


def _jwks_document(runtime: OAuthRuntime) -> dict[str, Any]:
    with runtime.ctx.session() as db:
        return jwks_document(db)
