"""SOP Class Extended Negotiation (PS3.7 D.3.3.5): what the acceptor grants, how the sub-items
travel in the A-ASSOCIATE PDUs, and combined date-time matching (PS3.4 C.2.2.2.5.1) that the
C-FIND option switches on."""

from __future__ import annotations

import struct

import pytest
from pynetdicom.pdu import A_ASSOCIATE_AC

from hounsfield.domain.cfind import combine_date_time, parse_find
from hounsfield.domain.matching import matches
from hounsfield.domain.pdu import decode_associate_rq, encode_associate_ac
from hounsfield.domain.qrmodel import Model
from hounsfield.domain.query import DateTimeRange, MatchKey, Range, SingleValue
from hounsfield.frontends.dimse.extended import STORAGE_ANSWER, FindOptions, negotiate
from hounsfield.frontends.dimse.negotiation import storage_sop_classes
from tests.interop.dimse_support import associate_rq

FIND = Model.STUDY_ROOT.sop_class("find")
MOVE = Model.STUDY_ROOT.sop_class("move")
GET = Model.PATIENT_ROOT.sop_class("get")
CT = "1.2.840.10008.5.1.4.1.1.2"
WORKLIST = "1.2.840.10008.5.1.4.31"


def sub_item(uid: str, information: bytes) -> bytes:
    raw = uid.encode()
    body = struct.pack(">H", len(raw)) + raw + information
    return struct.pack(">BBH", 0x56, 0, len(body)) + body


@pytest.mark.parametrize(
    ("uid", "proposed", "answered"),
    [
        (FIND, bytes(7 * [1]), bytes((1, 1, 1, 0, 0, 0, 0))),  # every option asked for
        (FIND, bytes((0, 1)), bytes((0, 1))),  # only what was asked, as long as asked
        (FIND, bytes((1,)), bytes((1,))),
        (FIND, bytes((0, 0, 0, 1)), bytes((0, 0, 0, 0))),  # timezone adjustment: not offered
        (FIND, bytes(9 * [1]), bytes((1, 1, 1, 0, 0, 0, 0))),  # unknown bytes: not answered
        (MOVE, bytes((1, 1)), bytes((1, 0))),  # relational retrieval yes, conversion no
        (GET, bytes((0,)), bytes((0,))),
        (CT, bytes((3, 0, 0, 0, 0, 0)), STORAGE_ANSWER),
    ],
)
def test_each_option_is_granted_only_when_asked_and_implemented(
    uid: str, proposed: bytes, answered: bytes
) -> None:
    assert negotiate({uid: proposed}, {uid}, storage_sop_classes()) == {uid: answered}


def test_sub_items_without_an_accepted_context_or_format_are_not_answered() -> None:
    proposed = {FIND: b"\x01", CT: b"\x03", WORKLIST: b"\x01\x01", MOVE: b""}
    assert negotiate(proposed, {CT, WORKLIST, MOVE}, storage_sop_classes()) == {CT: STORAGE_ANSWER}


def test_find_options_read_the_answer() -> None:
    assert FindOptions.from_answer(None) == FindOptions()
    assert FindOptions.from_answer(b"\x01") == FindOptions(relational=True)
    assert FindOptions.from_answer(b"\x00\x01\x01\x00") == FindOptions(
        combined_datetime=True, fuzzy=True
    )


def test_sub_items_travel_in_the_pdus() -> None:
    pdu = associate_rq(
        "HOUNSFIELD",
        [(1, FIND, ["1.2.840.10008.1.2"])],
        user_items=sub_item(FIND, b"\x01\x01") + sub_item(CT, b"\x03\x00\x00\x00\x00\x00"),
    )
    request = decode_associate_rq(pdu[6:])
    assert request.extended == {FIND: b"\x01\x01", CT: b"\x03\x00\x00\x00\x00\x00"}
    ac = encode_associate_ac(
        request,
        [],
        max_length=16384,
        implementation_class_uid="1.2.3",
        implementation_version_name="TEST",
        roles=[],
        extended={FIND: b"\x01\x00"},
    )
    decoded = A_ASSOCIATE_AC()
    decoded.decode(ac)
    items = [
        (str(i.sop_class_uid), i.service_class_application_information)
        for i in decoded.user_information.user_data
        if type(i).__name__ == "SOPClassExtendedNegotiationSubItem"
    ]
    assert items == [(FIND, b"\x01\x00")]


