"""The OIDC bearer token authenticator (adapters/auth/jwt.py) against a local issuer that
serves its discovery document and JWKS over HTTP and signs with keys made here."""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator

import jwt
import orjson
import pytest

from hounsfield.adapters.auth.jwt import JwksCache, JwtAuthenticator, claim, http_get
from hounsfield.domain.security import AuthenticationError, Permission, Role
from tests.oidcsupport import AUDIENCE, LocalIssuer, new_key, start_issuer, unsigned_token


@pytest.fixture
def issuer() -> Iterator[LocalIssuer]:
    running = start_issuer()
    try:
        yield running
    finally:
        running.close()


def authenticator(issuer: LocalIssuer, **options: object) -> JwtAuthenticator:
    settings: dict[str, object] = {
        "issuer": issuer.url,
        "audience": AUDIENCE,
        "leeway_seconds": 30.0,
        "min_refresh_seconds": 0.0,
        **options,
    }
    return JwtAuthenticator(**settings)  # type: ignore[arg-type]


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


@pytest.mark.parametrize("alg", ["RS256", "ES256"])
def test_valid_tokens_give_roles_and_partitions(issuer: LocalIssuer, alg: str) -> None:
    auth = authenticator(issuer)
    token = issuer.token(alg, roles=["uploader", "Unrelated-Group"], partitions=["b", "c"])
    principal = auth.authenticate(bearer(token))
    assert principal is not None
    assert principal.subject == "user-1" and principal.method == "oidc"
    assert principal.roles == frozenset({Role.UPLOADER})
    assert principal.can(Permission.WRITE) and not principal.can(Permission.DELETE)
    assert principal.partitions == frozenset({"b", "c"}) and principal.default_partition == "b"
    assert issuer.fetches == 1  # discovered, fetched once, cached
    auth.authenticate(bearer(issuer.token(alg)))
    assert issuer.fetches == 1


def test_no_bearer_token_is_not_an_error(issuer: LocalIssuer) -> None:
    auth = authenticator(issuer)
    assert auth.authenticate({}) is None
    assert auth.authenticate({"authorization": "Basic dXNlcjpwdw=="}) is None
    assert auth.authenticate(bearer("hfk_0123456789ab_secret")) is None  # an API key


def _tamper(token: str) -> str:
    header, payload, signature = token.split(".")
    claims = orjson.loads(base64.urlsafe_b64decode(payload + "=="))
    claims["roles"] = ["admin"]
    forged = base64.urlsafe_b64encode(orjson.dumps(claims)).rstrip(b"=").decode()
    return f"{header}.{forged}.{signature}"


def test_rejected_tokens(issuer: LocalIssuer) -> None:
    auth = authenticator(issuer)
    now = int(time.time())
    stranger = new_key(issuer.keys["RS256"].kid, "RS256")  # same kid, another key
    cases = {
        "bad signature": issuer.token(key=stranger),
        "tampered claims": _tamper(issuer.token()),
        "expired": issuer.token(exp=now - 120, iat=now - 600, nbf=now - 600),
        "not yet valid": issuer.token(nbf=now + 600),
        "wrong audience": issuer.token(aud="another-app"),
        "wrong issuer": issuer.token(iss="http://127.0.0.1:1/realms/evil"),
        "no exp": issuer.token(exp=None),
        "no sub": issuer.token(sub=None),
        "alg none": unsigned_token(issuer.claims(roles=["admin"])),
        "HS256 with public key material as the secret": jwt.encode(
            issuer.claims(),
            issuer.keys["RS256"].jwk()["n"],
            algorithm="HS256",
            headers={"kid": issuer.keys["RS256"].kid},
        ),
        "malformed": "not.a.jwt",
    }
    accepted = []
    for label, token in cases.items():
        try:
            auth.authenticate(bearer(token))
        except AuthenticationError:
            continue
        accepted.append(label)
    assert accepted == []


