"""Golden metadata documents: the walker's DICOM JSON for fixed inputs, checked byte for byte.

A change in these documents changes what every viewer receives, so it must be deliberate:
regenerate with HOUNSFIELD_REGENERATE_GOLDEN=1 and review the diff.
"""

from __future__ import annotations

import os
from pathlib import Path

import orjson
import pydicom
import pytest
from pydicom.data import get_testdata_file

from hounsfield.domain.dicomwalk import walk

HERE = Path(__file__).parent
CASES = {
    "ct_small": "CT_small.dcm",  # explicit VR LE CT with private tags
    "mr_small_bigendian": "MR_small_bigendian.dcm",
    "jpeg2000": "JPEG2000.dcm",  # encapsulated pixel data
    "rtplan": "rtplan.dcm",  # nested sequences
}


def _document(name: str) -> bytes:
    path = get_testdata_file(CASES[name])
    assert path is not None
    with Path(path).open("rb") as fp:
        parsed = walk(fp, require_uids=False)
    return orjson.dumps(parsed.dataset_json, option=orjson.OPT_SORT_KEYS | orjson.OPT_INDENT_2)


@pytest.mark.parametrize("name", sorted(CASES))
def test_metadata_matches_golden(name: str) -> None:
    golden = HERE / f"{name}.metadata.json"
    document = _document(name)
    if os.environ.get("HOUNSFIELD_REGENERATE_GOLDEN") == "1":
        golden.write_bytes(document + b"\n")
    assert document + b"\n" == golden.read_bytes()


@pytest.mark.parametrize("name", sorted(CASES))
def test_golden_agrees_with_pydicom(name: str) -> None:
    """The golden files are not just our own output frozen: pydicom agrees with them."""
    path = get_testdata_file(CASES[name])
    ds = pydicom.dcmread(path)
    expected = ds.to_json_dict(
        bulk_data_threshold=1024,
        bulk_data_element_handler=lambda element: f"bulkdata/{element.tag:08X}",
    )
    golden = orjson.loads((HERE / f"{name}.metadata.json").read_bytes())
    assert {k: v for k, v in golden.items() if "BulkDataURI" not in v} == {
        k: v for k, v in expected.items() if "BulkDataURI" not in v
    }
    assert {k for k, v in golden.items() if "BulkDataURI" in v} == {
        k for k, v in expected.items() if "BulkDataURI" in v
    }
