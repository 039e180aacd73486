"""`BearerMiddleware`: any ASGI app (Starlette, FastAPI, Quart, Django's ASGI…) behind
access-token checks, with no framework needed by the kit.

    app = BearerMiddleware(app, verifier, scopes="iracing.auth", public_paths={"/healthz"})

Each HTTP request must carry a valid access token with the scopes, else it is answered
RFC 6750 §3's 401, 403 or 400 with `WWW-Authenticate` and the service's JSON error shape,
and the app never sees it. A passing request reaches the app with the `VerifiedToken`
in `scope["state"]["token"]` (Starlette: `request.state.token`). A WebSocket handshake
that fails is closed with 1008 (policy violation) before it is accepted: the server
answers it 403, as ASGI has no other way to refuse without an extension.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection, MutableMapping
from typing import Any

from pitpass_kit.errors import OAuthError
from pitpass_kit.resource.http import Answer, bearer_token, refusal
from pitpass_kit.resource.verifier import Scopes, TokenVerifier, VerifiedToken, scope_set

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

STATE_KEY = "token"


class BearerMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        verifier: TokenVerifier,
        *,
        scopes: Scopes = (),
        introspect: bool | None = None,
        realm: str | None = None,
        public_paths: Collection[str] = (),
    ) -> None:
        self.app = app
        self.verifier = verifier
        self.required = scope_set(scopes)
        self.introspect = introspect
        self.realm = realm
        self.public_paths = frozenset(public_paths)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket") or scope["path"] in self.public_paths:
            await self.app(scope, receive, send)
            return
        outcome = await self._verify(scope)
        if isinstance(outcome, Answer):
            await self._refuse(scope, send, outcome)
            return
        scope = dict(scope)  # this request's own copy: the state is per request
        scope["state"] = {**scope.get("state", {}), STATE_KEY: outcome}
        await self.app(scope, receive, send)

    async def _verify(self, scope: Scope) -> VerifiedToken | Answer:
        authorization = [
            value.decode("latin-1")
            for name, value in scope.get("headers", ())
            if name.lower() == b"authorization"
        ]
        try:
            token = bearer_token(authorization)
            if token is not None:
                return await self.verifier.verify_async(
                    token, self.required, introspect=self.introspect
                )
            answer = refusal(None, self.verifier.issuer, self.realm)
        except OAuthError as error:
            answer = refusal(error, self.verifier.issuer, self.realm)
            if answer is None:
                raise  # not the request's fault: a misconfigured verifier
        assert answer is not None
        return answer

    async def _refuse(self, scope: Scope, send: Send, answer: Answer) -> None:
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008})
            return
        content = answer.content()
        headers = [(b"content-type", b"application/json")]
        headers.append((b"content-length", str(len(content)).encode("ascii")))
        for name, value in answer.headers.items():
            headers.append((name.lower().encode("ascii"), value.encode("latin-1")))
        await send({"type": "http.response.start", "status": answer.status, "headers": headers})
        await send({"type": "http.response.body", "body": content})
