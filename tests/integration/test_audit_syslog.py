"""Audit messages copied to a syslog collector: RFC 5424 over TCP with octet counting
(RFC 6587), the PS3.15 A.5 XML as the message, as IHE ATNA (ITI-20) sends them."""

from __future__ import annotations

import socket
import threading
from pathlib import Path
from xml.etree import ElementTree

from hounsfield.adapters.audit_syslog import BOM, MSGID, SyslogSink
from hounsfield.domain.audit import Outcome, validate_xml
from hounsfield.ports.audit import AuditFilter
from hounsfield.services.audit import Actor, AuditService
from tests.contract.conftest import _sqlite


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
