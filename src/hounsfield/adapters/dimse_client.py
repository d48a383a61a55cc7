"""The DIMSE client port: pynetdicom for Verification, Query/Retrieve and N-EVENT-REPORT,
our own blocking-socket Storage SCU (`adapters.dimse_store_scu`) for C-STORE.

Storage is where throughput matters (C-MOVE sub-operations, forwarding): pynetdicom's reactor
thread held C-MOVE to a third of Orthanc's rate and raced with the caller over responses
(ADR 0015). The other services send a handful of messages per association, where pynetdicom
is fine (DESIGN.md §4).
"""

from __future__ import annotations

import contextlib
import logging
import socket
import ssl
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from pydicom.dataset import Dataset
from pynetdicom import AE, build_role
from pynetdicom.association import Association

from hounsfield.adapters.dimse_store_scu import ScuOptions, SocketStoreSession, open_store_session
from hounsfield.domain.implementation import (
    IMPLEMENTATION_CLASS_UID,
    IMPLEMENTATION_VERSION_NAME,
)
from hounsfield.domain.model import DicomJson
from hounsfield.ports.dicom_network import (
    DicomNetworkError,
    DimseReply,
)
from hounsfield.ports.index import RemoteAE

log = logging.getLogger(__name__)

#: PS3.8 9.3.2.2: presentation context ids are odd numbers 1..255, so at most 128 contexts.
MAX_CONTEXTS = 128
VERIFICATION = "1.2.840.10008.1.1"
_COUNTS = (
    "NumberOfRemainingSuboperations",
    "NumberOfCompletedSuboperations",
    "NumberOfFailedSuboperations",
    "NumberOfWarningSuboperations",
)


def _status(response: Dataset) -> int:
    """The Status of a response; an empty Dataset means pynetdicom timed out or aborted."""
    if "Status" not in response:
        raise DicomNetworkError("no response from the peer (timeout or association aborted)")
    return int(response.Status)


