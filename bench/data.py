"""Deterministic synthetic DICOM data: no real PHI, same bytes for every archive and every run.

Headers are built once per modality by pydicom with fixed-length placeholders, then each
instance is a byte substitution of those placeholders (microseconds, so a million tiny
instances can be made in seconds) followed by its Pixel Data element. Every value has a fixed
width by construction (UIDs) or is padded as PS3.5 6.2 allows (trailing spaces), so the result
is a valid Explicit VR Little Endian Part 10 object.
"""

from __future__ import annotations

import io
import random
import struct
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta

import numpy as np
import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import UID, ExplicitVRLittleEndian

# Under pydicom's registered root; the ".77" arc is this benchmark's own.
UID_ROOT = "1.2.826.0.1.3680043.8.498.77"
BOUNDARY = "hounsfield-bench-boundary-7f3a9c"
# Data sets ("kinds") get their own UID arcs, patients and dates, so they never overlap.
CT_KIND = 1
QUERY_KIND = 2
WARMUP_KIND = 3
MR_KIND = 6
CT_ROUND_KINDS = (CT_KIND, 4, 5, 7)  # one CT data set per STOW round (single digits)
STOW_CONTENT_TYPE = f'multipart/related; type="application/dicom"; boundary={BOUNDARY}'

SOP_CLASSES = {
    "CT": "1.2.840.10008.5.1.4.1.1.2",
    "MR": "1.2.840.10008.5.1.4.1.1.4",
    "CR": "1.2.840.10008.5.1.4.1.1.1",
    "DX": "1.2.840.10008.5.1.4.1.1.1.1",
    "US": "1.2.840.10008.5.1.4.1.1.6.1",
}
# Primary modality of a study and how often it occurs.
MODALITY_WEIGHTS = {"CT": 40, "MR": 25, "CR": 15, "DX": 10, "US": 10}
BODY_PARTS = {
    "CT": ["CHEST", "ABDOMEN", "HEAD", "PELVIS"],
    "MR": ["BRAIN", "KNEE", "SPINE", "SHOULDER"],
    "CR": ["CHEST", "HAND", "FOOT"],
    "DX": ["CHEST", "KNEE", "SPINE"],
    "US": ["ABDOMEN", "THYROID", "PELVIS"],
}
FAMILY_NAMES = [
    "SMITH", "JOHNSON", "WILLIAMS", "BROWN", "JONES", "GARCIA", "MILLER", "DAVIS", "MARTIN",
    "BERNARD", "DUBOIS", "MUELLER", "SCHMIDT", "ROSSI", "RUSSO", "JANSSEN", "PEETERS", "NOVAK",
    "KOWALSKI", "NIELSEN", "HANSEN", "SILVA", "SANTOS", "TANAKA", "SATO", "KIM", "LEE", "CHEN",
    "WANG", "DOE", "DOERR", "MOREAU",
]  # fmt: skip
GIVEN_NAMES = [
    "JOHN", "JANE", "MARIE", "PETER", "ANNA", "LUCAS", "EMMA", "NOAH", "SOFIA", "LEO", "MIA",
    "HUGO", "LINA", "OMAR", "YUKI", "IVAN",
]  # fmt: skip
PHYSICIANS = ["HOUSE^GREGORY", "GREY^MEREDITH", "KILDARE^JAMES", "QUINN^MICHAELA"]


def study_uid(kind: int, study: int) -> str:
    """40 characters; `kind` keeps the data sets of different scenarios apart."""
    return f"{UID_ROOT}.{kind}1.1{study:07d}"


def series_uid(kind: int, study: int, series: int) -> str:
    return f"{UID_ROOT}.{kind}2.1{study:07d}1{series:03d}"


def instance_uid(kind: int, study: int, series: int, number: int) -> str:
    return f"{UID_ROOT}.{kind}3.1{study:07d}1{series:03d}1{number:05d}"


