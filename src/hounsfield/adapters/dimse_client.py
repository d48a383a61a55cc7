"""The DIMSE client port (`ports.dicom_network.DicomNetwork`): every SCU service of the archive
on our own blocking-socket association (`adapters.dimse_association`, ADR 0015 and 0016).

C-STORE is `adapters.dimse_store_scu`; C-ECHO, C-FIND, C-MOVE and N-EVENT-REPORT are
`adapters.dimse_scu`. Each call opens its association with the dimse_* timeouts and, for a
remote AE registered with TLS, the client TLS context of the archive (PS3.15 B.1).
"""

from __future__ import annotations

import ssl
from collections.abc import Callable, Iterator, Sequence

from hounsfield.adapters import dimse_scu
from hounsfield.adapters.dimse_association import ScuOptions
from hounsfield.adapters.dimse_store_scu import SocketStoreSession, open_store_session
from hounsfield.domain.model import DicomJson
from hounsfield.ports.dicom_network import DimseReply
from hounsfield.ports.index import RemoteAE

#: PS3.8 9.3.2.2: presentation context ids are odd numbers 1..255, so at most 128 contexts.
MAX_CONTEXTS = 128


class SocketNetwork:
    """`DicomNetwork` on blocking-socket associations, one per call."""

    def __init__(
        self,
        *,
        acse_timeout: float = 30.0,
        dimse_timeout: float = 60.0,
        network_timeout: float = 60.0,
        max_pdu: int = 0,
        tls_context: Callable[[], ssl.SSLContext] | None = None,
    ) -> None:
        self.options = ScuOptions(
            acse_timeout=acse_timeout,
            dimse_timeout=dimse_timeout,
            network_timeout=network_timeout,
            max_pdu=max_pdu,
            tls_context=tls_context or ssl.create_default_context,
        )

    def max_contexts(self) -> int:
        return MAX_CONTEXTS

    def echo(self, remote: RemoteAE, *, calling_ae: str) -> int:
        return dimse_scu.echo(remote, calling_ae=calling_ae, options=self.options)

    def open_store(
        self, remote: RemoteAE, *, calling_ae: str, contexts: Sequence[tuple[str, str]]
    ) -> SocketStoreSession:
        if len(contexts) > MAX_CONTEXTS:
            raise ValueError(f"at most {MAX_CONTEXTS} presentation contexts per association")
        return open_store_session(
            remote, calling_ae=calling_ae, contexts=contexts, options=self.options
        )

    def find(
        self, remote: RemoteAE, *, calling_ae: str, sop_class_uid: str, identifier: DicomJson
    ) -> Iterator[DimseReply]:
        return dimse_scu.find(
            remote,
            calling_ae=calling_ae,
            sop_class_uid=sop_class_uid,
            identifier=identifier,
            options=self.options,
        )

    def move(
        self,
        remote: RemoteAE,
        *,
        calling_ae: str,
        sop_class_uid: str,
        identifier: DicomJson,
        destination: str,
    ) -> Iterator[DimseReply]:
        return dimse_scu.move(
            remote,
            calling_ae=calling_ae,
            sop_class_uid=sop_class_uid,
            identifier=identifier,
            destination=destination,
            options=self.options,
        )

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
        return dimse_scu.event_report(
            remote,
            calling_ae=calling_ae,
            sop_class_uid=sop_class_uid,
            sop_instance_uid=sop_instance_uid,
            event_type=event_type,
            information=information,
            options=self.options,
        )
