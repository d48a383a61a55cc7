"""A server with authentication on (OIDC tokens from a local issuer, and API keys), and
helpers to act as a principal against it. Imported by the authentication test modules."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest

from tests.builders import make_instance, multipart, uid
from tests.conftest import RunningServer, start_server, stop_server
from tests.oidcsupport import AUDIENCE, LocalIssuer, start_issuer


@dataclass
class Secured:
    server: RunningServer
    issuer: LocalIssuer

    def token(self, role: str, partitions: list[str], **claims: object) -> dict[str, str]:
        """Authorization header of a fresh token for one role and its partitions."""
        token = self.issuer.token(
            roles=[role], partitions=partitions, sub=f"{role}-{'-'.join(partitions)}", **claims
        )
        return {"authorization": f"Bearer {token}"}

    @property
    def root(self) -> dict[str, str]:
        """An administrator of every partition."""
        return self.token("admin", ["*"])

    def store(
        self, headers: dict[str, str], partition: str | None = None, **attributes: object
    ) -> tuple[httpx.Response, dict[str, str]]:
        """STOW one new instance; returns the response and its UIDs."""
        uids = {"study": uid(), "series": uid(), "sop": uid()}
        body, content_type = multipart(
            [
                make_instance(
                    study_uid=uids["study"],
                    series_uid=uids["series"],
                    sop_uid=uids["sop"],
                    **attributes,
                )
            ]
        )
        base = self.server.dicomweb + (f"/partitions/{partition}" if partition else "")
        response = httpx.post(
            base + "/studies", content=body, headers={**headers, "content-type": content_type}
        )
        return response, uids


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Secured]:
    issuer = start_issuer()
    data_dir = tmp_path_factory.mktemp("secured") / "data"
    env = {
        "HOUNSFIELD_AUTH_OIDC_ISSUER": issuer.url,
        "HOUNSFIELD_AUTH_OIDC_AUDIENCE": AUDIENCE,
        "HOUNSFIELD_AUTH_API_KEYS": "true",
        # Rotation is tested through the server: refetch on every unknown kid.
        "HOUNSFIELD_AUTH_JWKS_MIN_REFRESH_SECONDS": "0",
        "HOUNSFIELD_DIMSE_ENABLED": "false",
    }
    server = start_server(data_dir, env)
    try:
        yield Secured(server, issuer)
    finally:
        stop_server(server)
        issuer.close()
