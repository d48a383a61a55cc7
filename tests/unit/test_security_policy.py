"""The authorization policy (frontends/http/security.py), roles and partitions
(domain/security.py), and the refusal to listen beyond loopback without authentication."""

from __future__ import annotations

from pathlib import Path

import pytest

from hounsfield.bootstrap import build_http_app, check_exposure, is_loopback, open_archive
from hounsfield.config import ConfigError, Settings, load_settings
from hounsfield.domain.security import (
    ALL_PARTITIONS,
    Permission,
    Principal,
    Role,
    anonymous,
    parse_roles,
    scoped_partitions,
)
from hounsfield.frontends.http.security import Requirement, requirement


def test_every_route_but_health_needs_an_authenticated_principal(tmp_path: Path) -> None:
    archive = open_archive(load_settings(environ={"HOUNSFIELD_DATA_DIR": str(tmp_path)}))
    try:
        routes = build_http_app(archive).router.templates()
    finally:
        archive.close()
    public = sorted(
        template
        for template, methods in routes.items()
        for method in methods
        if requirement(method, template) is None
    )
    assert public == ["/api/health"]
    for template, methods in routes.items():
        for method in methods:
            need = requirement(method, template)
            if template.startswith("/dicom-web/") and method == "GET":
                assert need == Requirement(Permission.READ), template
            if template.startswith("/dicom-web/") and method == "POST":
                assert need == Requirement(Permission.WRITE), template
            if template.startswith("/dicom-web/") and method == "DELETE":
                assert need == Requirement(Permission.DELETE), template
            if template.startswith("/api/audit"):
                assert need == Requirement(Permission.AUDIT), template
            elif template.startswith("/api/") and template not in (
                "/api/health",
                "/api/openapi.json",
            ):
                assert need is not None and need.permission == Permission.ADMIN, template


def test_policy_for_audit_and_unforeseen_routes() -> None:
    assert requirement("GET", "/api/audit") == Requirement(Permission.AUDIT)
    assert requirement("GET", "/api/audit/verify") == Requirement(Permission.AUDIT)
    assert requirement("GET", "/api/forward-rules") == Requirement(Permission.ADMIN, True)
    assert requirement("POST", "/api/forward") == Requirement(Permission.ADMIN)
    # A route nobody classified falls to the strictest rule.
    assert requirement("GET", "/something-new") == Requirement(Permission.ADMIN, True)


def test_roles_grant_permissions() -> None:
    def principal(*roles: Role) -> Principal:
        return Principal("s", frozenset(roles), frozenset({"a"}), "a", "oidc")

    assert principal(Role.VIEWER).permissions == {Permission.READ}
    assert principal(Role.UPLOADER).permissions == {Permission.READ, Permission.WRITE}
    assert principal(Role.AUDITOR).permissions == {Permission.AUDIT}
    assert principal(Role.ADMIN).permissions == set(Permission)
    assert principal(Role.VIEWER, Role.AUDITOR).can(Permission.AUDIT)
    assert principal().permissions == frozenset()
    assert parse_roles(["Viewer", " admin ", "offline_access", ""]) == {Role.VIEWER, Role.ADMIN}


def test_partition_scopes() -> None:
    assert scoped_partitions([], "main") == (frozenset({"main"}), "main")
    assert scoped_partitions(["b", "a"], "main") == (frozenset({"a", "b"}), "b")
    everything, default = scoped_partitions([ALL_PARTITIONS], "main")
    assert default == "main"
    scoped = Principal("s", frozenset({Role.VIEWER}), everything, default, "api-key")
    assert scoped.all_partitions and scoped.may_use("any")
    limited = Principal("s", frozenset({Role.VIEWER}), frozenset({"a"}), "a", "api-key")
    assert limited.may_use("a") and not limited.may_use("b") and not limited.all_partitions
    assert anonymous("main").all_partitions and anonymous("main").can(Permission.DELETE)


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.0.0.2", True),
        ("::1", True),
        ("[::1]", True),
        ("localhost", True),
        ("0.0.0.0", False),
        ("::", False),
        ("10.1.2.3", False),
        ("pacs.example.org", False),
        ("", False),
    ],
)
def test_loopback_hosts(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_exposure_needs_authentication_or_an_explicit_opt_out() -> None:
    def settings(**env: str) -> Settings:
        return load_settings(environ={f"HOUNSFIELD_{k.upper()}": v for k, v in env.items()})

    check_exposure(settings(host="127.0.0.1"))
    with pytest.raises(ConfigError, match="allow_unauthenticated"):
        check_exposure(settings(host="0.0.0.0"))
    check_exposure(settings(host="0.0.0.0", allow_unauthenticated="true"))
    check_exposure(settings(host="0.0.0.0", auth_api_keys="true"))
    check_exposure(
        settings(
            host="0.0.0.0",
            auth_oidc_issuer="https://idp.example/realms/x",
            auth_oidc_audience="hounsfield",
        )
    )


def test_auth_settings_are_validated() -> None:
    with pytest.raises(ConfigError, match="auth_oidc_audience"):
        load_settings(environ={"HOUNSFIELD_AUTH_OIDC_ISSUER": "https://idp.example"})
    with pytest.raises(ConfigError, match="HS256"):
        load_settings(environ={"HOUNSFIELD_AUTH_OIDC_ALGORITHMS": "RS256,HS256"})
    with pytest.raises(ConfigError, match="none"):
        load_settings(environ={"HOUNSFIELD_AUTH_OIDC_ALGORITHMS": "none"})
    with pytest.raises(ConfigError, match="http"):
        load_settings(
            environ={
                "HOUNSFIELD_AUTH_OIDC_ISSUER": "idp.example",
                "HOUNSFIELD_AUTH_OIDC_AUDIENCE": "x",
            }
        )
