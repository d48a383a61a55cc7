"""What the archive writes, read by DCMTK (an independent implementation): dcmdjpls and
dcmdrle decompress our JPEG-LS and RLE objects to the same pixels, and dciodvfy (dicom3tools)
finds no error in transcoded objects that it does not also find in the originals. They fail
instead of skipping without the tools when HOUNSFIELD_REQUIRE_SERVICES=1."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from hounsfield.services.pixels.syntaxes import (
    EXPLICIT_VR_LE,
    J2K_LOSSLESS,
    JPEG_LS_LOSSLESS,
    RLE_LOSSLESS,
)
from tests.conftest import require_tool
from tests.pixelsupport import PixelArchive, decode_file, pixel_archive

NAMES = ("CT_small.dcm", "SC_rgb_rle_16bit_2frame.dcm", "examples_palette.dcm", "JPGExtended.dcm")
DECOMPRESSORS = {JPEG_LS_LOSSLESS: "dcmdjpls", RLE_LOSSLESS: "dcmdrle"}


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PixelArchive]:
    with pixel_archive(tmp_path_factory.mktemp("dcmtk"), NAMES) as built:
        yield built


@pytest.mark.services
@pytest.mark.parametrize("target", sorted(DECOMPRESSORS))
@pytest.mark.parametrize("name", NAMES)
def test_dcmtk_decompresses_what_the_archive_compresses(
    archive: PixelArchive, tmp_path: Path, name: str, target: str
) -> None:
    tool = require_tool(DECOMPRESSORS[target])
    written = tmp_path / "written.dcm"
    written.write_bytes(b"".join(archive.pixels.transcode(archive.instances[name], target)))
    out = tmp_path / "out.dcm"
    run = subprocess.run(
        [tool, str(written), str(out)], capture_output=True, text=True, check=False
    )
    assert run.returncode == 0, run.stderr
    syntax, frames = decode_file(out.read_bytes())
    assert syntax in (EXPLICIT_VR_LE, "1.2.840.10008.1.2")
    source = archive.pixels.source(archive.instances[name])
    originals = [archive.pixels.decode(source, n).array for n in range(1, source.frame_count + 1)]
    assert len(frames) == len(originals)
    for ours, theirs in zip(originals, frames, strict=True):
        assert np.array_equal(ours, theirs)


def _errors(tool: str, path: Path) -> set[str]:
    run = subprocess.run([tool, str(path)], capture_output=True, text=True, check=False)
    lines = (run.stdout + run.stderr).splitlines()
    # Element positions and transfer syntax names differ between the two files.
    return {line.split(" - ", 1)[-1] for line in lines if line.startswith("Error")}


@pytest.mark.services
# HTJ2K with RPCL options (…4.202) is left out: this dicom3tools release does not know the UID
# and reads such a file as native (DCMTK's dcmdump reads it as encapsulated).
# HTJ2K (…4.201, …4.202) is left out: this dicom3tools release does not know those UIDs and
# reads such files as native; the round trips in tests/golden cover them.
@pytest.mark.parametrize("target", [EXPLICIT_VR_LE, JPEG_LS_LOSSLESS, J2K_LOSSLESS, RLE_LOSSLESS])
def test_dciodvfy_finds_no_new_error(archive: PixelArchive, tmp_path: Path, target: str) -> None:
    tool = require_tool("dciodvfy")
    instance = archive.instances["CT_small.dcm"]
    original = tmp_path / "original.dcm"
    original.write_bytes(b"".join(archive.pixels.retrieve.object_bytes(instance)))
    written = tmp_path / "written.dcm"
    written.write_bytes(b"".join(archive.pixels.transcode(instance, target)))
    assert _errors(tool, written) <= _errors(tool, original)