# Placeholders: (keyword, width). Widths are even, as every DICOM value length must be.
_FIELDS: list[tuple[str, int]] = [
    ("PatientName", 40),
    ("PatientID", 16),
    ("PatientBirthDate", 8),
    ("PatientSex", 4),
    ("StudyInstanceUID", 0),  # UIDs: exact width from the generators above
    ("StudyDate", 8),
    ("StudyTime", 6),
    ("AccessionNumber", 16),
    ("StudyID", 8),
    ("StudyDescription", 32),
    ("ReferringPhysicianName", 24),
    ("SeriesInstanceUID", 0),
    ("SeriesNumber", 6),
    ("SeriesDescription", 32),
    ("BodyPartExamined", 16),
    ("SOPInstanceUID", 0),
    ("InstanceNumber", 6),
    ("ImagePositionPatient", 26),
    ("SliceLocation", 10),
]
_UID_WIDTH = {
    "StudyInstanceUID": len(study_uid(1, 0)),
    "SeriesInstanceUID": len(series_uid(1, 0, 0)),
    "SOPInstanceUID": len(instance_uid(1, 0, 0, 0)),
}


_NUMERIC = {"SeriesNumber", "InstanceNumber", "SliceLocation"}


def _placeholder(keyword: str, index: int, width: int) -> str | list[str]:
    """A value that pydicom accepts for the keyword's VR and that occurs nowhere else."""
    if keyword == "ImagePositionPatient":  # DS, 3 values of 8 characters
        return [f"-99{index:02d}{k}".ljust(8, "9") for k in range(3)]
    if keyword in _NUMERIC:  # IS / DS: a number
        return f"-99{index:02d}".ljust(width, "9")
    return f"@{index:02d}".ljust(width, "#")


@dataclass(frozen=True)
class _Template:
    header: bytes
    placeholders: dict[str, bytes]
    widths: dict[str, int]
    pixel_bytes: int


def _header(modality: str, rows: int, columns: int, values: dict[str, str | list[str]]) -> bytes:
    """The Part 10 header (everything before Pixel Data) with placeholder values."""
    ds = Dataset()
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
    ds.SOPClassUID = SOP_CLASSES[modality]
    for keyword, text in values.items():
        setattr(ds, keyword, text)
    ds.Modality = modality
    ds.SeriesDate = ds.StudyDate
    ds.SeriesTime = ds.StudyTime
    ds.ContentDate = ds.StudyDate
    ds.ContentTime = ds.StudyTime
    ds.Manufacturer = "HOUNSFIELD BENCH"
    ds.InstitutionName = "SYNTHETIC GENERAL HOSPITAL"
    ds.StationName = "BENCH01"
    ds.FrameOfReferenceUID = values["StudyInstanceUID"]
    ds.PositionReferenceIndicator = ""
    ds.ImageOrientationPatient = ["1", "0", "0", "0", "1", "0"]
    ds.SliceThickness = "1.0"
    ds.PixelSpacing = ["0.7", "0.7"]
    if modality == "CT":
        ds.KVP = "120"
        ds.ConvolutionKernel = "STANDARD"
        ds.RescaleIntercept = "-1024"
        ds.RescaleSlope = "1"
        ds.RescaleType = "HU"
        ds.WindowCenter = "40"
        ds.WindowWidth = "400"
    if modality == "MR":  # PS3.3 C.8.3.1 MR Image Module: a spin-echo T2 axial
        ds.ScanningSequence = "SE"
        ds.SequenceVariant = "NONE"
        ds.ScanOptions = ""
        ds.MRAcquisitionType = "2D"
        ds.RepetitionTime = "4000"
        ds.EchoTime = "90"
        ds.EchoTrainLength = "16"
        ds.MagneticFieldStrength = "1.5"
        ds.ImagedNucleus = "1H"
        ds.WindowCenter = "600"
        ds.WindowWidth = "1200"
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows = rows
    ds.Columns = columns
    ds.BitsAllocated = 16
    ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 0 if modality == "MR" else 1  # MR magnitudes are unsigned

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = UID(SOP_CLASSES[modality])
    meta.MediaStorageSOPInstanceUID = UID(str(values["SOPInstanceUID"]))
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = UID(f"{UID_ROOT}.1")
    meta.ImplementationVersionName = "HF_BENCH_1"
    ds.file_meta = meta

    buffer = io.BytesIO()
    pydicom.dcmwrite(buffer, ds, enforce_file_format=True)
    return buffer.getvalue()


