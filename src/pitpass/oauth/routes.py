"""The protocol's route table (PRODUCT.md §4), built once per application."""

from __future__ import annotations

from starlette.routing import Route

from pitpass.metrics import TemplatedRoute
from pitpass.oauth import discovery, introspection, member_endpoints, revocation, token_endpoint
from pitpass.oauth.responses import Handler, protocol_endpoint


def protocol_routes(issuer_path: str) -> list[Route]:
    base = issuer_path.rstrip("/")

    def route(path: str, handler: Handler, *methods: str) -> Route:
        # One route per path: ProtocolFastPath finds routes by path alone.
        return TemplatedRoute(path, protocol_endpoint(handler), methods=list(methods))

    return [
        route(f"{base}/token", token_endpoint.token, "POST"),
        route(f"{base}/introspect", introspection.introspect, "POST"),
        route(f"{base}/revoke", revocation.revoke, "POST"),
        route(f"{base}/revoke/current", member_endpoints.revoke_current, "POST"),
        route(f"{base}/revoke/sessions", member_endpoints.revoke_listed_sessions, "POST"),
        route(f"{base}/revoke/client", member_endpoints.revoke_client, "POST"),
        route(f"{base}/iracing/profile", member_endpoints.profile, "GET"),
        route(f"{base}/sessions", member_endpoints.sessions, "GET"),
        route(f"{base}/jwks", discovery.jwks, "GET"),
        # OpenID Connect Core §5.3 (GET and POST) and Discovery §4.
        route(f"{base}/userinfo", member_endpoints.userinfo, "GET", "POST"),
        route(f"{base}/.well-known/openid-configuration", discovery.openid_configuration, "GET"),
        # RFC 8414 §3, and under the issuer path where many clients look.
        route(f"/.well-known/oauth-authorization-server{base}", discovery.metadata, "GET"),
        route(f"{base}/.well-known/oauth-authorization-server", discovery.metadata, "GET"),
    ]
