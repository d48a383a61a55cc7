"""Storage Commitment requests and reports (PS3.4 J.3.2, J.3.3)."""

from __future__ import annotations

import pytest

from hounsfield.domain.commitment import (
    CLASS_INSTANCE_CONFLICT,
    NO_SUCH_OBJECT_INSTANCE,
    PROCESSING_FAILURE,
    InvalidCommitmentRequestError,
    Reference,
    decide,
    event_information,
    parse_commitment_request,
)
from hounsfield.domain.model import DicomJson

CT, MR = "1.2.840.10008.5.1.4.1.1.2", "1.2.840.10008.5.1.4.1.1.4"


def request(transaction: str | None, refs: list[tuple[str, str]]) -> DicomJson:
    action: DicomJson = {}
    if transaction is not None:
        action["00081195"] = {"vr": "UI", "Value": [transaction]}
    action["00081199"] = {
        "vr": "SQ",
        "Value": [
            {"00081150": {"vr": "UI", "Value": [c]}, "00081155": {"vr": "UI", "Value": [s]}}
            for c, s in refs
        ],
    }
    return action


def test_parse_and_decide() -> None:
    parsed = parse_commitment_request(
        request("1.2.3", [(CT, "1.1"), (CT, "1.2"), (MR, "1.3"), (CT, "1.4")])
    )
    result = decide(parsed, {"1.1": CT, "1.3": CT, "1.4": CT}, ["1.1", "1.3"])
    assert result.committed == (Reference(CT, "1.1"),)
    assert result.failed == (
        (Reference(CT, "1.2"), NO_SUCH_OBJECT_INSTANCE),
        (Reference(MR, "1.3"), CLASS_INSTANCE_CONFLICT),
        (Reference(CT, "1.4"), PROCESSING_FAILURE),
    )
    assert result.event_type == 2
    report = event_information(result, "HOUNSFIELD")
    assert report["00081195"]["Value"] == ["1.2.3"]
    assert len(report["00081198"]["Value"]) == 3
    assert report["00081198"]["Value"][0]["00081197"]["Value"] == [0x0112]


def test_all_committed_is_event_type_1_without_failed_sequence() -> None:
    result = decide(parse_commitment_request(request("1.2", [(CT, "1.1")])), {"1.1": CT}, ["1.1"])
    assert result.event_type == 1
    assert "00081198" not in event_information(result, "AE")


@pytest.mark.parametrize(
    "action",
    [request(None, [(CT, "1.1")]), request("1.2", []), request("1.2", [(CT, "x")])],
)
def test_invalid_requests(action: DicomJson) -> None:
    with pytest.raises(InvalidCommitmentRequestError):
        parse_commitment_request(action)
