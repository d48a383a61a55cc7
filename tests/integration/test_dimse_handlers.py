"""The handler contract of frontends/dimse/api.py, in process: a DimseServer with test
handlers on a real archive, and pynetdicom as the peer (run in worker threads so the server's
event loop keeps running)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from pydicom.dataset import Dataset
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian
from pynetdicom import AE, build_role, evt
from pynetdicom.sop_class import (
    CTImageStorage,
    StudyRootQueryRetrieveInformationModelFind,
    StudyRootQueryRetrieveInformationModelGet,
)

from hounsfield.bootstrap import Archive, open_archive
from hounsfield.config import load_settings
from hounsfield.domain.dimse_dataset import decode_identifier_json
from hounsfield.frontends.dimse.api import (
    Association,
    CommandField,
    HandlerRegistry,
    Message,
    NoPresentationContextError,
    Status,
)
from hounsfield.frontends.dimse.server import DimseOptions, DimseServer, default_registry
from tests.builders import make_dataset, to_bytes
from tests.interop.dimse_support import dataset_part

FIND = StudyRootQueryRetrieveInformationModelFind
GET = StudyRootQueryRetrieveInformationModelGet


class LoopThread:
    """An event loop in a thread, running the server; tests talk to it with pynetdicom."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coro: Awaitable[Any]) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(30)  # type: ignore[arg-type]

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


@pytest.fixture
def archive(tmp_path: Path) -> Iterator[Archive]:
    settings = load_settings(
        None, {"HOUNSFIELD_DATA_DIR": str(tmp_path / "data"), "HOUNSFIELD_DURABLE": "false"}
    )
    opened = open_archive(settings)
    try:
        yield opened
    finally:
        opened.close()


@pytest.fixture
def serve(archive: Archive) -> Iterator[Callable[[HandlerRegistry], int]]:
    loop = LoopThread()
    servers: list[DimseServer] = []

    def start(registry: HandlerRegistry) -> int:
        server = DimseServer(archive.services, DimseOptions(ae_title="HANDLERS"), registry)
        loop.run(server.start("127.0.0.1", 0))
        servers.append(server)
        return server.port

    try:
        yield start
    finally:
        for server in servers:
            loop.run(server.close())
        loop.stop()


def associate(port: int, *contexts: str, roles: list[Any] | None = None) -> Any:
    ae = AE(ae_title="PEER")
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = 20
    for uid in contexts:
        ae.add_requested_context(uid, [ExplicitVRLittleEndian, ImplicitVRLittleEndian])
    assoc = ae.associate("127.0.0.1", port, ae_title="HANDLERS", ext_neg=roles or [])
    assert assoc.is_established
    return assoc


def find_query() -> Dataset:
    query = Dataset()
    query.QueryRetrieveLevel = "STUDY"
    query.StudyInstanceUID = ""
    return query


def test_pending_responses_identifiers_and_cancel(serve: Callable[[HandlerRegistry], int]) -> None:
    seen: dict[str, Any] = {}

    async def find(assoc: Association, message: Message) -> None:
        assert message.dataset is not None
        seen["query"] = decode_identifier_json(message.dataset, message.transfer_syntax)
        seen["calling"], seen["partition"] = assoc.calling_ae, assoc.partition
        for n in range(200):
            if assoc.is_cancelled(message.message_id):
                await assoc.send_response(message, Status.CANCEL)
                return
            identifier = {"0020000D": {"vr": "UI", "Value": [f"1.2.3.{n}"]}}
            await assoc.send_response(message, Status.PENDING, dataset=identifier)
            await asyncio.sleep(0.01)
        await assoc.send_response(message, Status.SUCCESS)

    registry = default_registry()
    registry.register_handler(CommandField.C_FIND_RQ, [FIND], find)
    assoc = associate(serve(registry), FIND)
    try:
        statuses = []
        for n, (status, identifier) in enumerate(assoc.send_c_find(find_query(), FIND)):
            statuses.append(int(status.Status))
            if identifier is not None:
                assert identifier.StudyInstanceUID == f"1.2.3.{n}"
            if n == 2:
                assoc.send_c_cancel(1, query_model=FIND)
        assert statuses[:3] == [0xFF00] * 3
        assert statuses[-1] == 0xFE00
        assert len(statuses) < 50
    finally:
        assoc.release()
    assert seen["query"]["00080052"]["Value"] == ["STUDY"]
    assert (seen["calling"], seen["partition"]) == ("PEER", "default")