def _build_template(modality: str, rows: int, columns: int) -> _Template:
    placeholders: dict[str, bytes] = {}
    widths: dict[str, int] = {}
    values: dict[str, str | list[str]] = {}
    for i, (keyword, width) in enumerate(_FIELDS):
        w = width or _UID_WIDTH[keyword]
        widths[keyword] = w
        value = _placeholder(keyword, i, w)
        values[keyword] = value
        text = value if isinstance(value, str) else "\\".join(value)
        assert len(text) == w, keyword
        placeholders[keyword] = text.encode("ascii")

    with pydicom.config.disable_value_validation():
        header = _header(modality, rows, columns, values)
    for keyword, placeholder in placeholders.items():
        if placeholder not in header:
            raise AssertionError(f"{keyword} placeholder was not written verbatim")
    pixel_bytes = rows * columns * 2
    return _Template(header, placeholders, widths, pixel_bytes)


def _pixel_element(pixels: bytes) -> bytes:
    # (7FE0,0010) OW, explicit VR little endian: tag, VR, 2 reserved bytes, 4-byte length.
    return struct.pack("<HH2sHI", 0x7FE0, 0x0010, b"OW", 0, len(pixels)) + pixels


@dataclass
class Instance:
    """One generated object and the identifiers the queries need."""

    study_uid: str
    series_uid: str
    sop_uid: str
    data: bytes


@dataclass
class StudyFacts:
    """What was generated for one study, so scenarios can query values that exist."""

    study_uid: str
    patient_id: str
    patient_name: str
    study_date: str
    modalities: set[str]
    series_uids: list[str] = field(default_factory=list)


class InstanceFactory:
    """Makes instances by substitution into per-modality header templates."""

    def __init__(self, rows: int, columns: int) -> None:
        self.rows = rows
        self.columns = columns
        self._templates: dict[str, _Template] = {}

    def _template(self, modality: str) -> _Template:
        if modality not in self._templates:
            self._templates[modality] = _build_template(modality, self.rows, self.columns)
        return self._templates[modality]

    def make(self, modality: str, values: dict[str, str], pixels: bytes) -> bytes:
        template = self._template(modality)
        if len(pixels) != template.pixel_bytes:
            raise ValueError(f"expected {template.pixel_bytes} pixel bytes, got {len(pixels)}")
        header = template.header
        for keyword, placeholder in template.placeholders.items():
            width = template.widths[keyword]
            value = values[keyword]
            if len(value) > width:
                raise ValueError(f"{keyword} {value!r} is longer than {width}")
            header = header.replace(placeholder, value.ljust(width).encode("ascii"))
        return header + _pixel_element(pixels)


def _ct_phantom(rows: int, columns: int) -> np.ndarray:
    """A water cylinder in air, as stored values (HU + 1024)."""
    y, x = np.ogrid[:rows, :columns]
    r2 = (x - columns / 2) ** 2 + (y - rows / 2) ** 2
    image = np.full((rows, columns), 24, dtype=np.int16)  # air, -1000 HU
    image[r2 < (0.42 * min(rows, columns)) ** 2] = 1024  # water, 0 HU
    image[r2 < (0.08 * min(rows, columns)) ** 2] = 1724  # bone-like insert, 700 HU
    return image


@dataclass
class Patient:
    patient_id: str
    name: str
    birth_date: str
    sex: str


def _patients(rng: random.Random, count: int, kind: int) -> list[Patient]:
    """Patients of one data set; IDs carry the data set's kind so sets never share a patient."""
    out = []
    for i in range(count):
        birth = date(1930, 1, 1) + timedelta(days=rng.randrange(0, 365 * 85))
        name = f"{rng.choice(FAMILY_NAMES)}^{rng.choice(GIVEN_NAMES)}"
        out.append(
            Patient(
                patient_id=f"BN{kind}{i:08d}",
                name=name if kind == QUERY_KIND else f"PHANTOM^K{kind}N{i}",
                birth_date=birth.strftime("%Y%m%d"),
                sex=rng.choice(["M", "F", "F", "M", "O"]),
            )
        )
    return out


