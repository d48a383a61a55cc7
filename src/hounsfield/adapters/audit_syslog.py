"""Audit messages sent to a syslog collector, as IHE ATNA's Record Audit Event transaction
(ITI-20) does: RFC 5424 messages over TCP with octet-counting framing (RFC 6587 3.4.1), in TLS
when the URL is `tls://` (RFC 5425, the transport ATNA requires), with an optional client
certificate for mutual authentication.

Each message: PRI 85 (facility 10 security/authorization, severity 5 notice), VERSION 1, the
event time, our host name, APP-NAME `hounsfield`, PROCID, MSGID `IHE+RFC-3881`, no structured
data, and the PS3.15 A.5 XML as MSG, UTF-8 with a BOM (RFC 5424 6.4).

The index keeps the authoritative, hash-chained trail; this is a copy, so a failure raises and
the audit writer logs it and carries on (services/audit.py).
"""

from __future__ import annotations

import os
import socket
import ssl
import threading
from collections.abc import Sequence
from urllib.parse import urlparse

from hounsfield.domain.audit import AuditMessage, timestamp, to_xml

PRI = 10 * 8 + 5
MSGID = "IHE+RFC-3881"
BOM = b"\xef\xbb\xbf"


def frame(message: AuditMessage, hostname: str, app: str = "hounsfield") -> bytes:
    """One RFC 5424 message with its RFC 6587 octet count."""
    header = f"<{PRI}>1 {timestamp(message.time)} {hostname} {app} {os.getpid()} {MSGID} - "
    body = header.encode() + BOM + to_xml(message).encode()
    return str(len(body)).encode() + b" " + body


class SyslogSink:
    """`AuditSink` that sends each batch over one kept-open TCP (or TLS) connection."""

    def __init__(
        self,
        url: str,
        *,
        ca_file: str = "",
        cert_file: str = "",
        key_file: str = "",
        timeout: float = 5.0,
    ) -> None:
        parsed = urlparse(url)
        if parsed.scheme not in ("tcp", "tls") or not parsed.hostname or not parsed.port:
            raise ValueError(f"audit syslog URL {url!r} must be tcp://host:port or tls://host:port")
        self.host, self.port = parsed.hostname, parsed.port
        self.timeout = timeout
        self._context: ssl.SSLContext | None = None
        if parsed.scheme == "tls":
            context = ssl.create_default_context(cafile=ca_file or None)
            if cert_file:
                context.load_cert_chain(cert_file, key_file or None)
            self._context = context
        self._socket: socket.socket | None = None
        self._lock = threading.Lock()
        self._hostname = socket.gethostname() or "-"

    def _connect(self) -> socket.socket:
        raw = socket.create_connection((self.host, self.port), timeout=self.timeout)
        if self._context is None:
            return raw
        return self._context.wrap_socket(raw, server_hostname=self.host)

    def append(self, messages: Sequence[AuditMessage]) -> None:
        data = b"".join(frame(m, self._hostname) for m in messages)
        with self._lock:
            for attempt in (1, 2):  # a collector that closed an idle connection: reconnect once
                try:
                    if self._socket is None:
                        self._socket = self._connect()
                    self._socket.sendall(data)
                    return
                except OSError:
                    self.close_locked()
                    if attempt == 2:
                        raise

    def close_locked(self) -> None:
        if self._socket is not None:
            try:
                self._socket.close()
            finally:
                self._socket = None

    def close(self) -> None:
        with self._lock:
            self.close_locked()
