"""C-MOVE/C-GET identifiers and the final status of sub-operations (PS3.4 C.4.2, C.4.3)."""

from __future__ import annotations

import warnings
from typing import Any

import pytest
from pydicom.dataset import Dataset
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_dataset

from hounsfield.domain.cfind import decode_identifier
from hounsfield.domain.cretrieve import RetrieveRequest, parse_retrieve
from hounsfield.domain.model import DicomJson, Level
from hounsfield.domain.qrmodel import (
    CANCEL,
    IDENTIFIER_DOES_NOT_MATCH_SOP_CLASS,
    SUCCESS,
    UNABLE_TO_PERFORM_SUBOPERATIONS,
    WARNING_SUBOPERATIONS,
    Model,
    QueryRetrieveError,
    SubOperations,
    final_status,
)
from hounsfield.domain.query import SingleValue, UidList

PR, SR = Model.PATIENT_ROOT, Model.STUDY_ROOT


def ident(level: str | None, **keys: Any) -> DicomJson:
    ds = Dataset()
    if level is not None:
        ds.QueryRetrieveLevel = level
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for keyword, value in keys.items():
            setattr(ds, keyword, value)
        fp = DicomBytesIO()
        fp.is_little_endian = True
        fp.is_implicit_VR = True
        write_dataset(fp, ds)
    return decode_identifier(fp.getvalue(), "1.2.840.10008.1.2")


def refused(identifier: DicomJson, model: Model = SR) -> QueryRetrieveError:
    with pytest.raises(QueryRetrieveError) as caught:
        parse_retrieve(identifier, model)
    assert caught.value.status == IDENTIFIER_DOES_NOT_MATCH_SOP_CLASS
    return caught.value


def test_study_retrieve_takes_a_list_of_uids() -> None:
    request = parse_retrieve(ident("STUDY", StudyInstanceUID=["1.2", "1.3"]), SR)
    assert request == RetrieveRequest(SR, Level.STUDY, study_uids=("1.2", "1.3"))
    assert request.keys()[0].matcher == UidList(("1.2", "1.3"))


def test_patient_retrieve_needs_a_single_patient_id() -> None:
    request = parse_retrieve(ident("PATIENT", PatientID="P1"), PR)
    assert request.patient_id == "P1"
    assert request.keys()[0].matcher == SingleValue("P1")
    assert refused(ident("PATIENT"), PR).offending == ("00100020",)
    assert refused(ident("PATIENT", PatientID="P*"), PR).offending == ("00100020",)
    assert refused(ident("PATIENT", PatientID="P1"), SR).offending == ("00080052",)


def test_retrieve_level_key_is_required() -> None:
    assert refused(ident("SERIES", StudyInstanceUID="1.2")).offending == ("0020000E",)
    assert refused(ident("IMAGE", SOPInstanceUID="")).offending == ("00080018",)
    assert refused(ident(None, StudyInstanceUID="1.2")).offending == ("00080052",)


def test_parent_keys_are_optional_single_values() -> None:
    request = parse_retrieve(ident("IMAGE", SOPInstanceUID=["1.5", "1.6"]), SR)
    assert request.sop_uids == ("1.5", "1.6")
    assert request.study_uids == ()
    full = parse_retrieve(
        ident("SERIES", PatientID="P1", StudyInstanceUID="1.2", SeriesInstanceUID="1.3"), PR
    )
    assert (full.patient_id, full.study_uids, full.series_uids) == ("P1", ("1.2",), ("1.3",))
    assert refused(
        ident("SERIES", StudyInstanceUID=["1.2", "1.4"], SeriesInstanceUID="1.3")
    ).offending == ("0020000D",)


def test_study_root_accepts_a_patient_id_constraint() -> None:
    request = parse_retrieve(ident("STUDY", PatientID="P1", StudyInstanceUID="1.2"), SR)
    assert request.patient_id == "P1"


def test_other_keys_with_values_are_refused_empty_ones_ignored() -> None:
    assert refused(ident("STUDY", StudyInstanceUID="1.2", StudyDate="20240101")).offending == (
        "00080020",
    )
    assert refused(ident("STUDY", StudyInstanceUID="1.2", SeriesInstanceUID="1.3")).offending == (
        "0020000E",
    )
    request = parse_retrieve(ident("STUDY", StudyInstanceUID="1.2", PatientName=""), SR)
    assert request.study_uids == ("1.2",)


@pytest.mark.parametrize(
    ("ops", "cancelled", "status"),
    [
        (SubOperations(), False, SUCCESS),
        (SubOperations(completed=3), False, SUCCESS),
        (SubOperations(completed=2, failed=1), False, WARNING_SUBOPERATIONS),
        (SubOperations(completed=0, warning=2), False, WARNING_SUBOPERATIONS),
        (SubOperations(failed=3), False, UNABLE_TO_PERFORM_SUBOPERATIONS),
        (SubOperations(failed=1, warning=1), False, WARNING_SUBOPERATIONS),
        (SubOperations(remaining=2, completed=1), True, CANCEL),
        (SubOperations(remaining=0, completed=3), True, SUCCESS),
    ],
)
def test_final_status(ops: SubOperations, cancelled: bool, status: int) -> None:
    assert final_status(ops, cancelled=cancelled) == status


def test_final_responses_carry_no_remaining_count() -> None:
    ops = SubOperations(remaining=1, completed=2, failed=3, warning=4)
    assert "NumberOfRemainingSuboperations" not in ops.command(final=True)
    assert ops.command()["NumberOfRemainingSuboperations"] == 1


def test_models_know_their_sop_classes() -> None:
    assert Model.for_sop_class("1.2.840.10008.5.1.4.1.2.2.3") == (SR, "get")
    assert Model.for_sop_class("1.2.840.10008.5.1.4.1.2.1.2") == (PR, "move")
    assert Model.for_sop_class("1.2.3") is None