def _study_values(
    rng: random.Random, kind: int, study: int, patient: Patient, modality: str
) -> dict[str, str]:
    when = date(2019, 1, 1) + timedelta(days=rng.randrange(0, 7 * 365))
    if kind != QUERY_KIND:  # outside the query data set's dates
        when = date(2026, 11, 1) + timedelta(days=study % 20)
    return {
        "PatientName": patient.name,
        "PatientID": patient.patient_id,
        "PatientBirthDate": patient.birth_date,
        "PatientSex": patient.sex,
        "StudyInstanceUID": study_uid(kind, study),
        "StudyDate": when.strftime("%Y%m%d"),
        "StudyTime": f"{rng.randrange(7, 20):02d}{rng.randrange(60):02d}{rng.randrange(60):02d}",
        "AccessionNumber": f"ACC{kind}{study:08d}",
        "StudyID": f"{study % 10**8}",
        "StudyDescription": f"{modality} {rng.choice(BODY_PARTS[modality])}",
        "ReferringPhysicianName": rng.choice(PHYSICIANS),
    }


def _series_values(
    rng: random.Random, kind: int, study: int, series: int, modality: str
) -> dict[str, str]:
    part = rng.choice(BODY_PARTS[modality])
    return {
        "SeriesInstanceUID": series_uid(kind, study, series),
        "SeriesNumber": str(series + 1),
        "SeriesDescription": f"{part} {modality} SERIES {series + 1}",
        "BodyPartExamined": part,
    }


def _instance_values(kind: int, study: int, series: int, number: int) -> dict[str, str]:
    z = -100.0 + number * 1.0
    return {
        "SOPInstanceUID": instance_uid(kind, study, series, number),
        "InstanceNumber": str(number + 1),
        "ImagePositionPatient": f"-179.2\\-179.2\\{z:.1f}",
        "SliceLocation": f"{z:.1f}",
    }


@dataclass
class CtSeriesSpec:
    """`studies` CT studies of one series each, `slices` 512² 16-bit slices per series."""

    studies: int
    slices: int
    rows: int = 512
    columns: int = 512
    seed: int = 20261125
    kind: int = CT_KIND


def ct_instances(spec: CtSeriesSpec) -> Iterator[Instance]:
    """Single-frame CT slices (about 520 KB each at 512²), deterministic for a seed."""
    yield from _series_instances(spec, "CT", _ct_phantom(spec.rows, spec.columns), 20)


@dataclass
class MrSeriesSpec:
    """`studies` MR studies of one series each, `slices` 256² 16-bit slices per series."""

    studies: int
    slices: int
    rows: int = 256
    columns: int = 256
    seed: int = 20261126
    kind: int = MR_KIND


def mr_instances(spec: MrSeriesSpec) -> Iterator[Instance]:
    """Single-frame MR slices (about 135 KB each at 256²), deterministic for a seed."""
    yield from _series_instances(spec, "MR", _mr_phantom(spec.rows, spec.columns), 30)


def _mr_phantom(rows: int, columns: int) -> np.ndarray:
    """An axial head: scalp, cerebrospinal fluid, white and grey matter, as T2 magnitudes."""
    y, x = np.ogrid[:rows, :columns]
    cy, cx = rows / 2, columns / 2

    def ellipse(ry: float, rx: float) -> np.ndarray:
        return ((y - cy) / (ry * rows)) ** 2 + ((x - cx) / (rx * columns)) ** 2 < 1

    image = np.full((rows, columns), 40, dtype=np.int16)  # background noise floor
    image[ellipse(0.45, 0.38)] = 500  # scalp and skull marrow
    image[ellipse(0.41, 0.34)] = 1400  # CSF, bright on T2
    image[ellipse(0.39, 0.32)] = 800  # grey matter
    image[ellipse(0.30, 0.24)] = 600  # white matter
    image[ellipse(0.06, 0.10)] = 1400  # ventricles
    return image


def _series_instances(
    spec: CtSeriesSpec | MrSeriesSpec, modality: str, phantom: np.ndarray, noise_level: int
) -> Iterator[Instance]:
    """One series per study, each slice the phantom plus seeded noise."""
    rng = random.Random(spec.seed)
    noise = np.random.default_rng(spec.seed)
    factory = InstanceFactory(spec.rows, spec.columns)
    patients = _patients(rng, max(1, spec.studies), spec.kind)
    for study in range(spec.studies):
        values = _study_values(rng, spec.kind, study, patients[study], modality)
        values.update(_series_values(rng, spec.kind, study, 0, modality))
        for number in range(spec.slices):
            values.update(_instance_values(spec.kind, study, 0, number))
            pixels = phantom + noise.integers(-noise_level, noise_level, phantom.shape, np.int16)
            yield Instance(
                values["StudyInstanceUID"],
                values["SeriesInstanceUID"],
                values["SOPInstanceUID"],
                factory.make(modality, values, pixels.astype("<i2").tobytes()),
            )


