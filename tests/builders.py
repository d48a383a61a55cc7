"""Builders of real DICOM objects (PS3.10 files) for end-to-end tests: no PHI, deterministic."""

from __future__ import annotations

import io
from typing import Any

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import (
    PYDICOM_IMPLEMENTATION_UID,
    CTImageStorage,
    ExplicitVRLittleEndian,
    generate_uid,
)

ROOT = "1.2.826.0.1.3680043.10.1234."


def uid() -> str:
    return generate_uid(prefix=ROOT)


def make_dataset(
    *,
    study_uid: str | None = None,
    series_uid: str | None = None,
    sop_uid: str | None = None,
    patient_id: str = "PID-1",
    patient_name: str = "Doe^Jane",
    study_date: str = "20240115",
    modality: str = "CT",
    rows: int = 16,
    columns: int = 16,
    frames: int = 1,
    instance_number: int = 1,
    **overrides: Any,
) -> Dataset:
    ds = Dataset()
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.SOPClassUID = CTImageStorage
    ds.SOPInstanceUID = sop_uid or uid()
    ds.StudyInstanceUID = study_uid or uid()
    ds.SeriesInstanceUID = series_uid or uid()
    ds.PatientID = patient_id
    ds.PatientName = patient_name
    ds.PatientBirthDate = "19700101"
    ds.PatientSex = "F"
    ds.StudyDate = study_date
    ds.StudyTime = "101500"
    ds.AccessionNumber = "ACC-1"
    ds.StudyID = "1"
    ds.ReferringPhysicianName = "Ref^Doctor"
    ds.StudyDescription = "Synthetic study"
    ds.Modality = modality
    ds.SeriesNumber = 1
    ds.SeriesDescription = "Synthetic series"
    ds.InstanceNumber = instance_number
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows = rows
    ds.Columns = columns
    ds.BitsAllocated = 16
    ds.BitsStored = 12
    ds.HighBit = 11
    ds.PixelRepresentation = 0
    if frames > 1:
        ds.NumberOfFrames = frames
    pixels = (np.arange(rows * columns * frames, dtype=np.uint16) % 4096).reshape(
        (frames, rows, columns) if frames > 1 else (rows, columns)
    )
    ds.PixelData = pixels.tobytes()
    for key, value in overrides.items():
        setattr(ds, key, value)
    return ds


def to_bytes(ds: Dataset, transfer_syntax: str = ExplicitVRLittleEndian) -> bytes:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = ds.SOPClassUID
    meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    meta.TransferSyntaxUID = transfer_syntax
    meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    ds.file_meta = meta
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def make_instance(**kwargs: Any) -> bytes:
    return to_bytes(make_dataset(**kwargs))


def multipart(parts: list[bytes], content_type: str = "application/dicom") -> tuple[bytes, str]:
    """A multipart/related body and its Content-Type header (RFC 2387)."""
    boundary = "hounsfield-test-boundary-7d1f"
    body = bytearray()
    for part in parts:
        body += f"--{boundary}\r\nContent-Type: {content_type}\r\n\r\n".encode()
        body += part + b"\r\n"
    body += f"--{boundary}--\r\n".encode()
    return bytes(body), f'multipart/related; type="application/dicom"; boundary={boundary}'