class PynetdicomNetwork:
    """`DicomNetwork` on pynetdicom associations, one per call."""

    def __init__(
        self,
        *,
        acse_timeout: float = 30.0,
        dimse_timeout: float = 60.0,
        network_timeout: float = 60.0,
        max_pdu: int = 0,
        tls_context: Callable[[], ssl.SSLContext] | None = None,
    ) -> None:
        self.tls_context = tls_context or ssl.create_default_context
        self.acse_timeout = acse_timeout
        self.dimse_timeout = dimse_timeout
        self.network_timeout = network_timeout
        self.max_pdu = max_pdu
        logging.getLogger("pynetdicom").setLevel(logging.WARNING)

    def max_contexts(self) -> int:
        return MAX_CONTEXTS

    def _ae(self, calling_ae: str) -> AE:
        ae = AE(ae_title=calling_ae)
        ae.implementation_class_uid = IMPLEMENTATION_CLASS_UID
        ae.implementation_version_name = IMPLEMENTATION_VERSION_NAME
        ae.acse_timeout = self.acse_timeout
        ae.dimse_timeout = self.dimse_timeout
        ae.network_timeout = self.network_timeout
        ae.maximum_pdu_size = self.max_pdu
        return ae

    def _associate(self, ae: AE, remote: RemoteAE) -> Association:
        tls: tuple[ssl.SSLContext, str] | None = None
        if remote.tls:
            tls = (self.tls_context(), remote.host)
        try:
            # pynetdicom 3 leaks its socket when the connection is refused; find out first.
            with socket.create_connection((remote.host, remote.port), self.acse_timeout):
                pass
            assoc = ae.associate(remote.host, remote.port, ae_title=remote.aet, tls_args=tls)
        except (OSError, ValueError) as exc:
            raise DicomNetworkError(f"cannot reach {remote.aet}: {exc}") from exc
        if not assoc.is_established:
            why = "rejected" if assoc.is_rejected else "aborted or unreachable"
            raise DicomNetworkError(
                f"association with {remote.aet}@{remote.host}:{remote.port} {why}"
            )
        _no_delay(assoc)
        return assoc

    def echo(self, remote: RemoteAE, *, calling_ae: str) -> int:
        ae = self._ae(calling_ae)
        ae.add_requested_context(VERIFICATION)
        assoc = self._associate(ae, remote)
        try:
            return _status(assoc.send_c_echo())
        finally:
            if assoc.is_established:
                assoc.release()

    def open_store(
        self, remote: RemoteAE, *, calling_ae: str, contexts: Sequence[tuple[str, str]]
    ) -> SocketStoreSession:
        if len(contexts) > MAX_CONTEXTS:
            raise ValueError(f"at most {MAX_CONTEXTS} presentation contexts per association")
        options = ScuOptions(
            acse_timeout=self.acse_timeout,
            dimse_timeout=self.dimse_timeout,
            network_timeout=self.network_timeout,
            max_pdu=self.max_pdu,
            tls_context=self.tls_context,
        )
        return open_store_session(remote, calling_ae=calling_ae, contexts=contexts, options=options)

    def _replies(self, responses: Iterator[tuple[Dataset, Dataset | None]]) -> Iterator[DimseReply]:
        for status, identifier in responses:
            code = _status(status)
            counts = {
                name: int(status.get(name)) for name in _COUNTS if status.get(name) is not None
            }
            found: DicomJson | None = None
            if identifier is not None:
                found = _json(identifier)
            comment = str(status.get("ErrorComment", "") or "")
            yield DimseReply(code, found, counts, comment)

    def find(
        self, remote: RemoteAE, *, calling_ae: str, sop_class_uid: str, identifier: DicomJson
    ) -> Iterator[DimseReply]:
        ae = self._ae(calling_ae)
        ae.add_requested_context(sop_class_uid)
        assoc = self._associate(ae, remote)
        try:
            yield from self._replies(
                assoc.send_c_find(Dataset.from_json(dict(identifier)), sop_class_uid)
            )
        finally:
            if assoc.is_established:
                assoc.release()

    def move(
        self,
        remote: RemoteAE,
        *,
        calling_ae: str,
        sop_class_uid: str,
        identifier: DicomJson,
        destination: str,
    ) -> Iterator[DimseReply]:
        ae = self._ae(calling_ae)
        ae.add_requested_context(sop_class_uid)
        assoc = self._associate(ae, remote)
        try:
            yield from self._replies(
                assoc.send_c_move(Dataset.from_json(dict(identifier)), destination, sop_class_uid)
            )
        finally:
            if assoc.is_established:
                assoc.release()

    def event_report(
        self,
        remote: RemoteAE,
        *,
        calling_ae: str,
        sop_class_uid: str,
        sop_instance_uid: str,
        event_type: int,
        information: DicomJson,
    ) -> int:
        ae = self._ae(calling_ae)
        ae.add_requested_context(sop_class_uid)
        role = build_role(sop_class_uid, scu_role=False, scp_role=True)
        tls: tuple[ssl.SSLContext, str] | None = None
        if remote.tls:
            tls = (self.tls_context(), remote.host)
        try:
            with socket.create_connection((remote.host, remote.port), self.acse_timeout):
                pass
            assoc = ae.associate(
                remote.host, remote.port, ae_title=remote.aet, ext_neg=[role], tls_args=tls
            )
        except (OSError, ValueError) as exc:
            raise DicomNetworkError(f"cannot reach {remote.aet}: {exc}") from exc
        if not assoc.is_established:
            raise DicomNetworkError(f"association with {remote.aet} rejected or aborted")
        try:
            status, _ = assoc.send_n_event_report(
                Dataset.from_json(dict(information)), event_type, sop_class_uid, sop_instance_uid
            )
            return _status(status)
        finally:
            if assoc.is_established:
                assoc.release()


def _no_delay(assoc: Association) -> None:
    """TCP_NODELAY on the association's socket (DESIGN.md §4): pynetdicom leaves Nagle on, and
    each small PDU (a C-STORE-RQ command, the last fragment of a data set) then waits ~40 ms
    for the peer's delayed ACK, which caps a C-MOVE at ~20 instances/s."""
    transport = getattr(assoc.dul, "socket", None)
    sock = getattr(transport, "socket", None)
    if isinstance(sock, socket.socket):
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def _json(identifier: Dataset) -> DicomJson:
    converted: dict[str, Any] = identifier.to_json_dict(bulk_data_threshold=1 << 30)
    return converted
