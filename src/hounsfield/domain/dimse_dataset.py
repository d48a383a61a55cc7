"""Data set encoding for DIMSE identifiers, in the transfer syntax of a presentation context.

The data set of a DIMSE message is encoded in the transfer syntax negotiated for its
presentation context (PS3.7 6.3.1, PS3.5 10). Identifiers of C-FIND/C-MOVE/C-GET, N-ACTION and
N-EVENT-REPORT are small, so pydicom is fine here (it stays out of the C-STORE hot path,
DESIGN.md key idea 1). Only the uncompressed syntaxes make sense for identifiers: implicit and
explicit VR little endian, deflated explicit VR little endian (PS3.5 A.5, raw deflate) and
explicit VR big endian (retired, still negotiated by old peers).
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping
from io import BytesIO
from typing import Any

from pydicom.dataset import Dataset
from pydicom.filebase import DicomBytesIO
from pydicom.filereader import read_dataset
from pydicom.filewriter import write_dataset

IMPLICIT_VR_LITTLE_ENDIAN = "1.2.840.10008.1.2"
EXPLICIT_VR_LITTLE_ENDIAN = "1.2.840.10008.1.2.1"
DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN = "1.2.840.10008.1.2.1.99"
EXPLICIT_VR_BIG_ENDIAN = "1.2.840.10008.1.2.2"


class EncodingError(ValueError):
    """The identifier cannot be encoded or decoded in the requested transfer syntax."""


def _encoding(transfer_syntax: str) -> tuple[bool, bool, bool]:
    """(implicit VR, little endian, deflated) for a transfer syntax; every syntax other than
    implicit LE and explicit BE encodes its data set as explicit VR little endian (PS3.5 A.4)."""
    if transfer_syntax == IMPLICIT_VR_LITTLE_ENDIAN:
        return True, True, False
    if transfer_syntax == EXPLICIT_VR_BIG_ENDIAN:
        return False, False, False
    if transfer_syntax == DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN:
        return False, True, True
    return False, True, False


def to_dataset(identifier: Dataset | Mapping[str, Any]) -> Dataset:
    """A pydicom Dataset from a Dataset or a DICOM JSON object (PS3.18 F.2)."""
    if isinstance(identifier, Dataset):
        return identifier
    return Dataset.from_json(dict(identifier))


def encode_identifier(identifier: Dataset | Mapping[str, Any], transfer_syntax: str) -> bytes:
    """Encode a Dataset or DICOM JSON identifier in `transfer_syntax` (no File Meta)."""
    implicit, little, deflated = _encoding(transfer_syntax)
    ds = to_dataset(identifier)
    fp = DicomBytesIO()
    fp.is_implicit_VR = implicit
    fp.is_little_endian = little
    try:
        write_dataset(fp, ds)
    except Exception as exc:
        raise EncodingError(f"cannot encode the identifier: {exc}") from exc
    data: bytes = fp.getvalue()
    if deflated:
        compressor = zlib.compressobj(zlib.Z_DEFAULT_COMPRESSION, zlib.DEFLATED, -zlib.MAX_WBITS)
        data = compressor.compress(data) + compressor.flush()
        if len(data) % 2:
            data += b"\x00"  # PS3.5 A.5: the deflated stream is padded to an even length
    return data


def decode_identifier(data: bytes, transfer_syntax: str) -> Dataset:
    """Decode an identifier received in `transfer_syntax` into a pydicom Dataset."""
    implicit, little, deflated = _encoding(transfer_syntax)
    try:
        if deflated:
            data = zlib.decompressobj(-zlib.MAX_WBITS).decompress(data)
        ds: Dataset = read_dataset(BytesIO(data), implicit, little)
    except Exception as exc:
        raise EncodingError(f"cannot decode the identifier: {exc}") from exc
    return ds


def decode_identifier_json(data: bytes, transfer_syntax: str) -> dict[str, Any]:
    """Decode an identifier into a DICOM JSON object (the form the query services take)."""
    ds = decode_identifier(data, transfer_syntax)
    try:
        result: dict[str, Any] = ds.to_json_dict()
    except Exception as exc:
        raise EncodingError(f"cannot convert the identifier to DICOM JSON: {exc}") from exc
    return result
