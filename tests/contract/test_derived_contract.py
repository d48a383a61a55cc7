"""Derived copies on every index adapter: recorded only for committed instances, replaced in
place, listed for integrity checks, and deleted with their instance, whose delete returns the
copies' blob keys so that no blob is orphaned."""

from __future__ import annotations

from hounsfield.domain.model import PixelLayout
from hounsfield.ports.index import DerivedCopy, IndexStore
from tests.factories import make_new_instance as make
from tests.factories import new_uid

HTJ2K = "1.2.840.10008.1.2.4.201"


def copy_of(key: str, size: int = 100) -> DerivedCopy:
    layout = PixelLayout(
        value_offset=400, value_length=size, encapsulated=True, frames=(((416, 50),), ((474, 40),))
    )
    return DerivedCopy("htj2k", HTJ2K, key, size + 400, "ab" * 32, layout)


def test_copies_are_recorded_replaced_and_deleted_with_their_instance(index: IndexStore) -> None:
    study = new_uid()
    a, b = make(study_uid=study), make(study_uid=study)
    index.begin([a, b])
    index.commit([a, b], [])
    assert index.derived("default", a.sop_uid, "htj2k") is None
    assert index.put_derived("default", a.sop_uid, copy_of("a.htj2k"))
    assert index.derived("default", a.sop_uid, "htj2k") == copy_of("a.htj2k")
    assert index.put_derived("default", a.sop_uid, copy_of("a2.htj2k", 200))
    assert index.derived("default", a.sop_uid, "htj2k") == copy_of("a2.htj2k", 200)
    assert index.put_derived("default", b.sop_uid, copy_of("b.htj2k"))
    assert index.derived("other-partition", a.sop_uid, "htj2k") is None
    assert sorted(index.derived_blob_keys()) == ["a2.htj2k", "b.htj2k"]

    deleted = index.delete("default", study, sop_uid=a.sop_uid)
    assert sorted(deleted.blob_keys) == sorted([a.blob_key, "a2.htj2k"])
    assert index.derived("default", a.sop_uid, "htj2k") is None
    deleted = index.delete("default", study)
    assert sorted(deleted.blob_keys) == sorted([b.blob_key, "b.htj2k"])
    assert index.derived_blob_keys() == []


def test_no_copy_for_a_pending_or_unknown_instance(index: IndexStore) -> None:
    pending = make()
    index.begin([pending])
    assert not index.put_derived("default", pending.sop_uid, copy_of("p.htj2k"))
    assert not index.put_derived("default", new_uid(), copy_of("x.htj2k"))
    assert index.derived_blob_keys() == []
