"""What the protocol endpoints share; built once per process in create_app."""

from __future__ import annotations

from dataclasses import dataclass

from starlette.requests import Request

from pitpass.oauth.access_tokens import TokenSigner
from pitpass.services.context import AppContext
from pitpass.storage import TokenStore


@dataclass
class OAuthRuntime:
    ctx: AppContext
    store: TokenStore
    signer: TokenSigner

    @property
    def issuer(self) -> str:
        return self.ctx.settings.issuer

    def code_hash(self, code: str) -> str:
        return self.ctx.keyring.token_hash(f"code:{code}")

    def refresh_hash(self, token: str) -> str:
        return self.ctx.keyring.token_hash(f"refresh:{token}")


def runtime_of(request: Request) -> OAuthRuntime:
    runtime: OAuthRuntime = request.app.state.oauth
    return runtime
