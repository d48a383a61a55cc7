"""TLS end to end (PS3.15 Annex B; issue 6): HTTPS for DICOMweb and the admin API, a DICOM TLS
listener that DCMTK's echoscu/storescu and pynetdicom reach, optional mutual TLS, and our SCU
reaching a DICOM TLS peer (DCMTK storescp) registered with "tls": true."""

from __future__ import annotations

import ssl
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from pynetdicom import AE
from pynetdicom.sop_class import Verification

from hounsfield.adapters.dimse_client import SocketNetwork
from hounsfield.ports.dicom_network import DicomNetworkError
from hounsfield.ports.index import RemoteAE
from tests.builders import make_dataset, multipart, to_bytes
from tests.conftest import RunningServer, free_port, require_tool, start_server, stop_server
from tests.tlssupport import Pki, make_pki

pytestmark = pytest.mark.services


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


def tls_env(pki: Pki, **extra: str) -> dict[str, str]:
    return {
        "HOUNSFIELD_TLS_CERT_FILE": str(pki.server_cert),
        "HOUNSFIELD_TLS_KEY_FILE": str(pki.server_key),
        "HOUNSFIELD_TLS_CA_FILE": str(pki.ca),
        **extra,
    }


@pytest.fixture(scope="module")
def server(pki: Pki, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    tls_port = free_port()
    running = start_server(
        tmp_path_factory.mktemp("tls") / "data",
        tls_env(pki, HOUNSFIELD_HTTP_TLS="true", HOUNSFIELD_DIMSE_TLS_PORT=str(tls_port)),
    )
    running.tls_port = tls_port  # type: ignore[attr-defined]
    yield running
    stop_server(running)


def dcmtk(tool: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [require_tool(tool), *args], capture_output=True, text=True, timeout=60, check=False
    )


def test_https_serves_dicomweb_and_refuses_plain_http(server: RunningServer, pki: Pki) -> None:
    assert server.url.startswith("https://")
    verify = ssl.create_default_context(cafile=str(pki.ca))
    body, content_type = multipart([to_bytes(make_dataset(patient_id="TLS-1"))])
    stored = httpx.post(
        f"{server.dicomweb}/studies",
        content=body,
        headers={"content-type": content_type},
        verify=verify,
    )
    assert stored.status_code == 200, stored.text
    found = httpx.get(f"{server.dicomweb}/studies", params={"PatientID": "TLS-1"}, verify=verify)
    assert len(found.json()) == 1
    with pytest.raises(httpx.TransportError):
        httpx.get(server.url.replace("https://", "http://") + "/api/health", timeout=3)
    untrusted = ssl.create_default_context(cafile=str(pki.other_ca))
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{server.url}/api/health", verify=untrusted)


def test_dicom_tls_with_dcmtk_and_pynetdicom(server: RunningServer, pki: Pki) -> None:
    port = str(server.tls_port)  # type: ignore[attr-defined]
    echo = dcmtk("echoscu", "+tla", "+cf", str(pki.ca), "-aec", server.ae_title, "127.0.0.1", port)
    assert echo.returncode == 0, echo.stdout + echo.stderr
    refused = dcmtk(
        "echoscu", "+tla", "+cf", str(pki.other_ca), "-aec", server.ae_title, "127.0.0.1", port
    )
    assert refused.returncode != 0  # our certificate is not trusted by this client
    plain = dcmtk("echoscu", "-to", "5", "-aec", server.ae_title, "127.0.0.1", port)
    assert plain.returncode != 0  # a plain association on the TLS port fails

    ae = AE(ae_title="PYNETDICOM")
    ae.add_requested_context(Verification)
    context = ssl.create_default_context(cafile=str(pki.ca))
    assoc = ae.associate(
        "127.0.0.1", int(port), ae_title=server.ae_title, tls_args=(context, "localhost")
    )
    assert assoc.is_established
    status = assoc.send_c_echo()
    assoc.release()
    assert status.Status == 0
    # The plain listener keeps working beside the TLS one.
    assert (
        dcmtk("echoscu", "-aec", server.ae_title, "127.0.0.1", str(server.dimse_port)).returncode
        == 0
    )


def test_our_echo_and_find_reach_the_tls_listener(server: RunningServer, pki: Pki) -> None:
    """The Verification and Query/Retrieve SCU wrap the association in the client TLS
    context like the Storage SCU (PS3.15 B.1); an untrusted server certificate fails."""
    verify = ssl.create_default_context(cafile=str(pki.ca))
    dataset = make_dataset(patient_id="TLS-FIND")
    body, content_type = multipart([to_bytes(dataset)])
    httpx.post(
        f"{server.dicomweb}/studies",
        content=body,
        headers={"content-type": content_type},
        verify=verify,
    ).raise_for_status()
    remote = RemoteAE(server.ae_title, "127.0.0.1", server.tls_port, tls=True)  # type: ignore[attr-defined]
    network = SocketNetwork(tls_context=lambda: ssl.create_default_context(cafile=str(pki.ca)))
    assert network.echo(remote, calling_ae="TLSSCU") == 0
    replies = list(
        network.find(
            remote,
            calling_ae="TLSSCU",
            sop_class_uid="1.2.840.10008.5.1.4.1.2.2.1",
            identifier={
                "00080052": {"vr": "CS", "Value": ["STUDY"]},
                "00100020": {"vr": "LO", "Value": ["TLS-FIND"]},
                "0020000D": {"vr": "UI"},
            },
        )
    )
    assert [r.status for r in replies] == [0xFF00, 0]
    assert replies[0].identifier is not None
    assert replies[0].identifier["0020000D"]["Value"] == [dataset.StudyInstanceUID]
    untrusted = SocketNetwork(
        tls_context=lambda: ssl.create_default_context(cafile=str(pki.other_ca))
    )
    with pytest.raises(DicomNetworkError, match="CERTIFICATE_VERIFY_FAILED"):
        untrusted.echo(remote, calling_ae="TLSSCU")


def test_mutual_tls_requires_a_client_certificate(pki: Pki, tmp_path: Path) -> None:
    tls_port = free_port()
    (tmp_path / "m").mkdir()
    server = start_server(
        tmp_path / "m" / "data",
        tls_env(
            pki, HOUNSFIELD_DIMSE_TLS_PORT=str(tls_port), HOUNSFIELD_DIMSE_TLS_VERIFY_CLIENT="true"
        ),
    )
    try:
        common = ["+cf", str(pki.ca), "-aec", server.ae_title, "127.0.0.1", str(tls_port)]
        anonymous = dcmtk("echoscu", "+tla", *common)
        assert anonymous.returncode != 0
        with_cert = dcmtk("echoscu", "+tls", str(pki.client_key), str(pki.client_cert), *common)
        assert with_cert.returncode == 0, with_cert.stdout + with_cert.stderr
        instance = tmp_path / "a.dcm"
        instance.write_bytes(to_bytes(make_dataset(patient_id="MTLS")))
        sent = dcmtk(
            "storescu", "+tls", str(pki.client_key), str(pki.client_cert), *common, str(instance)
        )
        assert sent.returncode == 0, sent.stdout + sent.stderr
        found = httpx.get(f"{server.dicomweb}/studies", params={"PatientID": "MTLS"})
        assert len(found.json()) == 1
    finally:
        stop_server(server)


def test_scu_reaches_a_tls_peer(server: RunningServer, pki: Pki, tmp_path: Path) -> None:
    """C-MOVE from the archive to a DCMTK storescp that speaks only DICOM TLS."""
    verify = ssl.create_default_context(cafile=str(pki.ca))
    dataset = make_dataset(patient_id="TLS-MOVE")
    body, content_type = multipart([to_bytes(dataset)])
    httpx.post(
        f"{server.dicomweb}/studies",
        content=body,
        headers={"content-type": content_type},
        verify=verify,
    ).raise_for_status()
    port, out = free_port(), tmp_path / "received"
    out.mkdir()
    storescp = subprocess.Popen(
        [
            require_tool("storescp"),
            "+tls",
            str(pki.server_key),
            str(pki.server_cert),
            "+cf",
            str(pki.ca),
            "-ic",  # the archive presents its certificate; not required here
            "-aet",
            "TLSDEST",
            "-od",
            str(out),
            str(port),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        registered = httpx.put(
            f"{server.url}/api/remote-aes/TLSDEST",
            json={"host": "127.0.0.1", "port": port, "tls": True},
            verify=verify,
        )
        assert registered.status_code == 201, registered.text
        time.sleep(0.3)
        queued = httpx.post(
            f"{server.url}/api/forward",
            json={"destination": "TLSDEST", "study": dataset.StudyInstanceUID},
            verify=verify,
        )
        job_id = queued.json()["job"]
        deadline = time.monotonic() + 30
        state = ""
        while time.monotonic() < deadline and state not in ("succeeded", "dead"):
            state = httpx.get(f"{server.url}/api/jobs/{job_id}", verify=verify).json()["state"]
            time.sleep(0.2)
        assert state == "succeeded"
        assert len(list(out.iterdir())) == 1
    finally:
        storescp.terminate()
        storescp.wait(timeout=10)