ENHANCED_CT = "1.2.840.10008.5.1.4.1.1.2.1"
MULTIFRAME_ARC = f"{UID_ROOT}.100"  # outside the single-digit kinds of the template UIDs


def enhanced_ct(
    frames: int = 100, rows: int = 512, columns: int = 512, seed: int = 1126
) -> Instance:
    """One Enhanced CT Image (PS3.3 A.38) of `frames` contiguous 512² 16-bit axial frames.

    A realistic multi-frame object (about 52 MB for 100 frames): the rescale and the window are
    in the Shared Functional Groups (Pixel Value Transformation, Frame VOI LUT: PS3.3 C.7.6.16.2),
    each frame has its own Plane Position and Frame Content (C.7.6.16.2.2-3), as a scanner's
    Enhanced CT export has them. Built directly with pydicom (one object, so speed is moot).
    """
    noise = np.random.default_rng(seed)
    phantom = _ct_phantom(rows, columns)
    study, series, sop = (f"{MULTIFRAME_ARC}.{n}" for n in (1, 2, 3))
    ds = Dataset()
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL", "NONE"]
    ds.SOPClassUID = ENHANCED_CT
    ds.SOPInstanceUID = sop
    ds.StudyInstanceUID = study
    ds.SeriesInstanceUID = series
    ds.FrameOfReferenceUID = f"{MULTIFRAME_ARC}.4"
    ds.PositionReferenceIndicator = ""
    ds.PatientName = "PHANTOM^MULTIFRAME"
    ds.PatientID = "BNMF00000001"
    ds.PatientBirthDate = "19700101"
    ds.PatientSex = "O"
    ds.StudyDate = ds.SeriesDate = ds.ContentDate = ds.AcquisitionDateTime = "20261126"
    ds.StudyTime = ds.SeriesTime = ds.ContentTime = "101500"
    ds.AccessionNumber = "ACCMF0000001"
    ds.StudyID = "1"
    ds.StudyDescription = "CT CHEST"
    ds.ReferringPhysicianName = "HOUSE^GREGORY"
    ds.Modality = "CT"
    ds.PatientPosition = "HFS"
    ds.SeriesNumber = "1"
    ds.SeriesDescription = "ENHANCED CT CHEST"
    ds.InstanceNumber = "1"
    ds.Manufacturer = "HOUNSFIELD BENCH"
    ds.ManufacturerModelName = "SYNTHETIC"
    ds.DeviceSerialNumber = "0001"
    ds.SoftwareVersions = "1"
    ds.ContentQualification = "RESEARCH"
    ds.PixelPresentation = "MONOCHROME"
    ds.VolumetricProperties = "VOLUME"
    ds.VolumeBasedCalculationTechnique = "NONE"
    ds.BurnedInAnnotation = "NO"
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows = rows
    ds.Columns = columns
    ds.BitsAllocated = 16
    ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 1
    ds.NumberOfFrames = str(frames)
    ds.AcquisitionNumber = "1"

    shared = Dataset()
    shared.PixelMeasuresSequence = [_item(PixelSpacing=["0.7", "0.7"], SliceThickness="1.0")]
    shared.PlaneOrientationSequence = [
        _item(ImageOrientationPatient=["1", "0", "0", "0", "1", "0"])
    ]
    shared.PixelValueTransformationSequence = [
        _item(RescaleIntercept="-1024", RescaleSlope="1", RescaleType="HU")
    ]
    shared.FrameVOILUTSequence = [_item(WindowCenter="40", WindowWidth="400")]
    ds.SharedFunctionalGroupsSequence = [shared]
    ds.PerFrameFunctionalGroupsSequence = [
        _item(
            FrameContentSequence=[_item(FrameAcquisitionNumber=n + 1, InStackPositionNumber=n + 1)],
            PlanePositionSequence=[_item(ImagePositionPatient=["-179.2", "-179.2", f"{n:.1f}"])],
        )
        for n in range(frames)
    ]
    pixels = np.stack(
        [phantom + noise.integers(-20, 20, phantom.shape, np.int16) for _ in range(frames)]
    )
    ds.PixelData = pixels.astype("<i2").tobytes()

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = UID(ENHANCED_CT)
    meta.MediaStorageSOPInstanceUID = UID(sop)
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = UID(f"{UID_ROOT}.1")
    meta.ImplementationVersionName = "HF_BENCH_1"
    ds.file_meta = meta
    buffer = io.BytesIO()
    pydicom.dcmwrite(buffer, ds, enforce_file_format=True)
    return Instance(study, series, sop, buffer.getvalue())


