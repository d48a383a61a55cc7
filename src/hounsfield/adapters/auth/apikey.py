"""API keys presented as `Authorization: Bearer hfk_...` or `X-API-Key: hfk_...`."""

from __future__ import annotations

from collections.abc import Mapping

from hounsfield.domain.security import Principal
from hounsfield.ports.auth import Authenticator
from hounsfield.services.apikeys import PREFIX, ApiKeyService


def bearer_token(headers: Mapping[str, str]) -> str | None:
    """The credentials of `Authorization: Bearer <token>` (RFC 6750 2.1), else None."""
    value = headers.get("authorization", "")
    scheme, _, token = value.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


class ApiKeyAuthenticator:
    def __init__(self, keys: ApiKeyService) -> None:
        self.keys = keys

    def authenticate(self, headers: Mapping[str, str]) -> Principal | None:
        presented = headers.get("x-api-key", "").strip()
        if not presented:
            token = bearer_token(headers)
            if token is None or not token.startswith(PREFIX):
                return None
            presented = token
        return self.keys.verify(presented)


class ChainAuthenticator:
    """Tries each authenticator in turn; the first that recognises the credentials decides."""

    def __init__(self, *authenticators: Authenticator) -> None:
        self._chain = authenticators

    def authenticate(self, headers: Mapping[str, str]) -> Principal | None:
        for authenticator in self._chain:
            principal = authenticator.authenticate(headers)
            if principal is not None:
                return principal
        return None
