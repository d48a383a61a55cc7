"""Transfer syntax negotiation for WADO-RS instances and frames (PS3.18 8.7.3, 8.7.8).

The stored bytes are served untouched whenever the Accept header allows them: no
`transfer-syntax` parameter, `*`, or the stored syntax itself (the archive's choice for the
default of application/dicom, documented in docs/conformance.md). A request for another
syntax is honoured by transcoding when the pixel services can write it for every instance
asked for, and otherwise the next acceptable media range is tried; when none is left the
answer is 406 (PS3.18 8.7.8), never a silently different representation.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from hounsfield.frontends.dicomweb.transfer import (
    EXPLICIT_VR_LE,
    NATIVE_LITTLE_ENDIAN,
    frame_media_type,
    is_native,
)
from hounsfield.frontends.http.core import HttpError
from hounsfield.frontends.http.mediatypes import MediaRange, parse_accept
from hounsfield.ports.index import StoredInstance
from hounsfield.services.pixels.service import PixelService
from hounsfield.services.pixels.syntaxes import DEFAULT_FOR_MEDIA_TYPE


class Transcoder(Protocol):
    """What frame negotiation asks of the pixel service (PixelService is one)."""

    def can_transcode(self, instance: StoredInstance, target: str) -> bool: ...


DICOM = "application/dicom"
OCTETS = "application/octet-stream"
_WILDCARD_PARTS = ("*/*", "application/*")


@dataclass(frozen=True, slots=True)
class InstanceChoice:
    multipart: bool
    target: str | None  # None: each instance in its stored syntax


def _syntax_for(
    wanted: str | None, instances: list[StoredInstance], pixels: PixelService | None
) -> tuple[bool, str | None]:
    """(acceptable, target) for one requested transfer-syntax parameter value."""
    if wanted is None or wanted == "*":
        return True, None
    if all(i.transfer_syntax_uid == wanted for i in instances):
        return True, None
    if pixels is None:
        return False, None
    if all(pixels.can_transcode(i, wanted) for i in instances):
        return True, wanted
    return False, None


def choose_instances(
    accept: str | None, instances: list[StoredInstance], pixels: PixelService | None
) -> InstanceChoice:
    """PS3.18 8.7.3.3.1 and 8.7.8 for Retrieve Instance/Series/Study (blocking: it may read
    instance headers to know whether they can be transcoded)."""
    for media in parse_accept(accept):
        if media.type in ("*/*", "multipart/*"):
            return InstanceChoice(True, None)
        single = media.type == DICOM
        if media.type == "multipart/related":
            if media.params.get("type", DICOM) not in (DICOM, *_WILDCARD_PARTS):
                continue
        elif not (single and len(instances) == 1):
            continue
        ok, target = _syntax_for(media.params.get("transfer-syntax"), instances, pixels)
        if ok:
            return InstanceChoice(not single, target)
    syntaxes = sorted({i.transfer_syntax_uid for i in instances})
    raise HttpError(
        406,
        "no acceptable representation: the objects are stored as "
        f"{', '.join(syntaxes)} and cannot be written in the transfer syntaxes requested",
    )


@dataclass(frozen=True, slots=True)
class FrameChoice:
    content_type: str  # of each part
    syntax: str  # the transfer syntax of the frames sent
    transcode: bool  # False: the stored bytes as they are


def _stored_form(stored: str, instance: StoredInstance) -> FrameChoice:
    """Frames as stored; native frames are always little endian octets (PS3.18 8.7.3.3.2),
    so big endian ones are converted, and so are deflated ones (PS3.5 A.5), whose frames
    have no byte offsets in the stored object."""
    if is_native(stored):
        if stored in NATIVE_LITTLE_ENDIAN and instance.pixel is not None:
            return FrameChoice(f"{OCTETS}; transfer-syntax={EXPLICIT_VR_LE}", EXPLICIT_VR_LE, False)
        return FrameChoice(f"{OCTETS}; transfer-syntax={EXPLICIT_VR_LE}", EXPLICIT_VR_LE, True)
    return FrameChoice(f"{frame_media_type(stored)}; transfer-syntax={stored}", stored, False)


def _frame_choice(
    media: MediaRange, instance: StoredInstance, pixels: Transcoder | None
) -> FrameChoice | None:
    stored = instance.transfer_syntax_uid
    part = media.params.get("type", OCTETS)
    wanted = media.params.get("transfer-syntax")
    if part in ("*/*", "application/*", "image/*", "video/*") and wanted in (None, "*", stored):
        return _stored_form(stored, instance)
    if part == OCTETS and wanted == "*":
        return _stored_form(stored, instance)
    if wanted is None:
        if part != OCTETS and part == frame_media_type(stored):
            return _stored_form(stored, instance)
        wanted = DEFAULT_FOR_MEDIA_TYPE.get(part)
        if wanted is None:
            return None
    if part != OCTETS and "*" not in part and frame_media_type(wanted) != part:
        return None  # PS3.18 Table 8.7.3-5: the syntax must belong to the media type
    if wanted == stored or (wanted == EXPLICIT_VR_LE and stored in NATIVE_LITTLE_ENDIAN):
        if is_native(stored) or part != OCTETS:
            return _stored_form(stored, instance)
        return FrameChoice(f"{OCTETS}; transfer-syntax={stored}", stored, False)
    if pixels is None or not pixels.can_transcode(instance, wanted):
        return None
    media_type = OCTETS if part == OCTETS or is_native(wanted) else frame_media_type(wanted)
    return FrameChoice(f"{media_type}; transfer-syntax={wanted}", wanted, True)


def choose_frames(
    accept: str | None, instance: StoredInstance, pixels: Transcoder | None
) -> FrameChoice:
    """PS3.18 8.7.3.3.2 and Table 8.7.3-5 for Retrieve Frames (blocking only when it asks
    `pixels` whether a transcoding is possible, which may read the object's header)."""
    for media in parse_accept(accept):
        if media.type in ("*/*", "multipart/*"):
            return _stored_form(instance.transfer_syntax_uid, instance)
        if media.type != "multipart/related":
            continue
        choice = _frame_choice(media, instance, pixels)
        if choice is not None:
            return choice
    stored = instance.transfer_syntax_uid
    raise HttpError(
        406,
        f"frames are stored as {stored} ({frame_media_type(stored)}) and cannot be written in "
        "the media types and transfer syntaxes requested",
    )
