"""Hypothesis: whatever an SCU sends, the identifier readers answer with a request or a
QueryRetrieveError (a DIMSE status), never another exception (DESIGN.md §6)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from hounsfield.domain.cfind import decode_identifier, parse_find
from hounsfield.domain.cretrieve import parse_retrieve
from hounsfield.domain.mwl import parse_worklist
from hounsfield.domain.qrmodel import Model, QueryRetrieveError

#: (tag, VR) of keys of every level, of several VRs, and a sequence.
KEYS = [
    ("00080052", "CS"),
    ("00080005", "CS"),
    ("00100010", "PN"),
    ("00100020", "LO"),
    ("00100030", "DA"),
    ("0020000D", "UI"),
    ("0020000E", "UI"),
    ("00080018", "UI"),
    ("00080020", "DA"),
    ("00080030", "TM"),
    ("0008002A", "DT"),
    ("00080060", "CS"),
    ("00080061", "CS"),
    ("00200013", "IS"),
    ("00180050", "DS"),
    ("00280010", "US"),
    ("00081030", "LO"),
    ("7FE00010", "OW"),
    ("00091010", "UN"),
]
TEXT = st.text(
    alphabet=st.sampled_from(list("0123456789.-*?\\^= ABCSTUDYIMAGEPATIENTSERIESabcü,+/")),
    max_size=24,
)


def element(vr: str) -> st.SearchStrategy[dict[str, Any]]:
    values: st.SearchStrategy[list[Any]]
    if vr == "PN":
        values = st.lists(st.builds(lambda a: {"Alphabetic": a}, TEXT), max_size=2)
    elif vr in ("IS", "US"):
        values = st.lists(st.one_of(st.integers(-(2**40), 2**40), TEXT), max_size=2)
    elif vr == "DS":
        values = st.lists(st.one_of(st.floats(allow_nan=True), TEXT), max_size=2)
    else:
        values = st.lists(TEXT, max_size=3)
    return st.one_of(
        st.just({"vr": vr}),
        values.map(lambda v: {"vr": vr, "Value": v}),
    )


def sequence() -> st.SearchStrategy[dict[str, Any]]:
    item = st.dictionaries(st.sampled_from(["00400009", "00080060", "00400002"]), element("SH"))
    return st.lists(item, max_size=2).map(lambda items: {"vr": "SQ", "Value": items})


def refusal(read: Callable[[], object]) -> tuple[int, str] | None:
    """(status, comment) of a QueryRetrieveError, None when `read` succeeds; any other
    exception propagates and fails the test."""
    try:
        read()
    except QueryRetrieveError as exc:
        return exc.status, exc.comment
    return None


IDENTIFIERS = st.fixed_dictionaries(
    {},
    optional={
        **{tag: element(vr) for tag, vr in KEYS},
        "00400275": sequence(),
        "00400100": sequence(),
    },
)


@settings(max_examples=400, deadline=None)
@given(IDENTIFIERS, st.sampled_from(list(Model)))
def test_readers_raise_only_dimse_statuses(identifier: dict[str, Any], model: Model) -> None:
    for read in (
        lambda: parse_find(identifier, model),
        lambda: parse_find(identifier, model, relational=True),
        lambda: parse_retrieve(identifier, model),
        lambda: parse_worklist(identifier),
    ):
        refused = refusal(read)
        if refused is not None:
            assert refused[0] in (0xA900, 0xC000)
            assert len(refused[1]) <= 64


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200), st.sampled_from(["1.2.840.10008.1.2", "1.2.840.10008.1.2.1"]))
def test_identifier_bytes_decode_or_c000(data: bytes, syntax: str) -> None:
    refused = refusal(lambda: decode_identifier(data, syntax))
    assert refused is None or refused[0] == 0xC000