def test_algorithm_allow_list(issuer: LocalIssuer) -> None:
    only_rsa = authenticator(issuer, algorithms=("RS256",))
    assert only_rsa.authenticate(bearer(issuer.token("RS256"))) is not None
    with pytest.raises(AuthenticationError, match="ES256"):
        only_rsa.authenticate(bearer(issuer.token("ES256")))
    with pytest.raises(ValueError, match="HS256"):
        authenticator(issuer, algorithms=("RS256", "HS256"))
    with pytest.raises(ValueError, match="none"):
        authenticator(issuer, algorithms=("none",))


def test_clock_skew_is_tolerated_within_leeway(issuer: LocalIssuer) -> None:
    auth = authenticator(issuer, leeway_seconds=60.0)
    now = int(time.time())
    assert auth.authenticate(bearer(issuer.token(exp=now - 20, iat=now - 300))) is not None
    assert auth.authenticate(bearer(issuer.token(nbf=now + 20))) is not None
    with pytest.raises(AuthenticationError, match="expired"):
        auth.authenticate(bearer(issuer.token(exp=now - 90, iat=now - 300)))


def test_unknown_kid_refetches_and_rotated_keys_are_used(issuer: LocalIssuer) -> None:
    auth = authenticator(issuer)
    old = issuer.token("ES256")
    assert auth.authenticate(bearer(old)) is not None
    assert issuer.fetches == 1
    issuer.rotate()
    fresh = issuer.token("ES256")
    assert auth.authenticate(bearer(fresh)) is not None  # unknown kid: refetched
    assert issuer.fetches == 2
    with pytest.raises(AuthenticationError, match="no key"):
        auth.authenticate(bearer(old))  # its key is no longer published


def test_refetch_on_unknown_kid_is_rate_limited(issuer: LocalIssuer) -> None:
    now = [1000.0]
    jwks_url = issuer.url + "/protocol/openid-connect/certs"
    cache = JwksCache(jwks_url, min_refresh_seconds=30.0, clock=lambda: now[0])
    auth = authenticator(issuer, jwks=cache)
    assert auth.authenticate(bearer(issuer.token())) is not None
    assert issuer.fetches == 1
    forged = issuer.token(headers={"kid": "made-up"})
    for _ in range(5):
        with pytest.raises(AuthenticationError, match="no key"):
            auth.authenticate(bearer(forged))
    assert issuer.fetches == 1  # made-up kids within the interval fetch nothing
    issuer.rotate()
    rotated = issuer.token()
    with pytest.raises(AuthenticationError):
        auth.authenticate(bearer(rotated))  # still within the interval
    now[0] += 31
    assert auth.authenticate(bearer(rotated)) is not None
    assert issuer.fetches == 2


def test_unreachable_issuer_is_a_rejection_not_a_crash() -> None:
    asked: list[str] = []

    def fetch(url: str) -> bytes:
        asked.append(url)
        return http_get(url)

    auth = JwtAuthenticator(issuer="http://127.0.0.1:9/realms/x", audience=AUDIENCE, fetch=fetch)
    issuer = start_issuer()
    try:
        token = issuer.token()
    finally:
        issuer.close()
    for _ in range(3):
        with pytest.raises(AuthenticationError, match="metadata"):
            auth.authenticate(bearer(token))
    assert len(asked) == 1  # a provider that is down is not asked on every request


def test_claims_by_dotted_path_and_scope_strings() -> None:
    claims = {
        "realm_access": {"roles": ["admin", "offline_access"]},
        "scope": "openid viewer",
        "groups": "a, b",
        "n": 3,
    }
    assert claim(claims, "realm_access.roles") == ["admin", "offline_access"]
    assert claim(claims, "scope") == ["openid", "viewer"]
    assert claim(claims, "groups") == ["a", "b"]
    assert claim(claims, "n") == [] and claim(claims, "missing.path") == []


def test_nested_role_claim_and_absent_partitions(issuer: LocalIssuer) -> None:
    auth = authenticator(issuer, roles_claim="realm_access.roles", default_partition="main")
    token = issuer.token(roles=None, partitions=None, realm_access={"roles": ["admin"]})
    principal = auth.authenticate(bearer(token))
    assert principal is not None
    assert principal.roles == frozenset({Role.ADMIN})
    assert principal.partitions == frozenset({"main"})  # no claim: the default partition only
