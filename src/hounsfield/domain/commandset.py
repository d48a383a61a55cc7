"""The DIMSE command set codec (PS3.7 6.3.1, Annex E): group 0000 in implicit VR little endian.

Command sets are always implicit VR little endian whatever the presentation context's transfer
syntax (PS3.7 6.3.1), hold only group 0000 elements, and start with Command Group Length
(0000,0000). They are tiny and decoded once per message, on the hot path of C-STORE, so this is
a table-driven struct codec rather than pydicom (a pydicom Dataset round trip costs ~100 µs).

Decoding is strict where a wrong value would mislead us (group other than 0000, a length that
runs past the end, a non-ascending tag) and lenient where the standard is (unknown or retired
group 0000 elements are skipped, PS3.7 E.1 lists which ones a message carries).
"""

from __future__ import annotations

import struct
from typing import Final, TypeAlias

#: A command element value, typed by its VR (PS3.7 E.1): UI/AE/LO → str, US/UL → int,
#: AT (Attribute Identifier List) → tuple of tags as ints.
CommandValue: TypeAlias = int | str | tuple[int, ...]
#: A command set (group 0000) keyed by keyword: "CommandField", "MessageID",
#: "AffectedSOPClassUID", "AffectedSOPInstanceUID", "Priority", "MoveDestination",
#: "MessageIDBeingRespondedTo", "Status", "ErrorComment", "NumberOfRemainingSuboperations",
#: "NumberOfCompletedSuboperations", "NumberOfFailedSuboperations",
#: "NumberOfWarningSuboperations", "MoveOriginatorApplicationEntityTitle",
#: "MoveOriginatorMessageID", "RequestedSOPClassUID", "RequestedSOPInstanceUID",
#: "EventTypeID", "ActionTypeID", "AttributeIdentifierList", "OffendingElement", "ErrorID"...
#: CommandGroupLength and CommandDataSetType are handled by the codec and never appear here.
CommandSet: TypeAlias = dict[str, CommandValue]

#: (element number within group 0000, keyword, VR), PS3.7 Tables E.1-1 and E.2-1.
_ELEMENTS: Final[tuple[tuple[int, str, str], ...]] = (
    (0x0000, "CommandGroupLength", "UL"),
    (0x0002, "AffectedSOPClassUID", "UI"),
    (0x0003, "RequestedSOPClassUID", "UI"),
    (0x0100, "CommandField", "US"),
    (0x0110, "MessageID", "US"),
    (0x0120, "MessageIDBeingRespondedTo", "US"),
    (0x0600, "MoveDestination", "AE"),
    (0x0700, "Priority", "US"),
    (0x0800, "CommandDataSetType", "US"),
    (0x0900, "Status", "US"),
    (0x0901, "OffendingElement", "AT"),
    (0x0902, "ErrorComment", "LO"),
    (0x0903, "ErrorID", "US"),
    (0x1000, "AffectedSOPInstanceUID", "UI"),
    (0x1001, "RequestedSOPInstanceUID", "UI"),
    (0x1002, "EventTypeID", "US"),
    (0x1005, "AttributeIdentifierList", "AT"),
    (0x1008, "ActionTypeID", "US"),
    (0x1020, "NumberOfRemainingSuboperations", "US"),
    (0x1021, "NumberOfCompletedSuboperations", "US"),
    (0x1022, "NumberOfFailedSuboperations", "US"),
    (0x1023, "NumberOfWarningSuboperations", "US"),
    (0x1030, "MoveOriginatorApplicationEntityTitle", "AE"),
    (0x1031, "MoveOriginatorMessageID", "US"),
)
_BY_ELEMENT: Final = {element: (keyword, vr) for element, keyword, vr in _ELEMENTS}
_BY_KEYWORD: Final = {keyword: (element, vr) for element, keyword, vr in _ELEMENTS}

#: Command Data Set Type (0000,0800): 0101H means "no data set"; any other value means one
#: follows (PS3.7 E.1). 0000H is what most implementations send.
NO_DATA_SET: Final = 0x0101
DATA_SET_PRESENT: Final = 0x0000
#: Longest value we accept for one command element: UIDs are 64, AE 16, LO 64; AT lists of
#: N-GET can be longer but never this long.
_MAX_VALUE = 64 * 1024

_HEADER = struct.Struct("<HHI")
_US = struct.Struct("<H")
_UL = struct.Struct("<I")


class CommandSetError(ValueError):
    """The bytes are not a valid command set (an A-ABORT or a C000-family failure follows)."""


def tag_of(keyword: str) -> int:
    """The (0000,xxxx) tag of a command keyword, as an int."""
    return _BY_KEYWORD[keyword][0]


