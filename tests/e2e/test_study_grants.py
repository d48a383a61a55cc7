"""Study-level grants through the real server with authentication on (issue 6): an admin
shares one study with one principal of another partition, who can then read that study (and
nothing else of the partition) until the grant is revoked or expires."""

from __future__ import annotations

import time

import httpx
import pytest

from tests.e2e.authsupport import Secured, secured  # noqa: F401 - the module fixture

pytestmark = pytest.mark.services


def test_a_shared_study_is_readable_by_its_grantee_only(secured: Secured) -> None:  # noqa: F811
    admin = secured.token("admin", ["default"])
    _, shared = secured.store(admin, partition="default")
    _, private = secured.store(admin, partition="default")
    guest = secured.token("viewer", ["clinic-b"])  # subject "viewer-clinic-b"
    base = f"{secured.server.dicomweb}/partitions/default"
    study_url = f"{base}/studies/{shared['study']}"

    assert httpx.get(f"{study_url}/metadata", headers=guest).status_code == 404  # no grant yet

    made = httpx.post(
        f"{secured.server.url}/api/grants",
        json={"study": shared["study"], "subject": "viewer-clinic-b", "expiresInSeconds": 3600},
        headers=admin,
    )
    assert made.status_code == 201, made.text
    grant = made.json()
    assert grant["partition"] == "default" and grant["createdBy"] == "admin-default"

    metadata = httpx.get(f"{study_url}/metadata", headers=guest)
    assert metadata.status_code == 200, metadata.text
    assert shared["sop"] in metadata.text
    series = httpx.get(f"{study_url}/series", headers=guest)
    assert series.status_code == 200 and shared["series"] in series.text
    frame_url = f"{study_url}/series/{shared['series']}/instances/{shared['sop']}/rendered"
    assert httpx.get(frame_url, headers={**guest, "accept": "image/png"}).status_code == 200
    # Nothing else of the partition: another study, the study list, writes.
    unshared = httpx.get(f"{base}/studies/{private['study']}/metadata", headers=guest)
    assert unshared.status_code == 404
    assert httpx.get(f"{base}/studies", headers=guest).status_code == 404
    assert httpx.delete(study_url, headers=guest).status_code == 403  # a grant is read-only
    # Another principal of clinic-b has no grant.
    token = secured.issuer.token(roles=["viewer"], partitions=["clinic-b"], sub="someone-else")
    other = {"authorization": f"Bearer {token}"}
    assert httpx.get(f"{study_url}/metadata", headers=other).status_code == 404

    listed = httpx.get(f"{secured.server.url}/api/grants", headers=admin).json()
    assert [g["id"] for g in listed] == [grant["id"]]
    revoked = httpx.delete(f"{secured.server.url}/api/grants/{grant['id']}", headers=admin)
    assert revoked.status_code == 204
    assert httpx.get(f"{study_url}/metadata", headers=guest).status_code == 404

    short = httpx.post(
        f"{secured.server.url}/api/grants",
        json={"study": shared["study"], "subject": "viewer-clinic-b", "expiresInSeconds": 3},
        headers=admin,
    )
    assert short.status_code == 201
    assert httpx.get(f"{study_url}/metadata", headers=guest).status_code == 200
    time.sleep(3.2)
    assert httpx.get(f"{study_url}/metadata", headers=guest).status_code == 404  # expired


def test_grants_are_admin_actions_of_their_partition(secured: Secured) -> None:  # noqa: F811
    viewer = secured.token("viewer", ["default"])
    refused = httpx.post(
        f"{secured.server.url}/api/grants", json={"study": "1.2.3", "subject": "x"}, headers=viewer
    )
    assert refused.status_code == 403
    admin_b = secured.token("admin", ["clinic-b"])
    elsewhere = httpx.post(
        f"{secured.server.url}/api/grants",
        json={"study": "1.2.3", "subject": "x", "partition": "default"},
        headers=admin_b,
    )
    assert elsewhere.status_code == 404  # another tenant's partition does not exist for them
    bad = httpx.post(
        f"{secured.server.url}/api/grants",
        json={"study": "not a uid", "subject": "x"},
        headers=admin_b,
    )
    assert bad.status_code == 400
