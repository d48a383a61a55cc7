"""OIDC / OAuth 2.0 bearer tokens (RFC 6750): JWTs (RFC 7519) signed by a configured issuer.

A token is accepted only when all of these hold:
- its `alg` header is in the allow-list, which holds asymmetric algorithms only (RS*, PS*,
  ES*, EdDSA): `none` and HMAC are refused before anything else, so neither an unsigned token
  nor one "signed" with the issuer's public key as an HMAC secret can pass (RFC 8725 2.1, 3.1);
- its `kid` names a key of the issuer's JWKS (RFC 7517), fetched from `jwks_uri` (discovered
  from `{issuer}/.well-known/openid-configuration`, OpenID Connect Discovery 1.0 section 4,
  unless configured) and cached; an unknown `kid` refetches the JWKS, at most once per
  `min_refresh_seconds`, so rotated keys are picked up at once and a flood of tokens with
  made-up kids cannot turn the server into a JWKS fetcher;
- the signature verifies, `exp` is in the future and `nbf`/`iat` not in the future (with
  `leeway` seconds of clock skew), `iss` is the issuer and `aud` contains the audience
  (RFC 7519 4.1); `exp`, `iss`, `aud` and `sub` are required.

Roles and partitions come from configurable claims; a dotted name reaches into nested
objects (Keycloak puts realm roles in `realm_access.roles`).
"""

from __future__ import annotations

import logging
import threading
import time
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import jwt
import orjson

from hounsfield.adapters.auth.apikey import bearer_token
from hounsfield.domain.security import (
    AuthenticationError,
    Principal,
    parse_roles,
    scoped_partitions,
)
from hounsfield.services.apikeys import PREFIX

log = logging.getLogger(__name__)

#: Signature algorithms a deployment may allow: public-key ones only.
ASYMMETRIC_ALGORITHMS = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
)
_FETCH_TIMEOUT = 5.0
_MAX_DOCUMENT = 1 << 20

Fetch = Callable[[str], bytes]


def http_get(url: str) -> bytes:
    """GET a small JSON document (discovery, JWKS) over http(s) with a timeout."""
    if not url.startswith(("https://", "http://")):
        raise AuthenticationError(f"refusing to fetch {url!r}: not an http(s) URL")
    request = urllib.request.Request(url, headers={"accept": "application/json"})  # noqa: S310
    with urllib.request.urlopen(request, timeout=_FETCH_TIMEOUT) as response:  # noqa: S310
        body: bytes = response.read(_MAX_DOCUMENT + 1)
    if len(body) > _MAX_DOCUMENT:
        raise AuthenticationError(f"{url} answered more than {_MAX_DOCUMENT} bytes")
    return body


def claim(claims: Mapping[str, Any], path: str) -> list[str]:
    """The strings of a claim, by dotted path: a list of strings, or one string of names
    separated by spaces or commas (OAuth 2.0 `scope` style). Missing: an empty list."""
    value: Any = claims
    for part in path.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return []
        value = value[part]
    if isinstance(value, str):
        return [v for v in value.replace(",", " ").split() if v]
    if isinstance(value, list):
        return [v for v in value if isinstance(v, str)]
    return []