def keyword_of(tag: int) -> str | None:
    if tag >> 16:
        return None
    entry = _BY_ELEMENT.get(tag & 0xFFFF)
    return entry[0] if entry else None


def decode_command(data: bytes | bytearray | memoryview) -> tuple[CommandSet, bool]:
    """Decode a command set; return it (keyed by keyword) and whether a data set follows."""
    view = memoryview(data)
    size = len(view)
    pos = 0
    last = -1
    command: CommandSet = {}
    has_dataset = False
    seen_type = False
    while pos < size:
        if size - pos < 8:
            raise CommandSetError(f"truncated element header at offset {pos}")
        group, element, length = _HEADER.unpack_from(view, pos)
        pos += 8
        if group != 0x0000:
            raise CommandSetError(f"element ({group:04X},{element:04X}) outside group 0000")
        if element <= last:
            raise CommandSetError(f"elements not in ascending order at (0000,{element:04X})")
        last = element
        if length > size - pos or length > _MAX_VALUE:
            raise CommandSetError(f"value of (0000,{element:04X}) runs past the command set")
        raw = view[pos : pos + length]
        pos += length
        entry = _BY_ELEMENT.get(element)
        if entry is None:
            continue  # retired or unknown group 0000 element: PS3.7 E.1 does not use it
        keyword, vr = entry
        if keyword == "CommandGroupLength":
            continue
        value = _decode_value(keyword, vr, raw)
        if keyword == "CommandDataSetType":
            has_dataset = value != NO_DATA_SET
            seen_type = True
            continue
        command[keyword] = value
    if "CommandField" not in command:
        raise CommandSetError("no Command Field (0000,0100)")
    if not seen_type:
        raise CommandSetError("no Command Data Set Type (0000,0800)")
    return command, has_dataset


def _decode_value(keyword: str, vr: str, raw: memoryview) -> CommandValue:
    if vr == "US":
        if len(raw) != 2:
            raise CommandSetError(f"{keyword} (US) has length {len(raw)}, expected 2")
        return int(_US.unpack(raw)[0])
    if vr == "UL":
        if len(raw) != 4:
            raise CommandSetError(f"{keyword} (UL) has length {len(raw)}, expected 4")
        return int(_UL.unpack(raw)[0])
    if vr == "AT":
        if len(raw) % 4:
            raise CommandSetError(f"{keyword} (AT) has length {len(raw)}, not a multiple of 4")
        return tuple((group << 16) | element for group, element in struct.iter_unpack("<HH", raw))
    text = bytes(raw).decode("ascii", errors="replace")
    # UI values are padded with NUL, AE and LO with spaces (PS3.5 6.2); AE values are also
    # insignificant-space trimmed on the left.
    return text.rstrip("\x00 ").lstrip(" ")


def _encode_value(keyword: str, vr: str, value: CommandValue) -> bytes:
    if vr == "US":
        return _US.pack(_as_int(keyword, value) & 0xFFFF)
    if vr == "UL":
        return _UL.pack(_as_int(keyword, value))
    if vr == "AT":
        if isinstance(value, int):
            value = (value,)
        if not isinstance(value, tuple):
            raise CommandSetError(f"{keyword} (AT) must be a tuple of tags, got {value!r}")
        return b"".join(struct.pack("<HH", tag >> 16, tag & 0xFFFF) for tag in value)
    if not isinstance(value, str):
        raise CommandSetError(f"{keyword} ({vr}) must be a string, got {value!r}")
    data = value.encode("ascii", errors="replace")
    if vr == "LO":
        data = data[:64]
    elif vr == "AE":
        data = data[:16]
    if len(data) % 2:
        data += b"\x00" if vr == "UI" else b" "
    return data


def _as_int(keyword: str, value: CommandValue) -> int:
    if isinstance(value, int):
        return value
    raise CommandSetError(f"{keyword} must be an integer, got {value!r}")


def encode_command(command: CommandSet, has_dataset: bool) -> bytes:
    """Encode a command set, adding Command Group Length and Command Data Set Type.

    Unknown keywords raise: a typo in a handler must not silently drop a status element.
    """
    elements: list[tuple[int, bytes]] = []
    for keyword, value in command.items():
        entry = _BY_KEYWORD.get(keyword)
        if entry is None:
            raise CommandSetError(f"unknown command element {keyword!r}")
        element, vr = entry
        if keyword in ("CommandGroupLength", "CommandDataSetType"):
            continue
        elements.append((element, _encode_value(keyword, vr, value)))
    elements.append((0x0800, _US.pack(DATA_SET_PRESENT if has_dataset else NO_DATA_SET)))
    elements.sort(key=lambda item: item[0])
    body = b"".join(_HEADER.pack(0, element, len(raw)) + raw for element, raw in elements)
    return _HEADER.pack(0, 0, 4) + _UL.pack(len(body)) + body
