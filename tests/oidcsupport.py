"""A local OpenID Provider for the tests: it serves its discovery document and JWKS over HTTP
on 127.0.0.1 and signs tokens with keys generated here (RSA for RS256, P-256 for ES256).

`rotate()` replaces every key, as a provider's scheduled rotation does; `fetches` counts JWKS
requests, so the tests see when the archive refetched it.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
import orjson
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

AUDIENCE = "hounsfield"


@dataclass
class SigningKey:
    kid: str
    alg: str
    private: Any

    def jwk(self) -> dict[str, Any]:
        public = self.private.public_key()
        algorithm = RSAAlgorithm if self.alg.startswith(("RS", "PS")) else ECAlgorithm
        data: dict[str, Any] = algorithm.to_jwk(public, as_dict=True)  # type: ignore[attr-defined]
        return {**data, "kid": self.kid, "alg": self.alg, "use": "sig"}


def new_key(kid: str, alg: str) -> SigningKey:
    if alg == "RS256":
        return SigningKey(kid, alg, rsa.generate_private_key(public_exponent=65537, key_size=2048))
    return SigningKey(kid, alg, ec.generate_private_key(ec.SECP256R1()))


@dataclass
class LocalIssuer:
    server: ThreadingHTTPServer
    keys: dict[str, SigningKey] = field(default_factory=dict)
    fetches: int = 0
    generation: int = 0

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}/realms/test"

    def rotate(self) -> None:
        """New RSA and EC keys with new kids; the old ones are no longer published."""
        self.generation += 1
        self.keys = {
            alg: new_key(f"{alg.lower()}-{self.generation}", alg) for alg in ("RS256", "ES256")
        }

    def jwks(self) -> dict[str, Any]:
        return {"keys": [key.jwk() for key in self.keys.values()]}

    def claims(self, **overrides: Any) -> dict[str, Any]:
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": self.url,
            "aud": AUDIENCE,
            "sub": "user-1",
            "iat": now,
            "nbf": now,
            "exp": now + 300,
            "roles": ["viewer"],
            "partitions": ["default"],
        }
        claims.update(overrides)
        return {k: v for k, v in claims.items() if v is not None}

    def token(
        self,
        alg: str = "RS256",
        *,
        key: SigningKey | None = None,
        headers: dict[str, Any] | None = None,
        **claims: Any,
    ) -> str:
        signer = key or self.keys[alg]
        return jwt.encode(
            self.claims(**claims),
            signer.private,
            algorithm=signer.alg,
            headers={"kid": signer.kid, **(headers or {})},
        )

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def start_issuer() -> LocalIssuer:
    holder: list[LocalIssuer] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            issuer = holder[0]
            if self.path == "/realms/test/.well-known/openid-configuration":
                body: dict[str, Any] = {
                    "issuer": issuer.url,
                    "jwks_uri": issuer.url + "/protocol/openid-connect/certs",
                }
            elif self.path == "/realms/test/protocol/openid-connect/certs":
                issuer.fetches += 1
                body = issuer.jwks()
            else:
                self.send_error(404)
                return
            data = orjson.dumps(body)
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    issuer = LocalIssuer(server)
    issuer.rotate()
    holder.append(issuer)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return issuer


def unsigned_token(claims: dict[str, Any]) -> str:
    """A JWS with `alg: none` (RFC 7519 6.1): header and claims, no signature."""
    import base64

    def part(data: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(orjson.dumps(data)).rstrip(b"=").decode()

    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(claims)}."
