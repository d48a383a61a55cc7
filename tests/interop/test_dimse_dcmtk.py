"""DCMTK `echoscu` and `storescu` against the real server (PS3.7 9.1.1, 9.1.5; PS3.4 B, A).

Every object sent is then read back through WADO-RS: a PS3.10 file whose File Meta
Information was written by Hounsfield and whose data set is the one storescu sent.
"""

from __future__ import annotations

import subprocess
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydicom.data import get_testdata_file

from hounsfield.domain.implementation import IMPLEMENTATION_CLASS_UID
from tests.builders import make_dataset, to_bytes, uid
from tests.conftest import RunningServer, require_tool, start_server, stop_server
from tests.interop.dimse_support import CORPUS, count_instances, read_part10, retrieve, unique_copy

pytestmark = pytest.mark.services


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    running = start_server(tmp_path_factory.mktemp("dimse-dcmtk") / "data")
    try:
        yield running
    finally:
        stop_server(running)


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, timeout=120, check=False)


def test_echoscu(server: RunningServer) -> None:
    tool = require_tool("echoscu")
    result = run(tool, "-aec", server.ae_title, "127.0.0.1", str(server.dimse_port))
    assert result.returncode == 0, result.stderr


def test_wrong_called_ae_title_is_rejected(server: RunningServer) -> None:
    tool = require_tool("echoscu")
    result = run(tool, "-aec", "NOT-US", "127.0.0.1", str(server.dimse_port))
    assert result.returncode != 0
    assert "Called AE Title Not Recognized" in result.stderr
    assert "Rejected Permanent" in result.stderr


@pytest.mark.parametrize(("name", "option"), CORPUS, ids=[name for name, _ in CORPUS])
def test_storescu_round_trip(server: RunningServer, tmp_path: Path, name: str, option: str) -> None:
    tool = require_tool("storescu")
    path = unique_copy(name, tmp_path)
    sent = read_part10(path)
    result = run(
        tool, "-R", option, "-aet", "MODALITY", "-aec", server.ae_title, "127.0.0.1",
        str(server.dimse_port), str(path),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "Store Failed" not in result.stderr, result.stderr

    stored = read_part10(retrieve(server.dicomweb, sent))
    meta = stored.file_meta
    assert meta.TransferSyntaxUID == sent.file_meta.TransferSyntaxUID
    assert meta.MediaStorageSOPClassUID == sent.SOPClassUID
    assert meta.MediaStorageSOPInstanceUID == sent.SOPInstanceUID
    assert meta.ImplementationClassUID == IMPLEMENTATION_CLASS_UID
    assert meta.SourceApplicationEntityTitle.strip() == "MODALITY"
    # storescu re-encodes the data set it read; the archive stores what arrived, which is the
    # same data set element by element.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # some test files carry deliberately odd values
        for element in sent:
            if element.tag == 0xFFFCFFFC or element.tag.element == 0:
                continue  # trailing padding and group lengths may be dropped (PS3.5 7.2, 7.5)
            assert element.tag in stored, element.tag
            assert stored[element.tag].value == element.value, element.keyword


def test_storescu_many_files_on_one_association(server: RunningServer, tmp_path: Path) -> None:
    tool = require_tool("storescu")
    paths = [unique_copy("CT_small.dcm", tmp_path) for _ in range(25)]
    before = count_instances(server.dicomweb, Modality="CT")
    result = run(
        tool, "-aec", server.ae_title, "127.0.0.1", str(server.dimse_port), *map(str, paths)
    )
    assert result.returncode == 0, result.stderr
    assert count_instances(server.dicomweb, Modality="CT") == before + 25


def test_storescu_same_instance_twice_is_success(server: RunningServer, tmp_path: Path) -> None:
    """Duplicates under keep-first answer 0000 (docs/conformance.md)."""
    tool = require_tool("storescu")
    path = unique_copy("rtplan.dcm", tmp_path)
    for _ in range(2):
        result = run(tool, "-aec", server.ae_title, "127.0.0.1", str(server.dimse_port), str(path))
        assert result.returncode == 0, result.stderr
        assert "Store Failed" not in result.stderr


def test_missing_series_uid_is_a900_with_a_comment(server: RunningServer) -> None:
    """PS3.4 B.2.3: a data set without a required UID does not match its SOP class."""
    tool = require_tool("storescu")
    path = get_testdata_file("JPEGLSNearLossless_08.dcm")  # has no Series Instance UID
    assert path is not None
    result = run(
        tool, "-d", "-R", "-xu", "-aec", server.ae_title, "127.0.0.1", str(server.dimse_port),
        path,
    )  # fmt: skip
    assert "DIMSE Status                  : 0xa900" in result.stderr, result.stderr[-2000:]
    assert "missing required attribute SeriesInstanceUID" in result.stderr


def test_truncated_file_is_answered_and_the_server_keeps_serving(server: RunningServer) -> None:
    tool = require_tool("storescu")
    path = get_testdata_file("rtplan_truncated.dcm")
    assert path is not None
    result = run(tool, "-R", "-aec", server.ae_title, "127.0.0.1", str(server.dimse_port), path)
    # storescu may refuse to read the file itself; either way the server stays healthy.
    echo = run(
        require_tool("echoscu"), "-aec", server.ae_title, "127.0.0.1", str(server.dimse_port)
    )
    assert echo.returncode == 0, (result.stderr, echo.stderr)


def test_twenty_concurrent_associations_lose_nothing(server: RunningServer, tmp_path: Path) -> None:
    """20 storescu processes, 10 instances each, all at once (issue 3). DCMTK rather than
    threads of pynetdicom, whose SCU loses responses when many associations run in threads
    of one process (pynetdicom issue #850)."""
    tool = require_tool("storescu")
    study = uid()
    folders = []
    for index in range(20):
        folder = tmp_path / str(index)
        folder.mkdir()
        series = uid()
        for n in range(10):
            data = to_bytes(make_dataset(study_uid=study, series_uid=series, instance_number=n))
            (folder / f"{n}.dcm").write_bytes(data)
        folders.append(folder)
    processes = [
        subprocess.Popen(
            [
                tool,
                "-aec",
                server.ae_title,
                "-aet",
                f"SCU{index}",
                "127.0.0.1",
                str(server.dimse_port),
                *map(str, sorted(folder.iterdir())),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for index, folder in enumerate(folders)
    ]
    outputs = [process.communicate(timeout=120)[0] for process in processes]
    assert [p.returncode for p in processes] == [0] * 20, outputs
    assert count_instances(server.dicomweb, StudyInstanceUID=study) == 200