class JwksCache:
    """The issuer's signing keys by `kid`, refetched when older than `max_age_seconds` or
    when a token names an unknown kid (at most once per `min_refresh_seconds`)."""

    def __init__(
        self,
        jwks_url: str,
        fetch: Fetch = http_get,
        *,
        min_refresh_seconds: float = 30.0,
        max_age_seconds: float = 3600.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.jwks_url = jwks_url
        self._fetch = fetch
        self._min_refresh = min_refresh_seconds
        self._max_age = max_age_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._keys: dict[str, jwt.PyJWK] = {}
        self._fetched_at: float | None = None
        self._attempted_at: float | None = None
        #: How many times the JWKS was fetched (for operators and tests).
        self.fetches = 0

    def _refresh(self) -> None:
        self._attempted_at = self._clock()
        self.fetches += 1
        try:
            document = orjson.loads(self._fetch(self.jwks_url))
        except Exception as exc:
            log.warning("could not fetch the JWKS at %s: %s", self.jwks_url, exc)
            return
        keys: dict[str, jwt.PyJWK] = {}
        for entry in document.get("keys", []) if isinstance(document, dict) else []:
            if not isinstance(entry, dict) or entry.get("use", "sig") != "sig":
                continue
            try:
                key = jwt.PyJWK(entry)
            except jwt.PyJWKError as exc:  # a key type or curve this server cannot use
                log.info("ignoring JWKS key %s: %s", entry.get("kid"), exc)
                continue
            keys[str(entry.get("kid", ""))] = key
        self._keys = keys
        self._fetched_at = self._attempted_at

    def key(self, kid: str | None) -> jwt.PyJWK:
        with self._lock:
            now = self._clock()
            may_fetch = self._attempted_at is None or now - self._attempted_at >= self._min_refresh
            stale = self._fetched_at is None or now - self._fetched_at > self._max_age
            if stale and may_fetch:
                self._refresh()
                may_fetch = False
            found = self._lookup(kid)
            if found is None and may_fetch:
                self._refresh()
                found = self._lookup(kid)
        if found is None:
            raise AuthenticationError(f"no key {kid!r} in the issuer's JWKS")
        return found

    def _lookup(self, kid: str | None) -> jwt.PyJWK | None:
        if kid is None:  # no kid: acceptable only when the issuer has one key (RFC 7515 4.1.4)
            return next(iter(self._keys.values())) if len(self._keys) == 1 else None
        return self._keys.get(kid)


def discover_jwks_url(issuer: str, fetch: Fetch = http_get) -> str:
    """`jwks_uri` of the issuer's OpenID Provider metadata (OIDC Discovery 1.0, 4)."""
    url = issuer.rstrip("/") + "/.well-known/openid-configuration"
    try:
        metadata = orjson.loads(fetch(url))
    except Exception as exc:
        raise AuthenticationError(f"cannot read the issuer's metadata at {url}: {exc}") from exc
    jwks_uri = metadata.get("jwks_uri") if isinstance(metadata, dict) else None
    if not isinstance(jwks_uri, str) or not jwks_uri:
        raise AuthenticationError(f"the issuer's metadata at {url} has no jwks_uri")
    return jwks_uri


class JwtAuthenticator:
    def __init__(
        self,
        *,
        issuer: str,
        audience: str,
        jwks: JwksCache | None = None,
        jwks_url: str = "",
        algorithms: Sequence[str] = ("RS256", "ES256"),
        leeway_seconds: float = 60.0,
        roles_claim: str = "roles",
        partitions_claim: str = "partitions",
        default_partition: str = "default",
        fetch: Fetch = http_get,
        min_refresh_seconds: float = 30.0,
    ) -> None:
        refused = sorted(set(algorithms) - ASYMMETRIC_ALGORITHMS)
        if refused:
            raise ValueError(
                f"algorithm(s) {', '.join(refused)} not allowed: only "
                f"{', '.join(sorted(ASYMMETRIC_ALGORITHMS))}"
            )
        self.issuer = issuer
        self.audience = audience
        self.algorithms = tuple(algorithms)
        self.leeway = leeway_seconds
        self.roles_claim = roles_claim
        self.partitions_claim = partitions_claim
        self.default_partition = default_partition
        self._fetch = fetch
        self._jwks = jwks
        self._jwks_url = jwks_url
        self._min_refresh = min_refresh_seconds
        self._init_lock = threading.Lock()
        self._discovery_failed: tuple[float, AuthenticationError] | None = None

    @property
    def jwks(self) -> JwksCache:
        """The key cache; the JWKS URL is discovered on first use, so the server starts even
        while the identity provider is down."""
        with self._init_lock:
            if self._jwks is None:
                now = time.monotonic()
                if self._discovery_failed is not None and (
                    now - self._discovery_failed[0] < self._min_refresh
                ):
                    raise self._discovery_failed[1]  # the provider is not asked again yet
                try:
                    url = self._jwks_url or discover_jwks_url(self.issuer, self._fetch)
                except AuthenticationError as exc:
                    self._discovery_failed = (now, exc)
                    raise
                self._jwks = JwksCache(url, self._fetch, min_refresh_seconds=self._min_refresh)
            return self._jwks

    def authenticate(self, headers: Mapping[str, str]) -> Principal | None:
        token = bearer_token(headers)
        if token is None or token.startswith(PREFIX):
            return None
        claims = self.verify(token)
        partitions, default = scoped_partitions(
            claim(claims, self.partitions_claim), self.default_partition
        )
        return Principal(
            subject=str(claims["sub"]),
            roles=parse_roles(claim(claims, self.roles_claim)),
            partitions=partitions,
            default_partition=default,
            method="oidc",
        )

    def verify(self, token: str) -> dict[str, Any]:
        """The claims of a valid token; AuthenticationError naming the failed check."""
        try:
            header = jwt.get_unverified_header(token)
        except jwt.InvalidTokenError as exc:
            raise AuthenticationError(f"malformed token: {exc}") from exc
        alg = header.get("alg")
        if alg not in self.algorithms:
            raise AuthenticationError(f"token algorithm {alg!r} is not allowed")
        kid = header.get("kid")
        key = self.jwks.key(kid if isinstance(kid, str) else None)
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key.key,
                algorithms=[alg],
                audience=self.audience,
                issuer=self.issuer,
                leeway=self.leeway,
                options={"require": ["exp", "iss", "aud", "sub"]},
            )
        except jwt.PyJWTError as exc:  # also a key of another type than `alg` needs
            raise AuthenticationError(f"token rejected: {exc}") from exc
        return claims
