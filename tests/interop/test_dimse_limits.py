"""Association policies from the dimse_* settings: the concurrency limit (A-ASSOCIATE-RJ
transient, local limit exceeded), the calling AE allow list (reason 3), the ARTIM timer and
the idle timeout (PS3.8 9.1.5, 9.3.4)."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest
from pydicom.uid import ImplicitVRLittleEndian
from pynetdicom.sop_class import Verification

from tests.conftest import RunningServer, start_server, stop_server
from tests.interop.dimse_support import associate_rq, connect, read_pdu

A_ASSOCIATE_AC, A_ASSOCIATE_RJ, A_ABORT = 2, 3, 7


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    running = start_server(
        tmp_path_factory.mktemp("dimse-limits") / "data",
        {
            "HOUNSFIELD_AE_TITLE": "LIMITED",
            "HOUNSFIELD_DIMSE_MAX_ASSOCIATIONS": "2",
            "HOUNSFIELD_DIMSE_ACSE_TIMEOUT": "1",
            "HOUNSFIELD_DIMSE_IDLE_TIMEOUT": "2",
            "HOUNSFIELD_DIMSE_ALLOWED_CALLING_AES": "RAWSCU,OTHER",
        },
    )
    try:
        yield running
    finally:
        stop_server(running)


def request(server: RunningServer, calling: str = "RAWSCU") -> bytes:
    return associate_rq(
        server.ae_title, [(1, Verification, [ImplicitVRLittleEndian])], calling=calling
    )


def test_calling_ae_not_in_the_allow_list_is_rejected(server: RunningServer) -> None:
    sock = connect(server.dimse_port)
    sock.sendall(request(server, calling="STRANGER"))
    pdu_type, body = read_pdu(sock)
    sock.close()
    assert pdu_type == A_ASSOCIATE_RJ
    assert tuple(body[1:4]) == (1, 1, 3)  # permanent, service user, calling AE not recognised


def test_the_association_limit_rejects_as_transient(server: RunningServer) -> None:
    held = []
    for _ in range(2):
        sock = connect(server.dimse_port)
        sock.sendall(request(server))
        assert read_pdu(sock)[0] == A_ASSOCIATE_AC
        held.append(sock)
    extra = connect(server.dimse_port)
    extra.sendall(request(server, calling="OTHER"))
    pdu_type, body = read_pdu(extra)
    extra.close()
    assert pdu_type == A_ASSOCIATE_RJ
    # rejected-transient, service provider (presentation), local limit exceeded (PS3.8 9.3.4)
    assert tuple(body[1:4]) == (2, 3, 2)
    for sock in held:
        sock.close()
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:  # the slots free up once the server sees the closes
        sock = connect(server.dimse_port)
        sock.sendall(request(server))
        accepted = read_pdu(sock)[0] == A_ASSOCIATE_AC
        sock.close()
        if accepted:
            return
        time.sleep(0.2)
    pytest.fail("associations were not released after their peers closed")


def test_artim_closes_a_silent_connection(server: RunningServer) -> None:
    sock = connect(server.dimse_port)
    started = time.monotonic()
    assert read_pdu(sock) == (0, b"")  # closed without a word: AA-2 in Sta2
    sock.close()
    assert 0.5 < time.monotonic() - started < 8


def test_idle_association_is_aborted(server: RunningServer) -> None:
    sock = connect(server.dimse_port)
    sock.sendall(request(server))
    assert read_pdu(sock)[0] == A_ASSOCIATE_AC
    started = time.monotonic()
    pdu_type, body = read_pdu(sock)
    elapsed = time.monotonic() - started
    sock.close()
    assert pdu_type == A_ABORT
    assert body[2] == 2  # service provider
    assert 1 < elapsed < 10
    assert httpx.get(f"{server.url}/api/health").status_code == 200
