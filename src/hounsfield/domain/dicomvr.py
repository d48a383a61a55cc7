"""Value Representation tables and look-ups for the byte-level walker (`domain.dicomwalk`).

Explicit VR encodings carry the VR in the element header (PS3.5 7.1.2); implicit VR encodings do
not (PS3.5 7.1.3), so the walker asks the data dictionary (PS3.6), or the private dictionary when
the block's Private Creator is known (PS3.5 7.8.1). Pydicom's dictionaries are used as plain
tables here, never its Dataset. Results are cached: a CT header repeats the same few hundred tags
on every instance, and the look-up is on the ingest hot path.
"""

from __future__ import annotations

from functools import lru_cache

from pydicom._dicom_dict import DicomDictionary, RepeatersDictionary
from pydicom.datadict import mask_match
from pydicom.datadict import private_dictionary_VR as _private_dictionary_vr

#: VRs with a 2-byte reserved field and a 32-bit length in explicit VR (PS3.5 Table 7.1-1).
LONG_VRS = frozenset({"OB", "OD", "OF", "OL", "OV", "OW", "SQ", "SV", "UC", "UN", "UR", "UT", "UV"})
#: VRs with a 16-bit length in explicit VR (PS3.5 Table 7.1-2).
SHORT_VRS = frozenset(
    {
        "AE", "AS", "AT", "CS", "DA", "DS", "DT", "FL", "FD", "IS", "LO", "LT",
        "PN", "SH", "SL", "SS", "ST", "TM", "UI", "UL", "US",
    }
)  # fmt: skip
#: Explicit VR bytes of the 32-bit-length VRs, to their names.
LONG_VR_NAMES = {v.encode(): v for v in LONG_VRS}

#: VRs whose value is opaque bytes: JSON InlineBinary or BulkDataURI (PS3.18 F.2.7).
BINARY_VRS = frozenset({"OB", "OD", "OF", "OL", "OV", "OW", "UN"})
#: The ambiguous dictionary VRs (PS3.6 6, note on "US or SS" etc.), resolved from context.
AMBIGUOUS_VRS = frozenset({"OB or OW", "US or SS", "US or OW", "US or SS or OW"})

#: Tags whose "US or SS" VR follows Pixel Representation (0028,0103) (PS3.5 A.1 c, PS3.3
#: C.7.6.3.1.4); the same list pydicom corrects, plus the retired descriptors it leaves alone.
US_SS_PIXEL_REP_TAGS = frozenset(
    {
        0x00189810, 0x00221452, 0x00280071, 0x00280104, 0x00280105, 0x00280106,
        0x00280107, 0x00280108, 0x00280109, 0x00280110, 0x00280111, 0x00280120,
        0x00280121, 0x00281100, 0x00281101, 0x00281102, 0x00281103, 0x00281111,
        0x00281112, 0x00281113, 0x00283002, 0x00409211, 0x00409216, 0x00603004,
        0x00603006,
    }
)  # fmt: skip
#: LUT Descriptors: the first value is always unsigned (PS3.3 C.7.6.3.1.5, C.11.1.1).
LUT_DESCRIPTOR_TAGS = frozenset({0x00281101, 0x00281102, 0x00281103, 0x00283002})
#: "OB or OW" tags whose VR follows Waveform Bits Allocated (PS3.3 C.10.9.1.5).
WAVEFORM_OB_OW_TAGS = frozenset({0x54000110, 0x54000112, 0x5400100A, 0x54001010})

PIXEL_DATA = 0x7FE00010
LUT_DATA = 0x00283006
WAVEFORM_BITS_ALLOCATED = 0x54001004
LUT_DESCRIPTOR = 0x00283002
PIXEL_REPRESENTATION = 0x00280103
BITS_ALLOCATED = 0x00280100
SPECIFIC_CHARACTER_SET = 0x00080005


def is_uppercase_vr(b0: int, b1: int) -> bool:
    """True when two bytes could be an explicit VR ("AA".."ZZ").

    A writer that switches to implicit VR inside explicit VR data (seen in sequences, and
    allowed for UN of undefined length by PS3.5 6.2.2) is detected by the VR bytes not being
    two capitals; an implicit length would need to exceed 16 kB to look like one.
    """
    return 0x40 < b0 < 0x5B and 0x40 < b1 < 0x5B


@lru_cache(maxsize=8192)
def public_vr(tag: int) -> str | None:
    """VR of a standard tag from PS3.6 (including repeating groups), or None if unknown."""
    entry = DicomDictionary.get(tag)
    if entry is not None:
        return str(entry[0])
    if not (tag >> 16) & 1:
        mask = mask_match(tag)
        if mask:
            return str(RepeatersDictionary[mask][0])
    return None


@lru_cache(maxsize=8192)
def _private_vr(tag: int, creator: str) -> str:
    try:
        return str(_private_dictionary_vr(tag, creator))
    except KeyError:
        return "UN"


def private_vr(tag: int, creator: str | None) -> str:
    """VR of a private tag (odd group) when its VR is not encoded (PS3.5 7.8.1).

    Private Creator elements (gggg,0010-00FF) are LO; a private data element is looked up in the
    private dictionary by its block's creator; anything else is UN, i.e. kept as bytes.
    """
    element = tag & 0xFFFF
    if 0x0010 <= element < 0x0100:
        return "LO"
    if creator and element & 0xFF00:
        return _private_vr(tag, creator)
    return "UN"


def implicit_vr(tag: int, creator: str | None) -> str:
    """VR for an element read in implicit VR (PS3.5 7.1.3), as pydicom would infer it."""
    if (tag >> 16) & 1:
        return private_vr(tag, creator)
    vr = public_vr(tag)
    if vr is not None:
        return vr
    if tag & 0xFFFF == 0:
        return "UL"  # group length (PS3.5 7.2)
    return "UN"
