"""The DIMSE command set codec (PS3.7 6.3.1, Annex E), cross-checked with pydicom/pynetdicom."""

from __future__ import annotations

import contextlib
import struct
from io import BytesIO

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydicom.dataset import Dataset
from pydicom.filereader import read_dataset
from pynetdicom.dimse_messages import C_STORE_RQ
from pynetdicom.dimse_primitives import C_STORE

from hounsfield.domain.commandset import (
    NO_DATA_SET,
    CommandSetError,
    decode_command,
    encode_command,
    keyword_of,
    tag_of,
)
from hounsfield.frontends.dimse.api import CommandField, Message, PresentationContext

CTX = PresentationContext(1, "1.2.840.10008.5.1.4.1.1.2", "1.2.840.10008.1.2")


def test_encode_is_what_pydicom_reads() -> None:
    data = encode_command(
        {
            "CommandField": 0x8001,
            "MessageIDBeingRespondedTo": 7,
            "Status": 0xA900,
            "AffectedSOPClassUID": "1.2.840.10008.5.1.4.1.1.2",
            "AffectedSOPInstanceUID": "1.2.3.4",
            "ErrorComment": "odd",
            "OffendingElement": (0x00080018,),
        },
        has_dataset=False,
    )
    ds = read_dataset(BytesIO(data), True, True)
    assert ds.CommandGroupLength == len(data) - 12
    assert ds.CommandField == 0x8001
    assert ds.MessageIDBeingRespondedTo == 7
    assert ds.Status == 0xA900
    assert ds.CommandDataSetType == NO_DATA_SET
    assert ds.AffectedSOPInstanceUID == "1.2.3.4"
    assert ds.ErrorComment.strip() == "odd"
    assert ds.OffendingElement == 0x00080018
    tags = [elem.tag for elem in ds]
    assert tags == sorted(tags)  # PS3.5 7.1: ascending order
    assert len(data) % 2 == 0


def test_decode_a_pynetdicom_c_store_rq() -> None:
    primitive = C_STORE()
    primitive.MessageID = 12
    primitive.AffectedSOPClassUID = "1.2.840.10008.5.1.4.1.1.4"
    primitive.AffectedSOPInstanceUID = "1.2.3.4.5"
    primitive.Priority = 2
    primitive.MoveOriginatorApplicationEntityTitle = "MOVER"
    primitive.MoveOriginatorMessageID = 3
    primitive.DataSet = BytesIO(b"\x08\x00\x18\x00\x00\x00\x00\x00")
    message = C_STORE_RQ()
    message.primitive_to_message(primitive)
    raw = b"".join(
        bytes(pdv.presentation_data_value_list[0][1])[1:]
        for pdv in message.encode_msg(1, 16382)
        if pdv.presentation_data_value_list[0][1][0] & 1
    )
    command, has_dataset = decode_command(raw)
    assert has_dataset
    assert command["CommandField"] == CommandField.C_STORE_RQ
    assert command["MessageID"] == 12
    assert command["AffectedSOPInstanceUID"] == "1.2.3.4.5"
    assert command["Priority"] == 2
    assert command["MoveOriginatorApplicationEntityTitle"] == "MOVER"
    assert command["MoveOriginatorMessageID"] == 3
    msg = Message(command, CTX)
    assert msg.command_field is CommandField.C_STORE_RQ
    assert msg.message_id == 12
    assert msg.affected_sop_class_uid == "1.2.840.10008.5.1.4.1.1.4"
    assert msg.move_destination == ""


def test_round_trip_every_keyword() -> None:
    command = {
        "CommandField": 0x0021,
        "MessageID": 65535,
        "AffectedSOPClassUID": "1.2.840.10008.5.1.4.1.2.2.2",
        "Priority": 1,
        "MoveDestination": "STORESCP",
        "NumberOfRemainingSuboperations": 3,
        "NumberOfCompletedSuboperations": 4,
        "NumberOfFailedSuboperations": 5,
        "NumberOfWarningSuboperations": 6,
        "AttributeIdentifierList": (0x00100010, 0x00100020),
        "EventTypeID": 1,
        "ActionTypeID": 1,
        "RequestedSOPClassUID": "1.2.840.10008.1.20.1",
        "RequestedSOPInstanceUID": "1.2.840.10008.1.20.1.1",
        "ErrorID": 9,
    }
    decoded, has_dataset = decode_command(encode_command(command, has_dataset=True))
    assert has_dataset
    assert decoded == command


@given(
    st.sampled_from([0x0001, 0x8001, 0x0020, 0x8020, 0x0030, 0x8030, 0x0FFF]),
    st.integers(0, 0xFFFF),
    st.from_regex(r"[1-9][0-9]{0,10}(\.[1-9][0-9]{0,8}){0,5}", fullmatch=True),
    st.booleans(),
)
def test_round_trip_property(cf: int, mid: int, uid: str, has_ds: bool) -> None:
    command = {"CommandField": cf, "MessageID": mid, "AffectedSOPClassUID": uid}
    assert decode_command(encode_command(command, has_ds)) == (command, has_ds)


@given(st.binary(max_size=200))
def test_decode_garbage_raises_only_command_set_error(data: bytes) -> None:
    with contextlib.suppress(CommandSetError):
        decode_command(data)


def _element(element: int, value: bytes) -> bytes:
    return struct.pack("<HHI", 0, element, len(value)) + value


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (_element(0x0100, b"\x01\x00") + _element(0x0800, b"\x01\x01")[:-1], "truncated|past"),
        (_element(0x0800, b"\x01\x01") + _element(0x0100, b"\x01\x00"), "ascending"),
        (struct.pack("<HHI", 8, 0x18, 0), "outside group 0000"),
        (_element(0x0800, b"\x01\x01"), "Command Field"),
        (_element(0x0100, b"\x01\x00"), "Data Set Type"),
        (_element(0x0100, b"\x01\x00\x00\x00") + _element(0x0800, b"\x01\x01"), "length 4"),
    ],
)
def test_decode_rejects_malformed(data: bytes, message: str) -> None:
    with pytest.raises(CommandSetError, match=message):
        decode_command(data)


def test_unknown_elements_are_skipped_and_unknown_keywords_refused() -> None:
    data = (
        _element(0x0100, b"\x30\x00")
        + _element(0x0200, b"RETIRED ")  # (0000,0200) Initiator, retired
        + _element(0x0800, b"\x01\x01")
    )
    assert decode_command(data) == ({"CommandField": 0x30}, False)
    with pytest.raises(CommandSetError, match="Typo"):
        encode_command({"CommandField": 1, "Typo": 1}, False)
    assert keyword_of(tag_of("MoveDestination")) == "MoveDestination"
    assert keyword_of(0x00080018) is None


def test_values_are_padded_and_trimmed() -> None:
    data = encode_command(
        {"CommandField": 0x8030, "AffectedSOPClassUID": "1.2.3", "ErrorComment": "x" * 80},
        False,
    )
    ds = read_dataset(BytesIO(data), True, True)
    assert isinstance(ds, Dataset)
    assert ds["AffectedSOPClassUID"].value == "1.2.3"
    assert len(ds.ErrorComment) == 64  # LO is at most 64 characters (PS3.5 6.2)
    decoded, _ = decode_command(data)
    assert decoded["AffectedSOPClassUID"] == "1.2.3"
