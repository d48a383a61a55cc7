"""Misbehaving peers (DESIGN.md §6): every bad PDU sequence ends in an A-ABORT from the service
provider with the PS3.8 9.3.8 reason, or a clean close; the server keeps serving others and
loses nothing already stored; a half-received C-STORE leaves nothing behind."""

from __future__ import annotations

import socket
import struct
import time
from collections.abc import Iterator

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian
from pynetdicom import AE
from pynetdicom.sop_class import CTImageStorage, Verification

from hounsfield.domain.commandset import encode_command
from tests.builders import make_dataset, to_bytes
from tests.conftest import RunningServer, start_server, stop_server
from tests.interop.dimse_support import (
    associate_rq,
    connect,
    count_instances,
    dataset_part,
    drain_until_closed,
    pdata,
    read_part10,
    read_pdu,
)

A_ASSOCIATE_AC, A_ASSOCIATE_RJ, A_RELEASE_RP, A_ABORT = 2, 3, 6, 7
CT_IMAGE = "1.2.840.10008.5.1.4.1.1.2"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    running = start_server(tmp_path_factory.mktemp("dimse-robust") / "data")
    try:
        yield running
    finally:
        stop_server(running)


@pytest.fixture(scope="module")
def baseline(server: RunningServer) -> str:
    """An instance stored before the abuse starts; it must survive all of it."""
    ds = make_dataset()
    ae = AE(ae_title="BASELINE")
    ae.add_requested_context(CTImageStorage, ExplicitVRLittleEndian)
    assoc = ae.associate("127.0.0.1", server.dimse_port, ae_title=server.ae_title)
    ds.file_meta = read_part10(to_bytes(ds)).file_meta
    assert int(assoc.send_c_store(ds).Status) == 0
    assoc.release()
    return str(ds.SOPInstanceUID)


def assert_healthy(server: RunningServer, baseline: str) -> None:
    assert httpx.get(f"{server.url}/api/health", timeout=5).status_code == 200
    ae = AE(ae_title="CHECKER")
    ae.add_requested_context(Verification)
    assoc = ae.associate("127.0.0.1", server.dimse_port, ae_title=server.ae_title)
    assert assoc.is_established
    assert int(assoc.send_c_echo().Status) == 0
    assoc.release()
    assert count_instances(server.dicomweb, SOPInstanceUID=baseline) == 1


def established(server: RunningServer, max_length: int = 16384) -> socket.socket:
    sock = connect(server.dimse_port)
    sock.sendall(
        associate_rq(
            server.ae_title,
            [
                (1, Verification, [ImplicitVRLittleEndian]),
                (3, CT_IMAGE, [ExplicitVRLittleEndian]),
            ],
            max_length=max_length,
        )
    )
    pdu_type, _ = read_pdu(sock)
    assert pdu_type == A_ASSOCIATE_AC
    return sock


def expect_abort(sock: socket.socket, reason: int | None) -> None:
    pdu_type, body = read_pdu(sock)
    assert pdu_type == A_ABORT, pdu_type
    assert body[2] == 2  # source: service provider
    if reason is not None:
        assert body[3] == reason, body[3]
    sock.close()  # PS3.8 AA-3: the requestor closes the transport on A-ABORT


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"\x09\x00\x00\x00\x00\x04abcd", 1),  # unrecognised PDU type
        (pdata(1, 3, b"x" * 10), 2),  # P-DATA before A-ASSOCIATE-RQ
        (b"\x05\x00\x00\x00\x00\x04\x00\x00\x00\x00", 2),  # A-RELEASE-RQ before association
        (b"\x01\x00\xff\xff\xff\xff", 6),  # A-ASSOCIATE-RQ of 4 GB
        (b"\x01\x00\x00\x00\x00\x50" + bytes(0x50), 4),  # item type 00 where items go
    ],
)
def test_bad_first_pdu_is_aborted(
    server: RunningServer, baseline: str, payload: bytes, reason: int
) -> None:
    sock = connect(server.dimse_port)
    sock.sendall(payload)
    expect_abort(sock, reason)
    assert_healthy(server, baseline)


def _echo_command(message_id: int = 1) -> bytes:
    return encode_command(
        {"CommandField": 0x0030, "MessageID": message_id, "AffectedSOPClassUID": Verification},
        has_dataset=False,
    )


