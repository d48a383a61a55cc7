"""Audit messages copied to a syslog collector: RFC 5424 over TCP with octet counting
(RFC 6587), the PS3.15 A.5 XML as the message, as IHE ATNA (ITI-20) sends them."""

from __future__ import annotations

import socket
import ssl
import threading
from pathlib import Path
from xml.etree import ElementTree

from hounsfield.adapters.audit_syslog import BOM, MSGID, SyslogSink
from hounsfield.domain.audit import Outcome, validate_xml
from hounsfield.ports.audit import AuditFilter
from hounsfield.services.audit import Actor, AuditService
from tests.contract.conftest import _sqlite
from tests.tlssupport import make_pki


def _read_frames(conn: socket.socket, count: int) -> list[bytes]:
    buffer, frames = b"", []
    while len(frames) < count:
        chunk = conn.recv(65536)
        if not chunk:
            break
        buffer += chunk
        while b" " in buffer:
            length, _, rest = buffer.partition(b" ")
            if len(rest) < int(length):
                break
            frames.append(rest[: int(length)])
            buffer = rest[int(length) :]
    return frames


def test_messages_reach_the_collector(tmp_path: Path) -> None:
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    received: list[bytes] = []

    def collect() -> None:
        conn, _ = listener.accept()
        with conn:
            received.extend(_read_frames(conn, 2))

    thread = threading.Thread(target=collect)
    thread.start()
    harness = _sqlite(tmp_path)
    index = harness()
    sink = SyslogSink(f"tcp://127.0.0.1:{port}")
    audit = AuditService(index.audit, [sink], source_id="ARCHIVE")
    try:
        actor = Actor("MODALITY", "127.0.0.1")
        audit.record(
            audit.instances_stored(actor, "default", {"1.2.3": {"1.2": 1}}, Outcome.SUCCESS)
        )
        audit.record(
            audit.query(actor, "default", b"q", "1.2.840.10008.5.1.4.1.2.2.1", Outcome.SUCCESS)
        )
        assert audit.flush(10)
        thread.join(10)
    finally:
        audit.close()
        sink.close()
        listener.close()
        harness.close_all()
    assert len(received) == 2
    for frame in received:
        header, _, body = frame.partition(BOM)
        assert header.startswith(b"<85>1 ")  # security/authorization, notice; RFC 5424 v1
        assert f" {MSGID} - ".encode() in header
        xml = body.decode()
        assert validate_xml(xml) == []
        assert ElementTree.fromstring(xml).tag == "AuditMessage"


def test_a_dead_collector_does_not_lose_the_trail(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens there once closed
    harness = _sqlite(tmp_path)
    index = harness()
    audit = AuditService(index.audit, [SyslogSink(f"tcp://127.0.0.1:{port}")], source_id="A")
    try:
        audit.record(audit.authentication(Actor("someone"), Outcome.MINOR_FAILURE, "bad token"))
        assert audit.flush(10)
        found = index.audit.find(AuditFilter(event_type="user-authentication"))
        assert len(found) == 1 and validate_xml(found[0].xml) == []
    finally:
        audit.close()
        harness.close_all()


def test_mutual_tls_to_the_collector(tmp_path: Path) -> None:
    """RFC 5425 as ATNA requires it: we verify the collector and it verifies us."""
    pki = make_pki(tmp_path / "pki")
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=str(pki.ca))
    server_context.load_cert_chain(pki.server_cert, pki.server_key)
    server_context.verify_mode = ssl.CERT_REQUIRED
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    received: list[bytes] = []
    peers: list[object] = []

    def collect() -> None:
        raw, _ = listener.accept()
        with server_context.wrap_socket(raw, server_side=True) as conn:
            peers.append(conn.getpeercert())
            received.extend(_read_frames(conn, 1))

    thread = threading.Thread(target=collect)
    thread.start()
    harness = _sqlite(tmp_path)
    index = harness()
    sink = SyslogSink(
        f"tls://localhost:{port}",
        ca_file=str(pki.ca),
        cert_file=str(pki.client_cert),
        key_file=str(pki.client_key),
    )
    audit = AuditService(index.audit, [sink], source_id="ARCHIVE")
    try:
        audit.record(audit.authentication(Actor("someone", "127.0.0.1"), Outcome.SUCCESS))
        assert audit.flush(10)
        thread.join(10)
    finally:
        audit.close()
        sink.close()
        listener.close()
        harness.close_all()
    assert peers and peers[0]  # the collector saw our client certificate
    assert len(received) == 1 and b"<AuditMessage>" in received[0]


def test_a_collector_we_cannot_verify_gets_nothing(tmp_path: Path) -> None:
    pki = make_pki(tmp_path / "pki")
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_context.load_cert_chain(pki.server_cert, pki.server_key)
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    received: list[bytes] = []

    def collect() -> None:
        listener.settimeout(10)
        for _ in range(2):  # the sink reconnects once
            try:
                raw, _ = listener.accept()
            except OSError:
                return
            try:
                with server_context.wrap_socket(raw, server_side=True) as conn:
                    received.extend(_read_frames(conn, 1))
            except (ssl.SSLError, OSError):
                continue

    thread = threading.Thread(target=collect)
    thread.start()
    harness = _sqlite(tmp_path)
    index = harness()
    sink = SyslogSink(f"tls://localhost:{port}", ca_file=str(pki.other_ca))
    audit = AuditService(index.audit, [sink], source_id="ARCHIVE")
    try:
        audit.record(audit.authentication(Actor("someone"), Outcome.SUCCESS))
        assert audit.flush(10)
        assert audit._sink_failures == 1
        assert len(index.audit.find(AuditFilter())) == 1  # the trail has it all the same
    finally:
        audit.close()
        sink.close()
        listener.close()
        thread.join(15)
        harness.close_all()
    assert received == []