def test_a_failing_handler_answers_0110_and_unregistered_commands(
    serve: Callable[[HandlerRegistry], int],
) -> None:
    async def broken(assoc: Association, message: Message) -> None:
        raise RuntimeError("boom")

    registry = default_registry()
    registry.register_handler(CommandField.C_FIND_RQ, [FIND], broken)
    assoc = associate(serve(registry), FIND, GET)
    try:
        (status, _), *_ = list(assoc.send_c_find(find_query(), FIND))
        assert int(status.Status) == 0x0110
        assert "internal error" in status.ErrorComment
        # a second request with the same Message ID is answered again (IDs are reused)
        (status, _), *_ = list(assoc.send_c_find(find_query(), FIND))
        assert int(status.Status) == 0x0110
    finally:
        assoc.release()


def test_c_store_sub_operations_on_the_same_association(
    serve: Callable[[HandlerRegistry], int],
) -> None:
    """A C-GET-like handler sends C-STORE-RQs back over the contexts for which the requestor
    took the SCP role (PS3.7 D.3.3.4), and reads each C-STORE-RSP."""
    ds = make_dataset()
    data = dataset_part(to_bytes(ds))
    results: list[Any] = []

    async def get(assoc: Association, message: Message) -> None:
        with pytest.raises(NoPresentationContextError):
            await assoc.send_c_store_request(
                sop_class_uid=CTImageStorage,
                sop_instance_uid=ds.SOPInstanceUID,
                transfer_syntax="1.2.840.10008.1.2.4.50",  # not negotiated
                dataset=data,
            )

        async def chunks() -> Any:
            for start in range(0, len(data), 1000):
                yield data[start : start + 1000]

        result = await assoc.send_c_store_request(
            sop_class_uid=CTImageStorage,
            sop_instance_uid=ds.SOPInstanceUID,
            transfer_syntax=ExplicitVRLittleEndian,
            dataset=chunks(),
            move_originator_ae="ORIGIN",
            move_originator_message_id=7,
        )
        results.append(result)
        await assoc.send_response(
            message,
            Status.SUCCESS,
            command_extra={
                "NumberOfRemainingSuboperations": 0,
                "NumberOfCompletedSuboperations": 1,
                "NumberOfFailedSuboperations": 0,
                "NumberOfWarningSuboperations": 0,
            },
        )

    received: list[Dataset] = []

    def on_store(event: Any) -> int:
        received.append(event.dataset)
        assert event.request.MoveOriginatorApplicationEntityTitle == "ORIGIN"
        return 0xB000  # a warning, to see the status travel back

    registry = default_registry()
    registry.register_handler(CommandField.C_GET_RQ, [GET], get)
    ae = AE(ae_title="PEER")
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = 20
    ae.add_requested_context(GET)
    ae.add_requested_context(CTImageStorage, [ExplicitVRLittleEndian])
    assoc = ae.associate(
        "127.0.0.1",
        serve(registry),
        ae_title="HANDLERS",
        ext_neg=[build_role(CTImageStorage, scp_role=True)],
        evt_handlers=[(evt.EVT_C_STORE, on_store)],
    )
    assert assoc.is_established
    try:
        query = Dataset()
        query.QueryRetrieveLevel = "STUDY"
        query.StudyInstanceUID = ds.StudyInstanceUID
        responses = list(assoc.send_c_get(query, GET))
    finally:
        assoc.release()
    assert int(responses[-1][0].Status) == 0
    assert responses[-1][0].NumberOfCompletedSuboperations == 1
    assert [r.status for r in results] == [0xB000]
    assert received[0].SOPInstanceUID == ds.SOPInstanceUID
