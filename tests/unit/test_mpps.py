"""N-CREATE / N-SET rules of the Modality Performed Procedure Step (PS3.4 F.7.2)."""

from __future__ import annotations

import pytest

from hounsfield.adapters.worklist.sqlite import SqliteWorklistStore
from hounsfield.domain.model import DicomJson
from hounsfield.domain.mpps import MppsError
from hounsfield.services.mpps import MppsService


def status(value: str | None) -> DicomJson:
    return {} if value is None else {"00400252": {"vr": "CS", "Value": [value]}}


def test_lifecycle() -> None:
    service = MppsService(SqliteWorklistStore(":memory:", table="mpps"))
    service.create("default", "1.2", status("IN PROGRESS"))
    with pytest.raises(MppsError) as dup:
        service.create("default", "1.2", status("IN PROGRESS"))
    assert dup.value.status == 0x0111
    updated = service.update("default", "1.2", {"00400254": {"vr": "LO", "Value": ["x"]}})
    assert updated["00400254"]["Value"] == ["x"]
    service.update("default", "1.2", status("DISCONTINUED"))
    with pytest.raises(MppsError) as late:
        service.update("default", "1.2", status("IN PROGRESS"))
    assert (late.value.status, late.value.error_id) == (0x0110, 0xA710)
    with pytest.raises(MppsError) as unknown:
        service.update("other", "1.2", status("COMPLETED"))
    assert unknown.value.status == 0x0112


@pytest.mark.parametrize(("value", "code"), [(None, 0x0120), ("COMPLETED", 0x0106)])
def test_create_needs_in_progress(value: str | None, code: int) -> None:
    with pytest.raises(MppsError) as caught:
        MppsService(SqliteWorklistStore(":memory:", table="mpps")).create("d", "1", status(value))
    assert caught.value.status == code


def test_set_refuses_an_unknown_status() -> None:
    service = MppsService(SqliteWorklistStore(":memory:", table="mpps"))
    service.create("default", "1.2", status("IN PROGRESS"))
    with pytest.raises(MppsError) as caught:
        service.update("default", "1.2", status("DONE"))
    assert caught.value.status == 0x0106


def test_unknown_table_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown worklist table"):
        SqliteWorklistStore(":memory:", table="x; DROP TABLE y")
