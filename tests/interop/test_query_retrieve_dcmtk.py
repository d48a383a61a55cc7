"""C-FIND, C-MOVE and C-GET against the real server with the DCMTK tools (PS3.4 C.4).

Objects go in with storescu (C-STORE), come back with getscu/movescu and are compared byte for
byte with what was sent (the data set after the File Meta Information). storescp is the C-MOVE
destination, registered through the admin API.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path

import httpx
import pytest
from pydicom import dcmread
from pydicom.encaps import encapsulate
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian, JPEGBaseline8Bit

from tests.builders import make_dataset, multipart, to_bytes, uid
from tests.conftest import RunningServer, require_tool, start_server, stop_server
from tests.interop.dimse_support import dataset_part, start_storescp
from tests.interop.dimse_support import suboperation_counts as counts

pytestmark = pytest.mark.services
MR = "1.2.840.10008.5.1.4.1.1.4"


@dataclass
class Archive:
    server: RunningServer
    study: str
    other_study: str
    sent: dict[str, bytes]  # SOP Instance UID -> PS3.10 bytes as sent
    series: list[str]

    def scu(self, tool: str, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [
                require_tool(tool),
                "-aet",
                "TESTSCU",
                "-aec",
                self.server.ae_title,
                *args,
                "127.0.0.1",
                str(self.server.dimse_port),
            ],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )


def jpeg(study: str, series: str) -> bytes:
    ds = make_dataset(study_uid=study, series_uid=series, rows=8, columns=8, patient_id="P-QR")
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = 8, 8, 7
    ds.PixelData = encapsulate([b"\xff\xd8\xff\xe0fake-jpeg\xff\xd9"])
    ds["PixelData"].VR = "OB"
    return to_bytes(ds, JPEGBaseline8Bit)


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Archive]:
    storescu = require_tool("storescu")
    root = tmp_path_factory.mktemp("qr")
    server = start_server(root / "data")
    try:
        study, other = uid(), uid()
        series = [uid(), uid(), uid()]
        files: dict[str, bytes] = {}
        for n in range(3):
            ds = make_dataset(
                study_uid=study, series_uid=series[0], patient_id="P-QR", instance_number=n + 1
            )
            files[ds.SOPInstanceUID] = to_bytes(ds, ExplicitVRLittleEndian)
        mr = make_dataset(study_uid=study, series_uid=series[1], patient_id="P-QR", modality="MR")
        mr.SOPClassUID = MR
        implicit = to_bytes(mr, ImplicitVRLittleEndian)
        compressed = jpeg(study, series[2])
        lone = make_dataset(
            study_uid=other,
            patient_id="P-OTHER",
            patient_name="Müller^Jürgen",
            study_date="20200202",
        )
        files[lone.SOPInstanceUID] = to_bytes(lone)
        folder = root / "in"
        folder.mkdir()
        for sop, data in files.items():
            (folder / f"{sop}.dcm").write_bytes(data)
        stored = subprocess.run(
            [storescu, "-aec", server.ae_title, "+sd", "+r", "-R", "127.0.0.1"]  # noqa: RUF005
            + [str(server.dimse_port), str(folder)],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert stored.returncode == 0, stored.stdout + stored.stderr
        # JPEG and implicit VR objects go in through STOW-RS, stored exactly as sent: storescu
        # would convert them to whatever syntax was accepted, and C-STORE is tested elsewhere.
        body, content_type = multipart([compressed, implicit])
        stow = httpx.post(
            f"{server.dicomweb}/studies", content=body, headers={"Content-Type": content_type}
        )
        assert stow.status_code == 200, stow.text
        files[dcmread(BytesIO(compressed)).SOPInstanceUID] = compressed
        files[mr.SOPInstanceUID] = implicit
        yield Archive(server, study, other, files, series)
    finally:
        stop_server(server)


def find(archive: Archive, tmp_path: Path, *keys: str, model: str = "-S") -> list[object]:
    out = tmp_path / f"find-{time.monotonic_ns()}"
    out.mkdir()
    args = [model, "-X", "-od", str(out)]
    for key in keys:
        args += ["-k", key]
    done = archive.scu("findscu", *args)
    assert done.returncode == 0, done.stderr
    return [dcmread(p) for p in sorted(out.glob("rsp*.dcm"))]


# --- C-FIND ---------------------------------------------------------------------------------


def test_find_studies_by_patient_id(archive: Archive, tmp_path: Path) -> None:
    found = find(
        archive,
        tmp_path,
        "QueryRetrieveLevel=STUDY",
        "PatientID=P-QR",
        "StudyInstanceUID",
        "ModalitiesInStudy",
        "NumberOfStudyRelatedInstances",
        "StudyDescription",
    )
    assert len(found) == 1
    response = found[0]
    assert response.StudyInstanceUID == archive.study
    assert set(response.ModalitiesInStudy) == {"CT", "MR"}
    assert int(response.NumberOfStudyRelatedInstances) == 5
    assert response.RetrieveAETitle == archive.server.ae_title
    assert response.QueryRetrieveLevel == "STUDY"
    keywords = {e.keyword for e in response}
    assert keywords <= {
        "SpecificCharacterSet",
        "QueryRetrieveLevel",
        "RetrieveAETitle",
        "PatientID",
        "StudyInstanceUID",
        "ModalitiesInStudy",
        "NumberOfStudyRelatedInstances",
        "StudyDescription",
    }


@pytest.mark.parametrize(
    ("key", "count"),
    [
        ("PatientName=müll*", 1),
        ("PatientName=Doe^Jane", 1),
        ("StudyDate=20200101-20201231", 1),
        ("StudyDate=-20191231", 0),
        ("PatientID=P-*", 2),
        ("PatientID=P-QR", 1),
        ("AccessionNumber=ACC-?", 2),
    ],
)
def test_find_matching_rules(archive: Archive, tmp_path: Path, key: str, count: int) -> None:
    charset = ["SpecificCharacterSet=ISO_IR 192"] if "ü" in key else []
    found = find(archive, tmp_path, "QueryRetrieveLevel=STUDY", *charset, key, "StudyInstanceUID")
    assert len(found) == count


def test_find_non_ascii_names_come_back_readable(archive: Archive, tmp_path: Path) -> None:
    [found] = find(
        archive, tmp_path, "QueryRetrieveLevel=STUDY", "PatientID=P-OTHER", "PatientName"
    )
    assert str(found.PatientName) == "Müller^Jürgen"


def test_find_series_and_images_of_a_study(archive: Archive, tmp_path: Path) -> None:
    series = find(
        archive,
        tmp_path,
        "QueryRetrieveLevel=SERIES",
        f"StudyInstanceUID={archive.study}",
        "SeriesInstanceUID",
        "Modality",
        "NumberOfSeriesRelatedInstances",
    )
    assert {s.SeriesInstanceUID for s in series} == set(archive.series)
    images = find(
        archive,
        tmp_path,
        "QueryRetrieveLevel=IMAGE",
        f"StudyInstanceUID={archive.study}",
        f"SeriesInstanceUID={archive.series[0]}",
        "SOPInstanceUID",
        "InstanceNumber",
    )
    assert sorted(int(i.InstanceNumber) for i in images) == [1, 2, 3]


def test_find_patient_root(archive: Archive, tmp_path: Path) -> None:
    patients = find(
        archive,
        tmp_path,
        "QueryRetrieveLevel=PATIENT",
        "PatientID=P-QR",
        "PatientName",
        model="-P",
    )
    assert [str(p.PatientName) for p in patients] == ["Doe^Jane"]


def test_find_refuses_a_non_hierarchical_identifier(archive: Archive) -> None:
    done = archive.scu(
        "findscu", "-d", "-S", "-k", "QueryRetrieveLevel=SERIES", "-k", "Modality=CT"
    )
    assert "a900" in (done.stdout + done.stderr).lower()


# --- C-MOVE ---------------------------------------------------------------------------------


@pytest.fixture
def destination(archive: Archive, tmp_path: Path) -> Iterator[tuple[str, Path]]:
    out = tmp_path / "moved"
    process, port = start_storescp(out, "+xa")
    response = httpx.put(
        f"{archive.server.url}/api/remote-aes/DEST",
        json={"host": "127.0.0.1", "port": port},
    )
    assert response.status_code in (200, 201), response.text
    try:
        yield "DEST", out
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_move_study_to_a_registered_destination(
    archive: Archive, destination: tuple[str, Path]
) -> None:
    aet, out = destination
    done = archive.scu(
        "movescu",
        "-d",
        "-S",
        "-aem",
        aet,
        "-k",
        "QueryRetrieveLevel=STUDY",
        "-k",
        f"StudyInstanceUID={archive.study}",
    )
    output = done.stdout + done.stderr
    assert counts(output) == {"Completed": 5, "Failed": 0, "Warning": 0}, output
    received = {dataset_part(p.read_bytes()) for p in out.iterdir()}
    sent = {
        dataset_part(data)
        for data in archive.sent.values()
        if dcmread(BytesIO(data)).StudyInstanceUID == archive.study
    }
    assert received == sent


def test_move_series_with_uid_list(archive: Archive, destination: tuple[str, Path]) -> None:
    aet, out = destination
    done = archive.scu(
        "movescu",
        "-d",
        "-S",
        "-aem",
        aet,
        "-k",
        "QueryRetrieveLevel=SERIES",
        "-k",
        f"StudyInstanceUID={archive.study}",
        "-k",
        f"SeriesInstanceUID={archive.series[0]}\\{archive.series[1]}",
    )
    assert counts(done.stdout + done.stderr)["Completed"] == 4
    assert len(list(out.iterdir())) == 4


def test_move_to_an_unknown_destination_is_a801(archive: Archive) -> None:
    done = archive.scu(
        "movescu",
        "-d",
        "-S",
        "-aem",
        "NOWHERE",
        "-k",
        "QueryRetrieveLevel=STUDY",
        "-k",
        f"StudyInstanceUID={archive.study}",
    )
    assert "a801" in (done.stdout + done.stderr).lower()


# --- C-GET ----------------------------------------------------------------------------------


def get(archive: Archive, out: Path, *args: str) -> subprocess.CompletedProcess[str]:
    out.mkdir(exist_ok=True)
    return archive.scu("getscu", "-d", "-S", "-od", str(out), "+B", *args)


@pytest.mark.parametrize(
    ("series", "option"),
    [(0, "+x="), (2, "+xy")],
    ids=["ct-explicit", "ct-jpeg-baseline"],
)
def test_get_round_trip_is_byte_identical(
    archive: Archive, tmp_path: Path, series: int, option: str
) -> None:
    """C-STORE/STOW in, C-GET out: the data set comes back exactly as sent when the
    requestor accepts its stored transfer syntax (getscu proposes one syntax per class)."""
    out = tmp_path / "got"
    uid_ = archive.series[series]
    done = get(
        archive,
        out,
        option,
        "-k",
        "QueryRetrieveLevel=SERIES",
        "-k",
        f"StudyInstanceUID={archive.study}",
        "-k",
        f"SeriesInstanceUID={uid_}",
    )
    output = done.stdout + done.stderr
    expected = {
        dataset_part(data)
        for data in archive.sent.values()
        if dcmread(BytesIO(data)).SeriesInstanceUID == uid_
    }
    assert counts(output).get("Completed") == len(expected), output[-3000:]
    assert {dataset_part(p.read_bytes()) for p in out.iterdir()} == expected


def test_get_rewrites_implicit_as_explicit_when_only_that_is_accepted(
    archive: Archive, tmp_path: Path
) -> None:
    out = tmp_path / "got"
    done = get(
        archive,
        out,
        "+xe",
        "-k",
        "QueryRetrieveLevel=SERIES",
        "-k",
        f"StudyInstanceUID={archive.study}",
        "-k",
        f"SeriesInstanceUID={archive.series[1]}",
    )
    assert counts(done.stdout + done.stderr).get("Completed") == 1
    [received] = [dcmread(p) for p in out.iterdir()]
    sent = dcmread(
        BytesIO(next(d for s, d in archive.sent.items() if s == received.SOPInstanceUID))
    )
    assert received.file_meta.TransferSyntaxUID == ExplicitVRLittleEndian
    assert received.PixelData == sent.PixelData


def test_get_counts_a_refused_syntax_as_failed(archive: Archive, tmp_path: Path) -> None:
    """Without a JPEG context the compressed instance fails: B000 and the failed UID list."""
    out = tmp_path / "got"
    done = get(
        archive,
        out,
        "-k",
        "QueryRetrieveLevel=SERIES",
        "-k",
        f"StudyInstanceUID={archive.study}",
        "-k",
        f"SeriesInstanceUID={archive.series[0]}\\{archive.series[2]}",
    )
    output = done.stdout + done.stderr
    assert counts(output) == {"Completed": 3, "Failed": 1, "Warning": 0}, output
    assert "b000" in output.lower()
    assert len(list(out.iterdir())) == 3


def test_get_single_image(archive: Archive, tmp_path: Path) -> None:
    """getscu proposes explicit VR first in one context per class, so the implicit VR MR
    object is rewritten (values unchanged) and counted as completed."""
    sop = next(s for s, d in archive.sent.items() if dcmread(BytesIO(d)).SOPClassUID == MR)
    out = tmp_path / "one"
    done = get(archive, out, "-k", "QueryRetrieveLevel=IMAGE", "-k", f"SOPInstanceUID={sop}")
    assert counts(done.stdout + done.stderr).get("Completed") == 1
    [received] = [dcmread(p) for p in out.iterdir()]
    sent = dcmread(BytesIO(archive.sent[sop]))
    assert received.SOPInstanceUID == sop
    assert received.PixelData == sent.PixelData
    assert received.PatientName == sent.PatientName
