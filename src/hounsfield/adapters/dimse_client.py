"""The DIMSE client port on pynetdicom (DESIGN.md §4: pynetdicom is fine as an SCU).

Objects are sent from their PS3.10 files in pynetdicom's chunked mode
(`STORE_SEND_CHUNKED_DATASET`): the data set after the File Meta Information goes on the
wire as stored, never decoded and re-encoded, so what the peer receives is byte-identical
(DESIGN.md key idea 1) and memory stays bounded for large objects. The mode is process-wide
in pynetdicom; Hounsfield uses pynetdicom only as an SCU, always with file paths, so setting it
once is safe.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import ssl
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from pydicom.dataset import Dataset
from pynetdicom import AE, _config, build_role
from pynetdicom.association import Association

from hounsfield.domain.implementation import (
    IMPLEMENTATION_CLASS_UID,
    IMPLEMENTATION_VERSION_NAME,
)
from hounsfield.domain.model import DicomJson
from hounsfield.ports.dicom_network import (
    DicomNetworkError,
    DimseReply,
    OutgoingObject,
)
from hounsfield.ports.index import RemoteAE

log = logging.getLogger(__name__)

#: PS3.8 9.3.2.2: presentation context ids are odd numbers 1..255, so at most 128 contexts.
MAX_CONTEXTS = 128
VERIFICATION = "1.2.840.10008.1.1"
#: Seconds pynetdicom's reactor naps when idle, on Storage SCU associations (default 0.001).
STORE_LOOP_DELAY = 0.0001
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


class PynetdicomStoreSession:
    """An association on which we are the Storage SCU."""

    def __init__(self, assoc: Association) -> None:
        self._assoc = assoc
        self._accepted: dict[str, set[str]] = {}
        for context in assoc.accepted_contexts:
            syntax = context.transfer_syntax[0] if context.transfer_syntax else None
            if syntax is not None:
                self._accepted.setdefault(str(context.abstract_syntax), set()).add(str(syntax))
        self._message_id = 0

    def accepted_syntaxes(self, sop_class_uid: str) -> frozenset[str]:
        return frozenset(self._accepted.get(sop_class_uid, ()))

    def store(self, item: OutgoingObject, *, move_originator: tuple[str, int] | None = None) -> int:
        if not self._assoc.is_established:
            raise DicomNetworkError("the association has ended")
        self._message_id = self._message_id % 0xFFFF + 1
        originator_aet, originator_id = move_originator or (None, None)
        try:
            response = self._assoc.send_c_store(
                item.path,
                msg_id=self._message_id,
                originator_aet=originator_aet,
                originator_id=originator_id,
            )
        except (RuntimeError, ValueError, AttributeError) as exc:
            raise DicomNetworkError(str(exc)) from exc
        return _status(response)

    def close(self) -> None:
        if self._assoc.is_established:
            self._assoc.release()


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
        _config.STORE_SEND_CHUNKED_DATASET = True
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
    ) -> PynetdicomStoreSession:
        if len(contexts) > MAX_CONTEXTS:
            raise ValueError(f"at most {MAX_CONTEXTS} presentation contexts per association")
        ae = self._ae(calling_ae)
        for sop_class, syntax in contexts:
            ae.add_requested_context(sop_class, [syntax])
        assoc = self._associate(ae, remote)
        # pynetdicom's reactor sleeps 1 ms whenever its queue is empty, which is several times
        # per C-STORE (one P-DATA PDU per loop); a shorter nap doubles C-MOVE throughput.
        with contextlib.suppress(AttributeError):
            assoc.dul._run_loop_delay = STORE_LOOP_DELAY
        return PynetdicomStoreSession(assoc)

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