def test_raw_echo_and_release(server: RunningServer, baseline: str) -> None:
    sock = established(server)
    sock.sendall(pdata(1, 3, _echo_command(7)))
    pdu_type, body = read_pdu(sock)
    assert pdu_type == 4
    assert body[5] == 3  # a complete command in one PDV
    assert struct.pack("<HHIH", 0, 0x0120, 2, 7) in body  # MessageIDBeingRespondedTo = 7
    sock.sendall(b"\x05\x00\x00\x00\x00\x04" + bytes(4))
    assert read_pdu(sock)[0] == A_RELEASE_RP
    sock.close()
    assert_healthy(server, baseline)


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"\x09\x00\x00\x00\x00\x04abcd", 1),  # unrecognised PDU type
        (associate_rq("HOUNSFIELD", [(1, Verification, [ImplicitVRLittleEndian])]), 2),
        (b"\x06\x00\x00\x00\x00\x04" + bytes(4), 2),  # A-RELEASE-RP we did not ask for
        (b"\x04\x00\x00\x00\x00\x04" + bytes(4), 6),  # P-DATA-TF shorter than a PDV header
        (pdata(5, 3, _echo_command()), 6),  # context 5 was never proposed
        (pdata(1, 2, b"xx"), 2),  # data set fragment without a command
        (pdata(1, 3, b"\x00" * 16), 6),  # not a command set
        (struct.pack(">BBI", 4, 0, 200_000) + bytes(200_000), 6),  # beyond our Maximum Length
    ],
)
def test_bad_pdu_on_an_established_association_is_aborted(
    server: RunningServer, baseline: str, payload: bytes, reason: int
) -> None:
    sock = established(server)
    sock.sendall(payload)
    expect_abort(sock, reason)
    assert_healthy(server, baseline)


def _store_command(sop_uid: str) -> bytes:
    return encode_command(
        {
            "CommandField": 0x0001,
            "MessageID": 1,
            "Priority": 0,
            "AffectedSOPClassUID": CT_IMAGE,
            "AffectedSOPInstanceUID": sop_uid,
        },
        has_dataset=True,
    )


def _staging_files(server: RunningServer) -> list[str]:
    staging = server.data_dir / "staging"
    return sorted(p.name for p in staging.glob("*.part")) if staging.exists() else []


@pytest.mark.parametrize("ending", ["close", "abort", "release"])
def test_half_received_c_store_leaves_nothing(
    server: RunningServer, baseline: str, ending: str
) -> None:
    ds = make_dataset(rows=64, columns=64)
    data = dataset_part(to_bytes(ds))
    before = _staging_files(server)
    sock = established(server)
    sock.sendall(pdata(3, 3, _store_command(ds.SOPInstanceUID)))
    sock.sendall(pdata(3, 0, data[: len(data) // 2]))  # not the last fragment
    time.sleep(0.2)
    if ending == "abort":
        sock.sendall(b"\x07\x00\x00\x00\x00\x04\x00\x00\x00\x00")
    elif ending == "release":
        sock.sendall(b"\x05\x00\x00\x00\x00\x04" + bytes(4))
        expect_abort(sock, 2)  # release in the middle of a message is unexpected
    sock.close()
    deadline = time.monotonic() + 5
    while _staging_files(server) != before and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _staging_files(server) == before
    assert count_instances(server.dicomweb, SOPInstanceUID=ds.SOPInstanceUID) == 0
    assert_healthy(server, baseline)


def test_complete_raw_c_store_is_stored(server: RunningServer, baseline: str) -> None:
    ds = make_dataset()
    data = dataset_part(to_bytes(ds))
    sock = established(server)
    sock.sendall(pdata(3, 3, _store_command(ds.SOPInstanceUID)))
    for start in range(0, len(data), 100):  # many small fragments
        last = start + 100 >= len(data)
        sock.sendall(pdata(3, 2 if last else 0, data[start : start + 100]))
    pdu_type, body = read_pdu(sock)
    assert pdu_type == 4
    assert struct.pack("<HHIH", 0, 0x0900, 2, 0) in body  # Status 0000
    sock.close()
    assert count_instances(server.dicomweb, SOPInstanceUID=ds.SOPInstanceUID) == 1


def _valid_session() -> bytes:
    return (
        associate_rq("HOUNSFIELD", [(1, Verification, [ImplicitVRLittleEndian])])
        + pdata(1, 3, _echo_command())
        + b"\x05\x00\x00\x00\x00\x04"
        + bytes(4)
    )


def _fuzz_once(port: int, payload: bytes) -> None:
    sock = connect(port, timeout=10)
    try:
        sock.sendall(payload)
        sock.shutdown(socket.SHUT_WR)  # a truncated stream, whatever was sent
        drain_until_closed(sock)
    except OSError:
        pass
    finally:
        sock.close()


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(st.binary(min_size=1, max_size=600))
def test_fuzz_random_bytes(server: RunningServer, baseline: str, payload: bytes) -> None:
    _fuzz_once(server.dimse_port, payload)


@settings(
    max_examples=80,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(st.data())
def test_fuzz_mutated_valid_session(
    server: RunningServer, baseline: str, data: st.DataObject
) -> None:
    session = bytearray(_valid_session())
    for _ in range(data.draw(st.integers(1, 6), label="mutations")):
        kind = data.draw(st.sampled_from(["flip", "cut", "insert"]), label="kind")
        pos = data.draw(st.integers(0, len(session) - 1), label="position")
        if kind == "flip":
            session[pos] = data.draw(st.integers(0, 255), label="byte")
        elif kind == "cut":
            del session[pos : pos + data.draw(st.integers(1, 40), label="length")]
        else:
            session[pos:pos] = data.draw(st.binary(min_size=1, max_size=20), label="bytes")
        if not session:
            session = bytearray(b"\x00")
    _fuzz_once(server.dimse_port, bytes(session))


def test_server_survived_the_fuzzing(server: RunningServer, baseline: str) -> None:
    assert_healthy(server, baseline)
    assert server.process.poll() is None
