"""Authorization and tenant isolation through the real server.

A matrix of principal (viewer, uploader, admin, auditor; by OIDC token and by API key) ×
route (QIDO, WADO, rendered, change feed, WADO-URI, STOW, DELETE, admin API) says who may do
what; then tenant A tries to reach tenant B's data, knowing B's UIDs, through every DICOMweb
route and the partition-scoped admin routes, and must find nothing.
"""

from __future__ import annotations

from collections.abc import Callable

import httpx
import orjson
import pytest

from tests.builders import make_instance, multipart, uid
from tests.conftest import hounsfield_cli
from tests.e2e.authsupport import Secured

Headers = dict[str, str]
Attempt = Callable[[Secured, Headers], httpx.Response]


@pytest.fixture(scope="module")
def sample(secured: Secured) -> dict[str, str]:
    """One instance in the default partition, stored by an administrator."""
    response, uids = secured.store(secured.root)
    assert response.status_code == 200, response.text
    return uids


def _get(path: str, **params: str) -> Callable[[dict[str, str]], Attempt]:
    def bind(uids: dict[str, str]) -> Attempt:
        def attempt(secured: Secured, headers: Headers) -> httpx.Response:
            url = secured.server.url + path.format(**uids)
            query = {k: v.format(**uids) for k, v in params.items()}
            return httpx.get(url, params=query, headers=headers)

        return attempt

    return bind


INSTANCE = "/dicom-web/studies/{study}/series/{series}/instances/{sop}"
READS = {
    "QIDO studies": _get("/dicom-web/studies", StudyInstanceUID="{study}"),
    "QIDO instances": _get("/dicom-web/studies/{study}/instances"),
    "WADO metadata": _get("/dicom-web/studies/{study}/metadata"),
    "WADO instance": _get(INSTANCE),
    "WADO frames": _get(INSTANCE + "/frames/1"),
    "rendered": _get(INSTANCE + "/rendered"),
    "change feed": _get("/dicom-web/changefeed"),
    "WADO-URI": _get(
        "/wado", requestType="WADO", studyUID="{study}", seriesUID="{series}", objectUID="{sop}"
    ),
}
ADMIN_READS = {
    "admin stats": _get("/api/stats"),
    "admin jobs": _get("/api/jobs"),
    "admin remote AEs": _get("/api/remote-aes"),
}


def _stow(secured: Secured, headers: Headers) -> httpx.Response:
    return secured.store(headers)[0]


def _put_ae(secured: Secured, headers: Headers) -> httpx.Response:
    body = orjson.dumps({"host": "127.0.0.1", "port": 11113})
    return httpx.put(
        secured.server.url + f"/api/remote-aes/M{uid()[-8:]}", content=body, headers=headers
    )


def _delete(secured: Secured, headers: Headers) -> httpx.Response:
    response, uids = secured.store(secured.root)  # a study of its own to delete
    assert response.status_code == 200
    return httpx.delete(secured.server.dicomweb + f"/studies/{uids['study']}", headers=headers)


#: Which kinds of route each role may use.
ALLOWED = {
    "viewer": {"read"},
    "uploader": {"read", "write"},
    "admin": {"read", "write", "delete", "admin", "audit"},
    "auditor": {"audit"},  # the audit trail only: no images, no administration
}


def _principals(secured: Secured) -> dict[str, Headers]:
    found = {f"{role} (token)": secured.token(role, ["default"]) for role in ALLOWED}
    found["admin (token)"] = secured.root  # administration spans every partition
    for role in ALLOWED:
        made = hounsfield_cli(
            secured.server.data_dir, "keys", "create", "--name", f"matrix {role}",
            "--role", role, "--partition", "*" if role == "admin" else "default", "--json",
        )  # fmt: skip
        assert made.returncode == 0, made.stderr
        found[f"{role} (API key)"] = {"x-api-key": orjson.loads(made.stdout)["key"]}
    return found


