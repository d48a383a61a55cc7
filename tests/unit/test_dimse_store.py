"""C-STORE receiving (frontends/dimse/store.py): the PS3.10 header we write, the store lane,
back-pressure, and a failing disk (A700, nothing left behind)."""

from __future__ import annotations

import asyncio
import io
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pydicom
import pytest

from hounsfield.domain.implementation import IMPLEMENTATION_CLASS_UID, IMPLEMENTATION_VERSION_NAME
from hounsfield.domain.status import FailureReason
from hounsfield.frontends.dimse import store
from hounsfield.frontends.dimse.api import Message, PresentationContext
from hounsfield.frontends.dimse.store import PREAMBLE, StoreReceiver, check_request, file_meta
from hounsfield.services.staging import StagingArea, StagingWriter

CT = "1.2.840.10008.5.1.4.1.1.2"
CTX = PresentationContext(1, CT, "1.2.840.10008.1.2.4.90")


def message(sop_class: str = CT, sop: str = "1.2.3.4.5") -> Message:
    return Message(
        {"CommandField": 1, "MessageID": 1, "AffectedSOPClassUID": sop_class,
         "AffectedSOPInstanceUID": sop},
        CTX,
    )  # fmt: skip


def test_file_meta_is_what_pydicom_reads() -> None:
    header = PREAMBLE + file_meta(CT, "1.2.3.45", "1.2.840.10008.1.2.4.90", "MODALITY1")
    ds = pydicom.dcmread(io.BytesIO(header + b"\x08\x00\x16\x00UI\x00\x00"), force=False)
    meta = ds.file_meta
    assert meta.MediaStorageSOPClassUID == CT
    assert meta.MediaStorageSOPInstanceUID == "1.2.3.45"
    assert meta.TransferSyntaxUID == "1.2.840.10008.1.2.4.90"
    assert meta.ImplementationClassUID == IMPLEMENTATION_CLASS_UID
    assert meta.ImplementationVersionName == IMPLEMENTATION_VERSION_NAME
    assert meta.SourceApplicationEntityTitle.strip() == "MODALITY1"
    assert meta.FileMetaInformationVersion == b"\x00\x01"
    assert meta.FileMetaInformationGroupLength == len(header) - 132 - 12


def test_requests_refused_before_their_data_set() -> None:
    storage = frozenset({CT})
    assert check_request(message(), storage) is None
    refused = check_request(message("1.2.840.10008.1.1"), storage)
    assert refused is not None and refused.status == 0x0122
    other = check_request(
        message("1.2.840.10008.5.1.4.1.1.4"), frozenset({CT, "1.2.840.10008.5.1.4.1.1.4"})
    )
    assert other is not None and other.status == 0xA900  # not the context's abstract syntax
    no_uid = check_request(message(sop=""), storage)
    assert no_uid is not None and no_uid.status == 0xA900


class FailingWriter(StagingWriter):
    def write(self, chunk: bytes | memoryview) -> None:
        if self.size > 200:
            raise OSError(28, "No space left on device")
        super().write(chunk)


class FailingStaging(StagingArea):
    def writer(self) -> StagingWriter:
        return FailingWriter(self.root / "failing.part")


def test_a_failing_disk_is_a700_and_leaves_nothing(tmp_path: Path) -> None:
    staging = FailingStaging(tmp_path / "staging")
    with ThreadPoolExecutor(1) as lane:
        receiver = StoreReceiver(staging, message(), "SCU", lane)
        for _ in range(5):
            receiver.write(memoryview(bytes(100)))
        outcome = lane.submit(receiver.finish_and_ingest, None, "default").result()  # type: ignore[arg-type]
    assert outcome.status == FailureReason.OUT_OF_RESOURCES
    assert list((tmp_path / "staging").iterdir()) == []


def test_discard_after_queued_writes_and_back_pressure(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(store, "MAX_QUEUED_FRAGMENTS", 2)
    staging = StagingArea(tmp_path / "staging")
    gate = asyncio.Event()

    async def go() -> None:
        with ThreadPoolExecutor(1) as lane:
            blocker: Any = lane.submit(
                lambda: asyncio.run_coroutine_threadsafe(gate.wait(), loop).result()
            )
            receiver = StoreReceiver(staging, message(), "SCU", lane)
            for _ in range(4):
                receiver.write(memoryview(bytes(1000)))
            assert receiver.backlog  # the lane is blocked: 5 jobs queued
            drained = asyncio.ensure_future(receiver.drain())
            await asyncio.sleep(0.05)
            assert not drained.done()
            gate.set()
            await drained
            blocker.result()
            receiver.discard()

    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(go())
    finally:
        loop.close()
    assert list((tmp_path / "staging").iterdir()) == []
