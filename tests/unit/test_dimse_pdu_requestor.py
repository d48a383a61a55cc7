"""The requestor side of the A-ASSOCIATE codec (PS3.8 9.3.2-9.3.4, 9.3.8), cross-checked with
pynetdicom's PDU classes, and the data set source of the Storage SCU (PS3.10 7.1)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pynetdicom.pdu import A_ASSOCIATE_AC, A_ASSOCIATE_RQ
from pynetdicom.pdu_primitives import (
    A_ASSOCIATE,
    ImplementationClassUIDNotification,
    ImplementationVersionNameNotification,
    MaximumLengthNotification,
)
from pynetdicom.presentation import PresentationContext
from pynetdicom.transport import AddressInformation

from hounsfield.adapters.dimse_outgoing import open_data_set
from hounsfield.domain.pdu import (
    AbortReason,
    AbortSource,
    ContextResult,
    ContextResultCode,
    PduError,
    ProposedContext,
    RejectResult,
    RejectSource,
    decode_associate_rq,
    encode_abort,
    encode_associate_ac,
    encode_reject,
)
from hounsfield.domain.pdu_requestor import (
    ae_title_field,
    decode_associate_ac,
    describe_abort,
    describe_reject,
    encode_associate_rq,
)
from hounsfield.ports.dicom_network import OutgoingObject
from tests.builders import make_dataset, to_bytes
from tests.interop.dimse_support import dataset_part

CT = "1.2.840.10008.5.1.4.1.1.2"
IMPLICIT = "1.2.840.10008.1.2"
EXPLICIT = "1.2.840.10008.1.2.1"
CONTEXTS = [
    ProposedContext(1, CT, [EXPLICIT]),
    ProposedContext(3, CT, [IMPLICIT]),
    ProposedContext(5, "1.2.3.999", [IMPLICIT]),
]


def request() -> bytes:
    return encode_associate_rq(
        called_ae="STORESCP",
        calling_ae="HOUNSFIELD",
        contexts=CONTEXTS,
        max_length=32768,
        implementation_class_uid="2.25.42",
        implementation_version_name="HOUNSFIELD_01",
    )


def test_associate_rq_is_what_pynetdicom_reads() -> None:
    rq = A_ASSOCIATE_RQ()
    rq.decode(request())
    assert (rq.called_ae_title, rq.calling_ae_title) == ("STORESCP", "HOUNSFIELD")
    assert rq.application_context_name == "1.2.840.10008.3.1.1.1"
    proposed = [
        (c.context_id, c.abstract_syntax, c.transfer_syntax) for c in rq.presentation_context
    ]
    assert proposed == [(1, CT, [EXPLICIT]), (3, CT, [IMPLICIT]), (5, "1.2.3.999", [IMPLICIT])]
    primitive = rq.to_primitive()
    assert primitive.maximum_length_received == 32768
    assert primitive.implementation_class_uid == "2.25.42"
    version = next(
        i
        for i in primitive.user_information
        if isinstance(i, ImplementationVersionNameNotification)
    )
    assert version.implementation_version_name == "HOUNSFIELD_01"


def test_associate_rq_is_what_our_acceptor_reads() -> None:
    parsed = decode_associate_rq(request()[6:])
    assert (parsed.called_ae, parsed.calling_ae, parsed.max_length) == (
        "STORESCP",
        "HOUNSFIELD",
        32768,
    )
    assert [(c.id, c.abstract_syntax, c.transfer_syntaxes) for c in parsed.contexts] == [
        (c.id, c.abstract_syntax, c.transfer_syntaxes) for c in CONTEXTS
    ]


def pynetdicom_ac(results: list[tuple[int, int, str]], max_length: int) -> bytes:
    primitive = A_ASSOCIATE()
    primitive.application_context_name = "1.2.840.10008.3.1.1.1"
    primitive.calling_ae_title = "HOUNSFIELD"
    primitive.called_ae_title = "STORESCP"
    primitive.calling_presentation_address = AddressInformation("127.0.0.1", 1)
    primitive.called_presentation_address = AddressInformation("127.0.0.1", 2)
    primitive.result = 0
    contexts = []
    for context_id, result, syntax in results:
        context = PresentationContext()
        context.context_id = context_id
        context.result = result
        context.transfer_syntax = [syntax]
        contexts.append(context)
    primitive.presentation_context_definition_results_list = contexts
    length = MaximumLengthNotification()
    length.maximum_length_received = max_length
    impl = ImplementationClassUIDNotification()
    impl.implementation_class_uid = "1.2.276.0.7230010.3.0.3.6.7"
    version = ImplementationVersionNameNotification()
    version.implementation_version_name = "OFFIS_DCMTK_367"
    primitive.user_information = [length, impl, version]
    ac = A_ASSOCIATE_AC()
    ac.from_primitive(primitive)
    encoded: bytes = ac.encode()
    return encoded


def test_decode_a_pynetdicom_associate_ac() -> None:
    data = pynetdicom_ac([(1, 0, EXPLICIT), (3, 0, IMPLICIT), (5, 3, IMPLICIT)], 16384)
    accept = decode_associate_ac(data[6:])
    assert accept.max_length == 16384
    assert accept.implementation_class_uid == "1.2.276.0.7230010.3.0.3.6.7"
    assert accept.implementation_version_name == "OFFIS_DCMTK_367"
    assert accept.results == {
        1: ContextResult(1, ContextResultCode.ACCEPTANCE, EXPLICIT),
        3: ContextResult(3, ContextResultCode.ACCEPTANCE, IMPLICIT),
        5: ContextResult(5, ContextResultCode.ABSTRACT_SYNTAX_NOT_SUPPORTED, IMPLICIT),
    }


def test_decode_our_acceptors_associate_ac() -> None:
    parsed = decode_associate_rq(request()[6:])
    results = [
        ContextResult(1, ContextResultCode.ACCEPTANCE, EXPLICIT),
        ContextResult(3, ContextResultCode.TRANSFER_SYNTAXES_NOT_SUPPORTED, IMPLICIT),
        ContextResult(5, ContextResultCode.ABSTRACT_SYNTAX_NOT_SUPPORTED, IMPLICIT),
    ]
    data = encode_associate_ac(
        parsed,
        results,
        max_length=0,
        implementation_class_uid="2.25.7",
        implementation_version_name="X",
        roles=[],
    )
    accept = decode_associate_ac(data[6:])
    assert accept.max_length == 0
    assert list(accept.results.values()) == results


def test_rejects_and_aborts_are_described_in_the_standards_words() -> None:
    rj = encode_reject(RejectResult.PERMANENT, RejectSource.SERVICE_USER, 7)
    assert (
        describe_reject(rj[6:])
        == "rejected-permanent, service-user: called-AE-title-not-recognized"
    )
    rj = encode_reject(RejectResult.TRANSIENT, RejectSource.PRESENTATION_PROVIDER, 2)
    assert "rejected-transient" in describe_reject(rj[6:])
    assert "local-limit-exceeded" in describe_reject(rj[6:])
    abort = encode_abort(AbortSource.SERVICE_PROVIDER, AbortReason.INVALID_PDU_PARAMETER)
    assert describe_abort(abort[6:]) == "by the service provider (invalid-PDU-parameter-value)"
    assert "service user" in describe_abort(encode_abort(AbortSource.SERVICE_USER)[6:])


@pytest.mark.parametrize("title", ["", "   ", "A" * 17, "BACK\\SLASH", "TAB\tX", "ÆTITLE"])
def test_invalid_ae_titles_are_refused(title: str) -> None:
    with pytest.raises(ValueError, match="invalid AE title"):
        ae_title_field(title)


def test_ae_titles_are_space_padded() -> None:
    assert ae_title_field(" DEST ") == b"DEST" + b" " * 12


def test_context_ids_must_be_odd() -> None:
    with pytest.raises(ValueError, match="odd"):
        encode_associate_rq(
            called_ae="A",
            calling_ae="B",
            contexts=[ProposedContext(2, CT, [IMPLICIT])],
            max_length=0,
            implementation_class_uid="2.25.1",
            implementation_version_name="X",
        )


@settings(max_examples=300)
@given(st.binary(max_size=400))
def test_associate_ac_parser_raises_only_pdu_error(body: bytes) -> None:
    with contextlib.suppress(PduError):
        decode_associate_ac(bytes(68) + body)


# -- the data set source ----------------------------------------------------------------------


def chunked(data: bytes, size: int) -> Iterator[bytes]:
    for at in range(0, len(data), size):
        yield data[at : at + size]


def drain(item: OutgoingObject, piece: int) -> bytes:
    source = open_data_set(item)
    out = bytearray()
    buffer = bytearray(piece)
    while not source.at_end():
        n = source.readinto(memoryview(buffer))
        out += buffer[:n]
    source.close()
    return bytes(out)


@pytest.mark.parametrize(("chunk", "piece"), [(1, 7), (131, 4096), (1 << 20, 16378)])
def test_the_data_set_comes_out_as_stored_whatever_the_chunking(chunk: int, piece: int) -> None:
    data = to_bytes(make_dataset(rows=64, columns=64))
    ds = make_dataset()
    item = OutgoingObject(ds.SOPClassUID, "1.2.3", EXPLICIT, chunks=lambda: chunked(data, chunk))
    assert drain(item, piece) == dataset_part(data)


def test_a_file_is_read_the_same_way(tmp_path: Path) -> None:
    data = to_bytes(make_dataset(rows=300, columns=300), IMPLICIT)
    path = tmp_path / "object.dcm"
    path.write_bytes(data)
    assert drain(OutgoingObject(CT, "1.2.3", IMPLICIT, path=path), 16378) == dataset_part(data)


def test_objects_that_cannot_be_sent_fail_before_sending() -> None:
    data = to_bytes(make_dataset(), EXPLICIT)
    with pytest.raises(ValueError, match=r"is encoded in 1\.2\.840\.10008\.1\.2\.1, not"):
        open_data_set(OutgoingObject(CT, "1.2.3", IMPLICIT, chunks=lambda: iter([data])))
    with pytest.raises(ValueError, match=r"not a PS3\.10 file"):
        open_data_set(OutgoingObject(CT, "1.2.3", EXPLICIT, chunks=lambda: iter([data[128:]])))
    meta_only = data[: len(data) - len(dataset_part(data))]
    with pytest.raises(ValueError, match="no data set"):
        open_data_set(OutgoingObject(CT, "1.2.3", EXPLICIT, chunks=lambda: iter([meta_only])))


def test_an_outgoing_object_has_one_source(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="either a path or chunks"):
        OutgoingObject(CT, "1.2.3", EXPLICIT)
    with pytest.raises(ValueError, match="either a path or chunks"):
        OutgoingObject(CT, "1.2.3", EXPLICIT, path=tmp_path, chunks=lambda: iter([b""]))
