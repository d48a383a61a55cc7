"""`python -m bench.walk`: the ingest header walk against pydicom, per 512² CT object.

DESIGN §1 key idea 1 rests on one figure: building an instance's DICOM JSON from its bytes must
cost well under a millisecond, where pydicom (dcmread + to_json_dict) costs several. Two
objects are timed: the benchmark's synthetic CT slice (bench.data, a lean header) and
pydicom's CT_small.dcm grown to 512² (a scanner header of ~260 elements with private tags).
Figures are best-of-5 means, printed as milliseconds and as a ratio.
"""

from __future__ import annotations

import io
import timeit
from collections.abc import Callable

import pydicom
from pydicom.data import get_testdata_file

from bench.data import CtSeriesSpec, ct_instances
from hounsfield.domain.dicomwalk import walk


def scanner_ct() -> bytes:
    ds = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    ds.Rows = ds.Columns = 512
    ds.PixelData = bytes(512 * 512 * 2)
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    return out.getvalue()


def best(fn: Callable[[], object], number: int) -> float:
    """Milliseconds per call, best of five runs of `number` calls."""
    return min(timeit.repeat(fn, number=number, repeat=5)) / number * 1e3


def measure(name: str, data: bytes) -> None:
    def ours() -> None:
        walk(io.BytesIO(data))

    def theirs() -> None:
        pydicom.dcmread(io.BytesIO(data)).to_json_dict(1024, lambda elem: "bulkdata")

    mine, reference = best(ours, 300), best(theirs, 50)
    print(
        f"{name:<28} walk {mine:6.3f} ms   pydicom {reference:6.3f} ms   {reference / mine:5.1f}x"
    )


def main() -> None:
    synthetic = next(iter(ct_instances(CtSeriesSpec(studies=1, slices=1)))).data
    measure("synthetic CT 512² (bench)", synthetic)
    measure("CT_small grown to 512²", scanner_ct())


if __name__ == "__main__":
    main()
