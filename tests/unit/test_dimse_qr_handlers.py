"""The C-FIND, C-MOVE and C-GET handlers against a scripted association: statuses, counts,
Failed SOP Instance UID List, and C-CANCEL at a chosen point (PS3.4 C.4.1.3, C.4.2.3, C.4.3.3).

The association is a stand-in (the real one is exercised by tests/interop); the index, the
blob store and the services are real.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from pydicom.dataset import Dataset
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_dataset

from hounsfield.adapters.blobs.memory import MemoryBlobStore
from hounsfield.adapters.index.sqlite import SqliteIndex
from hounsfield.domain.qrmodel import Model
from hounsfield.frontends.dimse.api import (
    Message,
    NoPresentationContextError,
    PresentationContext,
    SubOperationResult,
)
from hounsfield.frontends.dimse.qr import handle_find, handle_get, handle_move
from hounsfield.ports.index import Event, RemoteAE, StoredInstance
from hounsfield.services.dicom_send import SendOutcome, SendResult
from hounsfield.services.qr import QueryRetrieveService
from tests.builders import make_dataset, to_bytes
from tests.factories import make_new_instance

IMPLICIT = "1.2.840.10008.1.2"
EXPLICIT = "1.2.840.10008.1.2.1"
CT = "1.2.840.10008.5.1.4.1.1.2"
STUDY = "1.2.826.0.1.3680043.10.1234.55.1"


class FakeAssociation:
    """Records responses; `cancel_after` responses in, a C-CANCEL 'arrives'."""

    def __init__(self, services: Any, *, cancel_after: int | None = None) -> None:
        self.services = services
        self.calling_ae = "SCU"
        self.called_ae = "HOUNSFIELD"
        self.peer = ("127.0.0.1", 1)
        self.partition = "default"
        self.contexts: dict[int, PresentationContext] = {}
        self.extended: dict[str, bytes] = {}
        self.responses: list[tuple[int, dict[str, Any], Any]] = []
        self.stored: list[tuple[str, str, bytes]] = []
        self.cancel_after = cancel_after
        self.store_status = 0

    async def send_response(
        self,
        request: Message,
        status: int,
        *,
        command_extra: Mapping[str, Any] | None = None,
        dataset: Any = None,
    ) -> None:
        self.responses.append((status, dict(command_extra or {}), dataset))

    def is_cancelled(self, message_id: int) -> bool:
        return self.cancel_after is not None and len(self.responses) >= self.cancel_after

    def find_context(
        self, abstract_syntax: str, transfer_syntaxes: Any = None, *, as_scu: bool = False
    ) -> PresentationContext | None:
        for ctx in self.contexts.values():
            if ctx.abstract_syntax == abstract_syntax and (
                transfer_syntaxes is None or ctx.transfer_syntax in transfer_syntaxes
            ):
                return ctx
        return None

    async def send_c_store_request(self, **kwargs: Any) -> SubOperationResult:
        if self.find_context(kwargs["sop_class_uid"], [kwargs["transfer_syntax"]]) is None:
            raise NoPresentationContextError("none")
        data = kwargs["dataset"]
        if not isinstance(data, bytes):
            data = b"".join([chunk async for chunk in data])
        self.stored.append((kwargs["sop_instance_uid"], kwargs["transfer_syntax"], data))
        return SubOperationResult(self.store_status)

    def statuses(self) -> list[int]:
        return [status for status, _, _ in self.responses]


def identifier(**keys: Any) -> bytes:
    ds = Dataset()
    for keyword, value in keys.items():
        setattr(ds, keyword, value)
    fp = DicomBytesIO()
    fp.is_little_endian = True
    fp.is_implicit_VR = True
    write_dataset(fp, ds)
    return bytes(fp.getvalue())


def message(service: str, dataset: bytes, **command: Any) -> Message:
    uid = Model.STUDY_ROOT.sop_class(service)
    field = {"find": 0x20, "move": 0x21, "get": 0x10}[service]
    return Message(
        {"CommandField": field, "MessageID": 7, "AffectedSOPClassUID": uid, **command},
        PresentationContext(1, uid, IMPLICIT),
        dataset,
    )


@dataclasses.dataclass
class Setup:
    index: SqliteIndex
    blobs: MemoryBlobStore
    services: Any
    sops: list[str]


@pytest.fixture
def setup(tmp_path: Path) -> Iterator[Setup]:
    index = SqliteIndex(tmp_path / "index.db", durable=False)
    index.migrate()
    blobs = MemoryBlobStore()
    instances = []
    for n in range(5):
        ds = make_dataset(study_uid=STUDY, instance_number=n + 1)
        data = to_bytes(ds)
        path = tmp_path / f"{n}.dcm"
        path.write_bytes(data)
        key = f"default/{ds.SOPInstanceUID}.dcm"
        blobs.put_file(key, path)
        instances.append(
            make_new_instance(
                study_uid=STUDY,
                series_uid=ds.SeriesInstanceUID,
                sop_uid=ds.SOPInstanceUID,
                blob_key=key,
                size=len(data),
                InstanceNumber=n + 1,
            )
        )
    index.begin(instances)
    index.commit(instances, [Event("test", "default", {})])
    index.put_remote_ae(RemoteAE("DEST", "127.0.0.1", 104))
    index.put_remote_ae(RemoteAE("ELSEWHERE", "127.0.0.1", 105, partition="other"))
    services = SimpleNamespace(
        qr=QueryRetrieveService(index, ae_title="HOUNSFIELD"),
        dicom_send=None,
        retrieve=SimpleNamespace(blobs=blobs),
        pixels=None,  # no transcoder: what the peer refuses as stored fails
    )
    try:
        yield Setup(index, blobs, services, [i.sop_uid for i in instances])
    finally:
        index.close()


def run(coro: Any) -> None:
    asyncio.run(coro)


# --- C-FIND ---------------------------------------------------------------------------------


def test_find_sends_one_pending_per_match_then_success(setup: Setup) -> None:
    assoc = FakeAssociation(setup.services)
    request = identifier(
        QueryRetrieveLevel="IMAGE",
        StudyInstanceUID=STUDY,
        SeriesInstanceUID="",
        SOPInstanceUID="",
    )
    # Series differ per instance in this set-up: hierarchical IMAGE needs one series.
    run(handle_find(assoc, message("find", request)))
    assert assoc.statuses() == [0xA900]
    assert assoc.responses[0][1]["OffendingElement"] == (0x0020000E,)
    assoc = FakeAssociation(setup.services)
    run(
        handle_find(
            assoc,
            message(
                "find",
                identifier(
                    QueryRetrieveLevel="SERIES", StudyInstanceUID=STUDY, SeriesInstanceUID=""
                ),
            ),
        )
    )
    assert assoc.statuses() == [0xFF00] * 5 + [0x0000]
    assert all("0020000E" in ds for _, _, ds in assoc.responses[:-1])


def test_find_honours_cancel_between_responses(setup: Setup) -> None:
    assoc = FakeAssociation(setup.services, cancel_after=2)
    request = identifier(QueryRetrieveLevel="SERIES", StudyInstanceUID=STUDY, SeriesInstanceUID="")
    run(handle_find(assoc, message("find", request)))
    assert assoc.statuses() == [0xFF00, 0xFF00, 0xFE00]


def test_find_with_an_unreadable_identifier_is_c000(setup: Setup) -> None:
    assoc = FakeAssociation(setup.services)
    run(handle_find(assoc, message("find", b"\x08\x00\x52\x00\xff\xff\xff\x7f")))
    assert assoc.statuses() == [0xC000]


# --- C-GET ----------------------------------------------------------------------------------


def get_request(**keys: Any) -> Message:
    return message("get", identifier(QueryRetrieveLevel="STUDY", StudyInstanceUID=STUDY, **keys))


def test_get_sends_every_instance_with_pending_counts(setup: Setup) -> None:
    assoc = FakeAssociation(setup.services)
    assoc.contexts[3] = PresentationContext(3, CT, EXPLICIT, scp_role=True)
    run(handle_get(assoc, get_request()))
    assert assoc.statuses() == [0xFF00] * 4 + [0x0000]
    assert [c["NumberOfRemainingSuboperations"] for _, c, _ in assoc.responses[:-1]] == [
        4,
        3,
        2,
        1,
    ]
    final = assoc.responses[-1][1]
    assert final == {
        "NumberOfCompletedSuboperations": 5,
        "NumberOfFailedSuboperations": 0,
        "NumberOfWarningSuboperations": 0,
    }
    sent = {sop: data for sop, _, data in assoc.stored}
    for sop in setup.sops:
        whole = b"".join(setup.blobs.iter_bytes(f"default/{sop}.dcm"))
        assert whole.endswith(sent[sop])  # the stored data set, byte for byte


def test_get_rewrites_to_the_other_little_endian_syntax(setup: Setup) -> None:
    assoc = FakeAssociation(setup.services)
    assoc.contexts[3] = PresentationContext(3, CT, IMPLICIT, scp_role=True)
    run(handle_get(assoc, get_request()))
    assert assoc.statuses()[-1] == 0x0000
    assert {syntax for _, syntax, _ in assoc.stored} == {IMPLICIT}


def test_get_without_a_storage_context_fails_every_sub_operation(setup: Setup) -> None:
    assoc = FakeAssociation(setup.services)
    run(handle_get(assoc, get_request()))
    status, counts, failed = assoc.responses[-1]
    assert status == 0xA702
    assert counts["NumberOfFailedSuboperations"] == 5
    assert sorted(failed["00080058"]["Value"]) == sorted(setup.sops)


def test_get_of_a_lost_object_fails_that_sub_operation_only(setup: Setup) -> None:
    setup.blobs.delete(f"default/{setup.sops[2]}.dcm")
    assoc = FakeAssociation(setup.services)
    assoc.contexts[3] = PresentationContext(3, CT, EXPLICIT, scp_role=True)
    run(handle_get(assoc, get_request()))
    status, counts, failed = assoc.responses[-1]
    assert status == 0xB000
    assert (counts["NumberOfCompletedSuboperations"], counts["NumberOfFailedSuboperations"]) == (
        4,
        1,
    )
    assert failed["00080058"]["Value"] == [setup.sops[2]]


def test_get_with_warnings_is_b000(setup: Setup) -> None:
    assoc = FakeAssociation(setup.services)
    assoc.contexts[3] = PresentationContext(3, CT, EXPLICIT, scp_role=True)
    assoc.store_status = 0xB007
    run(handle_get(assoc, get_request()))
    status, counts, _ = assoc.responses[-1]
    assert status == 0xB000
    assert counts["NumberOfWarningSuboperations"] == 5


def test_get_cancel_reports_remaining(setup: Setup) -> None:
    assoc = FakeAssociation(setup.services, cancel_after=2)
    assoc.contexts[3] = PresentationContext(3, CT, EXPLICIT, scp_role=True)
    run(handle_get(assoc, get_request()))
    status, counts, _ = assoc.responses[-1]
    assert status == 0xFE00
    # Two pending responses went out, then the C-CANCEL arrived: 2 done, 3 left.
    assert counts["NumberOfRemainingSuboperations"] == 3
    assert counts["NumberOfCompletedSuboperations"] == 2
    assert len(assoc.stored) == 2


def test_get_of_nothing_is_success_with_zero_counts(setup: Setup) -> None:
    assoc = FakeAssociation(setup.services)
    request = identifier(QueryRetrieveLevel="STUDY", StudyInstanceUID="1.2.3.4")
    run(handle_get(assoc, message("get", request)))
    assert assoc.responses == [
        (
            0x0000,
            {
                "NumberOfCompletedSuboperations": 0,
                "NumberOfFailedSuboperations": 0,
                "NumberOfWarningSuboperations": 0,
            },
            None,
        )
    ]


# --- C-MOVE ---------------------------------------------------------------------------------


class FakeSender:
    def __init__(self, outcomes: Callable[[int], SendOutcome]) -> None:
        self.outcomes = outcomes
        self.calls: list[tuple[str, tuple[str, int] | None]] = []

    def send_instances(
        self,
        remote: RemoteAE,
        instances: Sequence[StoredInstance],
        *,
        on_result: Callable[[SendResult], None] | None = None,
        cancelled: Callable[[], bool] | None = None,
        move_originator: tuple[str, int] | None = None,
    ) -> list[SendResult]:
        self.calls.append((remote.aet, move_originator))
        results = []
        for n, instance in enumerate(instances):
            if n:
                time.sleep(0.1)  # a sub-operation takes time; the loop answers meanwhile
            if cancelled is not None and cancelled():
                break
            result = SendResult(instance.sop_uid, self.outcomes(n))
            results.append(result)
            if on_result is not None:
                on_result(result)
        return results


def move(setup: Setup, destination: str, outcomes: Callable[[int], SendOutcome], **kw: Any) -> Any:
    sender = FakeSender(outcomes)
    setup.services.dicom_send = sender
    assoc = FakeAssociation(setup.services, **kw)
    request = identifier(QueryRetrieveLevel="STUDY", StudyInstanceUID=STUDY)
    run(handle_move(assoc, message("move", request, MoveDestination=destination)))
    return assoc, sender


def test_move_to_a_registered_destination(setup: Setup) -> None:
    assoc, sender = move(setup, "DEST", lambda n: SendOutcome.COMPLETED)
    assert sender.calls == [("DEST", ("SCU", 7))]
    assert assoc.statuses() == [0xFF00] * 4 + [0x0000]
    assert assoc.responses[-1][1]["NumberOfCompletedSuboperations"] == 5


@pytest.mark.parametrize("destination", ["NOWHERE", "ELSEWHERE"])
def test_move_to_an_unknown_or_foreign_destination_is_a801(setup: Setup, destination: str) -> None:
    assoc, sender = move(setup, destination, lambda n: SendOutcome.COMPLETED)
    assert assoc.statuses() == [0xA801]
    assert sender.calls == []


def test_move_with_some_failures_lists_them(setup: Setup) -> None:
    assoc, _ = move(setup, "DEST", lambda n: SendOutcome.FAILED if n % 2 else SendOutcome.COMPLETED)
    status, counts, failed = assoc.responses[-1]
    assert status == 0xB000
    assert (counts["NumberOfCompletedSuboperations"], counts["NumberOfFailedSuboperations"]) == (
        3,
        2,
    )
    assert len(failed["00080058"]["Value"]) == 2


def test_move_cancel(setup: Setup) -> None:
    assoc, _ = move(setup, "DEST", lambda n: SendOutcome.COMPLETED, cancel_after=1)
    status, counts, _ = assoc.responses[-1]
    assert status == 0xFE00
    assert counts["NumberOfRemainingSuboperations"] + counts["NumberOfCompletedSuboperations"] == 5
    assert counts["NumberOfRemainingSuboperations"] > 0


def test_move_refuses_a_bad_identifier_with_a900(setup: Setup) -> None:
    setup.services.dicom_send = FakeSender(lambda n: SendOutcome.COMPLETED)
    assoc = FakeAssociation(setup.services)
    bad = identifier(QueryRetrieveLevel="STUDY", StudyDate="20240101")
    run(handle_move(assoc, message("move", bad, MoveDestination="DEST")))
    assert assoc.statuses() == [0xA900]