def _item(**values: object) -> Dataset:
    item = Dataset()
    for keyword, value in values.items():
        setattr(item, keyword, value)
    return item


@dataclass
class TinyArchiveSpec:
    """A population of studies for query benchmarks: tiny images, realistic attributes.

    About 0.6 patients per study (some patients have several studies); one study in five has a
    second series of another modality (so ModalitiesInStudy has multi-valued answers).
    """

    studies: int
    series_per_study: int = 2
    instances_per_series: int = 2
    size: int = 8
    seed: int = 1125
    kind: int = QUERY_KIND


@dataclass
class TinyArchive:
    spec: TinyArchiveSpec
    studies: list[StudyFacts]

    def instances(self) -> Iterator[Instance]:
        yield from _tiny_instances(self.spec, self.studies)


def _study_plan(spec: TinyArchiveSpec) -> list[tuple[StudyFacts, list[str], dict[str, str]]]:
    rng = random.Random(spec.seed)
    patients = _patients(rng, max(1, int(spec.studies * 0.6)), spec.kind)
    modalities = list(MODALITY_WEIGHTS)
    weights = list(MODALITY_WEIGHTS.values())
    plan = []
    for study in range(spec.studies):
        patient = rng.choice(patients)
        primary = rng.choices(modalities, weights)[0]
        series_modalities = [primary] * spec.series_per_study
        if spec.series_per_study > 1 and rng.random() < 0.2:
            series_modalities[-1] = rng.choice([m for m in modalities if m != primary])
        values = _study_values(rng, spec.kind, study, patient, primary)
        facts = StudyFacts(
            study_uid=values["StudyInstanceUID"],
            patient_id=patient.patient_id,
            patient_name=patient.name,
            study_date=values["StudyDate"],
            modalities=set(series_modalities),
            series_uids=[series_uid(spec.kind, study, s) for s in range(spec.series_per_study)],
        )
        plan.append((facts, series_modalities, values))
    return plan


def tiny_archive(spec: TinyArchiveSpec) -> TinyArchive:
    return TinyArchive(spec, [facts for facts, _, _ in _study_plan(spec)])


def _tiny_instances(spec: TinyArchiveSpec, _facts: list[StudyFacts]) -> Iterator[Instance]:
    factory = InstanceFactory(spec.size, spec.size)
    pixels = np.arange(spec.size * spec.size, dtype="<i2").tobytes()
    rng = random.Random(spec.seed + 1)
    for study, (_, series_modalities, study_values) in enumerate(_study_plan(spec)):
        for series, modality in enumerate(series_modalities):
            values = dict(study_values)
            values.update(_series_values(rng, spec.kind, study, series, modality))
            for number in range(spec.instances_per_series):
                values.update(_instance_values(spec.kind, study, series, number))
                yield Instance(
                    values["StudyInstanceUID"],
                    values["SeriesInstanceUID"],
                    values["SOPInstanceUID"],
                    factory.make(modality, values, pixels),
                )


def multipart_body(parts: list[bytes]) -> bytes:
    """A STOW-RS request body (PS3.18 10.5.1.2): one application/dicom part per object."""
    chunks: list[bytes] = []
    for data in parts:
        chunks.append(f"--{BOUNDARY}\r\nContent-Type: application/dicom\r\n\r\n".encode())
        chunks.append(data)
        chunks.append(b"\r\n")
    chunks.append(f"--{BOUNDARY}--\r\n".encode())
    return b"".join(chunks)


def batched(items: Iterator[Instance], size: int) -> Iterator[list[Instance]]:
    batch: list[Instance] = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch
