"""The FastAPI dependency (`TokenVerifier.dependency`). FastAPI is no dependency of the
kit: this module imports it, and only `TokenVerifier.dependency` and
`install_error_handler` import this module.

    verifier = TokenVerifier("https://auth.example/oauth2", "data-server")
    app = FastAPI()
    install_error_handler(app)      # refusals in the service's error shape

    @app.get("/laps")
    async def laps(token: VerifiedToken = Depends(verifier.dependency("iracing.auth"))): ...

A refusal is an `HTTPException` carrying RFC 6750's status and `WWW-Authenticate`, so
any FastAPI app answers them right; its body is FastAPI's `{"detail": …}` around the
service's error shape unless `install_error_handler(app)` was called, which answers the
shape itself (PRODUCT.md §4).
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse, Response

from pitpass_kit.errors import OAuthError
from pitpass_kit.resource.http import Answer, bearer_token, refusal

if TYPE_CHECKING:
    from pitpass_kit.resource.verifier import TokenVerifier, VerifiedToken


class BearerRefusal(HTTPException):
    """A request the dependency refused: `detail` is the body in the service's error shape."""

    def __init__(self, answer: Answer) -> None:
        super().__init__(answer.status, detail=answer.body, headers=answer.headers)


def bearer_dependency(
    verifier: TokenVerifier,
    required: frozenset[str],
    introspect: bool | None,
    realm: str | None,
) -> Callable[..., Awaitable[VerifiedToken]]:
    async def verified_token(request: Request) -> VerifiedToken:
        try:
            token = bearer_token(request.headers.getlist("authorization"))
            if token is not None:
                return await verifier.verify_async(token, required, introspect=introspect)
            answer = refusal(None, verifier.issuer, realm)
        except OAuthError as error:
            answer = refusal(error, verifier.issuer, realm)
            if answer is None:
                raise
        assert answer is not None
        raise BearerRefusal(answer)

    # FastAPI reads the signature to inject the request; say it with the class itself,
    # since this module's annotations are strings.
    parameter = inspect.Parameter(
        "request", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=Request
    )
    verified_token.__signature__ = inspect.Signature([parameter])  # type: ignore[attr-defined]
    return verified_token


async def _answer(_request: Request, error: Exception) -> Response:
    assert isinstance(error, BearerRefusal)
    return JSONResponse(error.detail, status_code=error.status_code, headers=error.headers)


def install_error_handler(app: FastAPI) -> None:
    """Answer the dependency's refusals with the service's error shape as the body."""
    app.add_exception_handler(BearerRefusal, _answer)