def test_principal_by_route_matrix(secured: Secured, sample: dict[str, str]) -> None:
    attempts: dict[str, tuple[str, Attempt]] = {
        **{name: ("read", bind(sample)) for name, bind in READS.items()},
        **{name: ("admin", bind(sample)) for name, bind in ADMIN_READS.items()},
        "STOW": ("write", _stow),
        "DELETE": ("delete", _delete),
        "admin PUT remote AE": ("admin", _put_ae),
        "audit trail": ("audit", _get("/api/audit")(sample)),
    }
    wrong: list[str] = []
    for principal, headers in _principals(secured).items():
        role = principal.split()[0]
        for route, (kind, attempt) in attempts.items():
            status = attempt(secured, headers).status_code
            allowed = kind in ALLOWED[role]
            if (allowed and not 200 <= status < 300) or (not allowed and status != 403):
                wrong.append(f"{principal} {route}: {status} (allowed: {allowed})")
    assert wrong == []


def test_a_token_without_known_roles_may_do_nothing(
    secured: Secured, sample: dict[str, str]
) -> None:
    headers = secured.token("physician", ["default"])
    for bind in READS.values():
        response = bind(sample)(secured, headers)
        assert response.status_code == 403
        assert 'error="insufficient_scope"' in response.headers["www-authenticate"]


# --- tenant isolation ----------------------------------------------------------------------


def _tenant_b(secured: Secured) -> dict[str, str]:
    response, uids = secured.store(secured.root, partition="tenant-b", patient_id="B-SECRET")
    assert response.status_code == 200, response.text
    return uids


def _every_dicomweb_request(base: str, b: dict[str, str]) -> list[tuple[str, str, str]]:
    """(method, URL, query) for every DICOMweb route, aimed at B's UIDs."""
    study = f"{base}/studies/{b['study']}"
    series = f"{study}/series/{b['series']}"
    instance = f"{series}/instances/{b['sop']}"
    wado = f"requestType=WADO&studyUID={b['study']}&seriesUID={b['series']}&objectUID={b['sop']}"
    gets = [
        (f"{base}/studies", f"StudyInstanceUID={b['study']}"),
        (f"{base}/studies", "PatientID=B-SECRET"),
        (f"{base}/series", f"SeriesInstanceUID={b['series']}"),
        (f"{base}/instances", f"SOPInstanceUID={b['sop']}"),
        (f"{study}/series", ""),
        (f"{study}/instances", ""),
        (f"{series}/instances", ""),
        (study, ""),
        (series, ""),
        (instance, ""),
        (f"{study}/metadata", ""),
        (f"{series}/metadata", ""),
        (f"{instance}/metadata", ""),
        (f"{instance}/frames/1", ""),
        (f"{instance}/bulkdata/7FE00010", ""),
        (f"{study}/rendered", ""),
        (f"{series}/rendered", ""),
        (f"{instance}/rendered", ""),
        (f"{instance}/frames/1/rendered", ""),
        (f"{study}/thumbnail", ""),
        (f"{series}/thumbnail", ""),
        (f"{instance}/thumbnail", ""),
        (f"{instance}/frames/1/thumbnail", ""),
        (f"{base}/changefeed", "limit=100"),
        (f"{base}/changefeed/latest", ""),
        (f"{base}/wado", wado),
    ]
    deletes = [instance, series, study]
    return [("GET", url, query) for url, query in gets] + [("DELETE", url, "") for url in deletes]