def test_a_truncated_sub_item_is_an_invalid_pdu() -> None:
    from hounsfield.domain.pdu import PduError

    bad = struct.pack(">BBH", 0x56, 0, 4) + struct.pack(">H", 40) + b"12"
    with pytest.raises(PduError):
        decode_associate_rq(
            associate_rq("HOUNSFIELD", [(1, FIND, ["1.2.840.10008.1.2"])], user_items=bad)[6:]
        )


def study(date: str, time: str | None) -> dict[str, object]:
    entity: dict[str, object] = {"00080020": {"vr": "DA", "Value": [date]}}
    if time is not None:
        entity["00080030"] = {"vr": "TM", "Value": [time]}
    return entity


def combined(date: str, time: str) -> list[MatchKey]:
    keys = [
        MatchKey("00080020", "DA", _range(date)),
        MatchKey("00080030", "TM", _range(time)),
    ]
    return combine_date_time(keys)


def _range(text: str) -> Range | SingleValue:
    if "-" not in text:
        return SingleValue(text)
    lower, upper = text.split("-")
    return Range(lower or None, upper or None)


def test_the_standard_example_is_one_range_from_the_first_day_to_the_last() -> None:
    """C.2.2.2.5.1: 20060705-20060707 with 1000-1800 is 10:00 on the 5th to 18:00 on the 7th."""
    keys = combined("20060705-20060707", "1000-1800")
    assert keys == [
        MatchKey(
            "00080020",
            "DA",
            DateTimeRange(
                "00080030", Range("20060705", "20060707"), "200607051000", "200607071800"
            ),
        )
    ]
    inside = [("20060705", "1000"), ("20060706", "0100"), ("20060706", "2300")]
    assert all(matches(keys, study(d, t)) for d, t in inside)
    outside = [("20060705", "0959"), ("20060707", "1801"), ("20060704", "1200")]
    assert not any(matches(keys, study(d, t)) for d, t in outside)
    # a date without a time counts as the start of its day
    assert matches(keys, study("20060707", None))
    assert not matches(keys, study("20060705", None))
    # without the option, 01:00 on the 6th is outside 10:00-18:00
    separate = [
        MatchKey("00080020", "DA", _range("20060705-20060707")),
        MatchKey("00080030", "TM", _range("1000-1800")),
    ]
    assert not matches(separate, study("20060706", "0100"))


def test_open_ends_and_single_values() -> None:
    after = combined("20060705-", "1000-")
    assert matches(after, study("20300101", "0000"))
    assert not matches(after, study("20060705", "0900"))
    before = combined("-20060707", "-1800")
    assert matches(before, study("19990101", "2300"))
    assert not matches(before, study("20060707", "1900"))
    one_day = combined("20060705", "1000-1800")
    assert matches(one_day, study("20060705", "1200"))
    assert not matches(one_day, study("20060705", "1900"))
    # legacy stored forms are read too
    assert matches(one_day, study("2006.07.05", "12:00:00"))


def test_a_time_key_alone_or_with_a_universal_date_is_matched_on_its_own() -> None:
    keys = [MatchKey("00080030", "TM", Range("1000", "1800"))]
    assert combine_date_time(keys) == keys


def test_parse_find_applies_the_options() -> None:
    identifier = {
        "00080052": {"vr": "CS", "Value": ["STUDY"]},
        "00080020": {"vr": "DA", "Value": ["20060705-20060707"]},
        "00080030": {"vr": "TM", "Value": ["1000-1800"]},
        "00100010": {"vr": "PN", "Value": [{"Alphabetic": "doe jo"}]},
    }
    plain = parse_find(identifier, Model.STUDY_ROOT)
    assert len(plain.query.keys) == 3 and not plain.query.fuzzy
    both = parse_find(identifier, Model.STUDY_ROOT, combined_datetime=True, fuzzy=True)
    assert both.query.fuzzy
    assert [k.tag for k in both.query.keys] == ["00080020", "00100010"]
    assert isinstance(both.query.keys[0].matcher, DateTimeRange)
    assert "00080030" in {r.tag for r in both.requested}  # still returned