def test_tenant_a_finds_nothing_of_tenant_b(secured: Secured) -> None:
    b = _tenant_b(secured)
    server = secured.server
    tenant_a = secured.token("admin", ["tenant-a"])  # everything, but in its own partition
    leaks: list[str] = []
    bases = {
        "default route (tenant A's partition)": server.dicomweb,
        "B's partition named": server.dicomweb + "/partitions/tenant-b",
        "an unknown partition": server.dicomweb + "/partitions/tenant-zzz",
    }
    answers: dict[str, list[str]] = {}
    for label, base in bases.items():
        for method, url, query in _every_dicomweb_request(base, b):
            response = httpx.request(method, url, params=query or None, headers=tenant_a)
            text = response.text
            found = any(v in text for v in (b["study"], b["series"], b["sop"], "B-SECRET"))
            # A 404 may echo the UIDs of the request; any other answer must not hold them.
            if response.status_code not in (200, 204, 404) or (
                found and response.status_code != 404
            ):
                leaks.append(f"{label}: {method} {url}?{query} -> {response.status_code}")
            if base != server.dicomweb:
                if response.status_code != 404:
                    leaks.append(f"{label}: {method} {url} answered {response.status_code}")
                # B's partition and a partition that does not exist get the same answer.
                generic = text.replace("tenant-b", "P").replace("tenant-zzz", "P")
                answers.setdefault(f"{method} {url.replace(base, '')}", []).append(generic)
    for request, bodies in answers.items():
        if len(set(bodies)) != 1:
            leaks.append(f"{request}: B's partition and an unknown one answer differently")
    root_wado = (
        f"requestType=WADO&studyUID={b['study']}&seriesUID={b['series']}&objectUID={b['sop']}"
    )
    if httpx.get(server.url + "/wado", params=root_wado, headers=tenant_a).status_code != 404:
        leaks.append("root WADO-URI answered")
    assert leaks == []

    # B's data is intact: tenant A's deletes found nothing to delete.
    check = httpx.get(
        server.dicomweb + f"/partitions/tenant-b/studies/{b['study']}/metadata",
        headers=secured.root,
    )
    assert check.status_code == 200 and b["sop"] in check.text


def test_tenant_a_cannot_write_or_administer_tenant_b(secured: Secured) -> None:
    b = _tenant_b(secured)
    server = secured.server
    tenant_a = secured.token("admin", ["tenant-a"])
    stored, _ = secured.store(tenant_a, partition="tenant-b")
    assert stored.status_code == 404
    # STOW into B's study through A's default route lands in A's partition, not in B's.
    body, content_type = multipart([make_instance(study_uid=b["study"])])
    into_a = httpx.post(
        server.dicomweb + f"/studies/{b['study']}",
        content=body,
        headers={**tenant_a, "content-type": content_type},
    )
    assert into_a.status_code == 200
    in_b = httpx.get(
        server.dicomweb + f"/partitions/tenant-b/studies/{b['study']}/instances",
        headers=secured.root,
    )
    assert [i["00080018"]["Value"][0] for i in in_b.json()] == [b["sop"]]

    scoped = [
        ("GET", "/api/worklist?partition=tenant-b", None),
        ("GET", "/api/mpps?partition=tenant-b", None),
        (
            "POST",
            "/api/forward",
            {"destination": "PEER", "study": b["study"], "partition": "tenant-b"},
        ),
        ("POST", "/api/fetch", {"source": "PEER", "study": b["study"], "partition": "tenant-b"}),
    ]
    for method, path, body_json in scoped:
        content = orjson.dumps(body_json) if body_json is not None else None
        response = httpx.request(method, server.url + path, content=content, headers=tenant_a)
        assert response.status_code == 404, (path, response.status_code)
    # Administration that spans partitions needs a principal of every partition.
    for path in ("/api/stats", "/api/jobs", "/api/remote-aes", "/api/forward-rules"):
        assert httpx.get(server.url + path, headers=tenant_a).status_code == 403, path
    own = httpx.get(server.url + "/api/worklist", headers=tenant_a)
    assert own.status_code == 200


def test_an_auditor_of_one_tenant_reads_only_its_records(secured: Secured) -> None:
    b = _tenant_b(secured)
    httpx.get(
        secured.server.dicomweb + f"/partitions/tenant-b/studies/{b['study']}/metadata",
        headers=secured.root,
    )
    url = secured.server.url + "/api/audit"
    everything = httpx.get(url, params={"limit": "1000"}, headers=secured.root)
    assert everything.status_code == 200
    assert any(r["partition"] == "tenant-b" for r in everything.json())
    auditor_a = secured.token("auditor", ["tenant-a"])
    own = httpx.get(url, params={"limit": "1000"}, headers=auditor_a)
    assert own.status_code == 200
    assert all(r["partition"] == "tenant-a" for r in own.json())
    assert b["study"] not in own.text
    other = httpx.get(url, params={"partition": "tenant-b"}, headers=auditor_a)
    assert other.status_code == 404
