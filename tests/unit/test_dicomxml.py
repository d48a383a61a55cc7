"""DICOM JSON (PS3.18 F.2) to the Native DICOM Model XML (PS3.19 A.1)."""

from __future__ import annotations

import base64
import xml.etree.ElementTree as ET
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from pydicom.valuerep import PersonName

from hounsfield.frontends.dicomweb.dicomxml import NAMESPACE, to_xml

PROPERTY = settings(max_examples=200, deadline=None)
NS = {"d": NAMESPACE}
PN_COMPONENTS = ("FamilyName", "GivenName", "MiddleName", "NamePrefix", "NameSuffix")


def parse(dataset: dict[str, Any]) -> ET.Element:
    document = to_xml(dataset)
    assert document.startswith(b'<?xml version="1.0" encoding="UTF-8"?>')
    root = ET.fromstring(document)
    assert root.tag == f"{{{NAMESPACE}}}NativeDicomModel"
    return root


def attributes(parent: ET.Element) -> dict[str, ET.Element]:
    found = parent.findall("d:DicomAttribute", NS)
    by_tag = {a.attrib["tag"]: a for a in found}
    assert len(by_tag) == len(found), "a tag appears twice"
    return by_tag


def only(parent: ET.Element, tag: str) -> ET.Element:
    return attributes(parent)[tag]


def local(element: ET.Element) -> str:
    return element.tag.rpartition("}")[2]


def numbers(children: list[ET.Element]) -> list[int]:
    return [int(c.attrib["number"]) for c in children]


# Structure ------------------------------------------------------------------------------------


def test_empty_dataset_is_an_empty_model() -> None:
    root = parse({})
    assert list(root) == []


def test_attribute_has_tag_vr_and_keyword() -> None:
    root = parse({"00100020": {"vr": "LO", "Value": ["PAT-1"]}})
    attribute = only(root, "00100020")
    assert attribute.attrib == {"tag": "00100020", "vr": "LO", "keyword": "PatientID"}
    values = attribute.findall("d:Value", NS)
    assert [(v.attrib["number"], v.text) for v in values] == [("1", "PAT-1")]


def test_private_and_unknown_tags_have_no_keyword() -> None:
    root = parse(
        {
            "00091010": {"vr": "LO", "Value": ["private"]},
            "00090010": {"vr": "LO", "Value": ["CREATOR"]},
        }
    )
    assert "keyword" not in only(root, "00091010").attrib
    assert only(root, "00091010").find("d:Value", NS).text == "private"  # type: ignore[union-attr]


def test_attributes_are_in_tag_order() -> None:
    root = parse(
        {
            "0020000D": {"vr": "UI", "Value": ["1.2"]},
            "00080020": {"vr": "DA", "Value": ["20240101"]},
            "00100010": {"vr": "PN"},
        }
    )
    assert [a.attrib["tag"] for a in root] == ["00080020", "00100010", "0020000D"]


def test_multiple_values_are_numbered_from_one() -> None:
    root = parse({"00200037": {"vr": "DS", "Value": [1, 0, 0, 0, 1.5, -0.25]}})
    values = only(root, "00200037").findall("d:Value", NS)
    assert numbers(values) == [1, 2, 3, 4, 5, 6]
    assert [float(v.text or "") for v in values] == [1, 0, 0, 0, 1.5, -0.25]


def test_empty_attribute_and_null_value() -> None:
    root = parse(
        {
            "00100030": {"vr": "DA"},
            "00080060": {"vr": "CS", "Value": [None, "MR"]},
        }
    )
    assert list(only(root, "00100030")) == []
    values = only(root, "00080060").findall("d:Value", NS)
    assert [(v.attrib["number"], v.text) for v in values] == [("1", None), ("2", "MR")]


def test_special_characters_are_escaped() -> None:
    text = "a < b && c > \"d\" 'e' ]]> <!-- x -->"
    root = parse({"00081030": {"vr": "LO", "Value": [text]}})
    assert only(root, "00081030").find("d:Value", NS).text == text  # type: ignore[union-attr]


def test_control_characters_keep_the_document_well_formed() -> None:
    # ST/LT/UT may hold FF, CR, LF, TAB and ESC (PS3.5 6.1.3); XML 1.0 cannot hold FF or ESC,
    # and parsers turn CR LF into LF. The document must stay parseable and keep the line ends.
    text = "line 1\r\nline 2\x0cpage 2\ttab\x1b$B"
    root = parse({"00204000": {"vr": "LT", "Value": [text]}})
    got = only(root, "00204000").find("d:Value", NS).text  # type: ignore[union-attr]
    assert got == "line 1\r\nline 2\ufffdpage 2\ttab\ufffd$B"


def test_person_name_components_and_groups() -> None:
    root = parse(
        {
            "00100010": {
                "vr": "PN",
                "Value": [
                    {
                        "Alphabetic": "Yamada^Tarou^^Dr.^Jr.",
                        "Ideographic": "山田^太郎",
                        "Phonetic": "やまだ^たろう",
                    },
                    {"Alphabetic": "Doe^John^Q"},
                ],
            }
        }
    )
    attribute = only(root, "00100010")
    names = attribute.findall("d:PersonName", NS)
    assert numbers(names) == [1, 2]
    first = names[0]
    assert [local(g) for g in first] == ["Alphabetic", "Ideographic", "Phonetic"]
    alphabetic = first.find("d:Alphabetic", NS)
    assert alphabetic is not None
    assert {local(c): c.text for c in alphabetic} == {
        "FamilyName": "Yamada",
        "GivenName": "Tarou",
        "NamePrefix": "Dr.",
        "NameSuffix": "Jr.",
    }
    ideographic = first.find("d:Ideographic", NS)
    assert ideographic is not None
    assert [(local(c), c.text) for c in ideographic] == [
        ("FamilyName", "山田"),
        ("GivenName", "太郎"),
    ]
    second = names[1].find("d:Alphabetic", NS)
    assert second is not None
    assert [(local(c), c.text) for c in second] == [
        ("FamilyName", "Doe"),
        ("GivenName", "John"),
        ("MiddleName", "Q"),
    ]


def test_sequence_items_are_numbered_and_nested() -> None:
    root = parse(
        {
            "00081115": {
                "vr": "SQ",
                "Value": [
                    {"0020000E": {"vr": "UI", "Value": ["1.2.3"]}},
                    {},
                    {
                        "00081199": {
                            "vr": "SQ",
                            "Value": [{"00081155": {"vr": "UI", "Value": ["9.8"]}}],
                        }
                    },
                ],
            }
        }
    )
    sequence = only(root, "00081115")
    assert sequence.attrib["keyword"] == "ReferencedSeriesSequence"
    items = sequence.findall("d:Item", NS)
    assert numbers(items) == [1, 2, 3]
    assert only(items[0], "0020000E").find("d:Value", NS).text == "1.2.3"  # type: ignore[union-attr]
    assert list(items[1]) == []
    inner = only(items[2], "00081199").findall("d:Item", NS)
    assert numbers(inner) == [1]
    assert only(inner[0], "00081155").find("d:Value", NS).text == "9.8"  # type: ignore[union-attr]


def test_bulk_data_uri() -> None:
    uri = "http://h/dicom-web/studies/1/series/2/instances/3/bulkdata/7FE00010?a=1&b=2"
    root = parse({"7FE00010": {"vr": "OW", "BulkDataURI": uri}})
    bulk = only(root, "7FE00010").findall("d:BulkData", NS)
    assert [b.attrib["uri"] for b in bulk] == [uri]


def test_inline_binary() -> None:
    encoded = base64.b64encode(b"\x00\x01\xfe\xff").decode()
    root = parse({"00091011": {"vr": "OB", "InlineBinary": encoded}})
    inline = only(root, "00091011").find("d:InlineBinary", NS)
    assert inline is not None
    assert base64.b64decode(inline.text or "") == b"\x00\x01\xfe\xff"


def xml_char(c: str) -> bool:
    """XML 1.0 2.2 Char."""
    return c in "\t\n\r" or " " <= c <= "\ud7ff" or "\ue000" <= c <= "\ufffd" or c > "\uffff"


@PROPERTY
@given(st.lists(st.text(max_size=20), min_size=1, max_size=4))
def test_any_text_value_gives_a_well_formed_document(values: list[str]) -> None:
    root = parse({"00081030": {"vr": "LO", "Value": values}})
    got = only(root, "00081030").findall("d:Value", NS)
    assert numbers(got) == list(range(1, len(values) + 1))
    for xml_value, value in zip(got, values, strict=True):
        expected = "".join(c if xml_char(c) else "\ufffd" for c in value)
        assert (xml_value.text or "") == expected


@PROPERTY
@given(st.lists(st.text(max_size=12), min_size=1, max_size=5))
def test_any_person_name_round_trips(parts: list[str]) -> None:
    parts = ["".join(c for c in p if xml_char(c) and c not in "^=") for p in parts]
    name = "^".join(parts)
    root = parse({"00100010": {"vr": "PN", "Value": [{"Alphabetic": name}]}})
    group = only(root, "00100010").find("d:PersonName/d:Alphabetic", NS)
    assert group is not None
    expected = [(c, p) for c, p in zip(PN_COMPONENTS, parts, strict=False) if p]
    assert [(local(e), e.text) for e in group] == expected


# Semantic round trip against pydicom ---------------------------------------------------------


def make_dataset() -> Dataset:
    ds = Dataset()
    ds.SpecificCharacterSet = "ISO_IR 192"
    ds.PatientName = "Yamada^Tarou^^Dr=山田^太郎=やまだ^たろう"
    ds.PatientID = "ID<&>1"
    ds.PatientBirthDate = "19700101"
    ds.PatientSex = ""
    ds.StudyInstanceUID = "1.2.826.0.1.3680043.2.1125.1"
    ds.StudyDescription = "Chest & abdomen <contrast>"
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
    ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
    ds.PixelSpacing = [0.5, 0.75]
    ds.InstanceNumber = 7
    ds.Rows = 2
    ds.Columns = 2
    ds.BitsAllocated = 16
    ds.SmallestImagePixelValue = 0
    ds.RescaleSlope = "1.5"
    ds.SliceThickness = None
    ds.add(DataElement(0x00181318, "FD", [2.5, -1.0]))  # dB/dt
    ds.add(DataElement(0x00091010, "LO", "PRIVATE VALUE"))
    ds.add(DataElement(0x00091011, "OB", b"\x01\x02\x03\x04"))
    referenced = Dataset()
    referenced.SeriesInstanceUID = "1.2.3.4"
    referenced.ReferencedInstanceSequence = [Dataset(), Dataset()]
    referenced.ReferencedInstanceSequence[0].ReferencedSOPInstanceUID = "1.2.3.4.5"
    referenced.ReferencedInstanceSequence[1].ReferencedSOPInstanceUID = "1.2.3.4.6"
    ds.ReferencedSeriesSequence = [referenced, Dataset()]
    ds.PixelData = b"\x00\x01" * 4
    ds["PixelData"].VR = "OW"
    return ds


def bulk_uri(element: DataElement) -> str:
    return f"http://archive/bulkdata/{element.tag:08X}"


def assert_same(attribute: ET.Element, element: DataElement) -> None:
    """An XML attribute carries the element's tag, VR, keyword and values (PS3.19 A.1)."""
    where = f"{element.tag} {element.keyword}"
    assert attribute.attrib["tag"] == f"{element.tag:08X}", where
    assert attribute.attrib["vr"] == element.VR, where
    assert attribute.attrib.get("keyword", "") == element.keyword, where
    if element.VR == "SQ":
        items = attribute.findall("d:Item", NS)
        assert numbers(items) == list(range(1, len(element.value) + 1)), where
        for item, dataset in zip(items, element.value, strict=True):
            assert_same_dataset(item, dataset)
        return
    if element.VR in ("OB", "OW", "OF", "OD", "OL", "OV", "UN"):
        if len(element.value) >= 8:
            bulk = attribute.find("d:BulkData", NS)
            assert bulk is not None and bulk.attrib["uri"] == bulk_uri(element), where
        else:
            inline = attribute.find("d:InlineBinary", NS)
            assert inline is not None, where
            assert base64.b64decode(inline.text or "") == element.value, where
        return
    if element.VM == 0 or element.value is None or element.value == "":
        assert list(attribute) == [], where
        return
    values = list(element.value) if element.VM > 1 else [element.value]
    if element.VR == "PN":
        names = attribute.findall("d:PersonName", NS)
        assert numbers(names) == list(range(1, len(values) + 1)), where
        for xml_name, name in zip(names, values, strict=True):
            assert_same_name(xml_name, PersonName(name))
        return
    xml_values = attribute.findall("d:Value", NS)
    assert numbers(xml_values) == list(range(1, len(values) + 1)), where
    for xml_value, value in zip(xml_values, values, strict=True):
        text = xml_value.text or ""
        if element.VR in ("DS", "FD", "FL"):
            assert float(text) == float(value), where
        elif element.VR in ("IS", "US", "SS", "UL", "SL", "UV", "SV"):
            assert int(text) == int(value), where
        else:
            assert text == str(value), where


def assert_same_name(xml_name: ET.Element, name: PersonName) -> None:
    groups = {
        "Alphabetic": name.alphabetic,
        "Ideographic": name.ideographic,
        "Phonetic": name.phonetic,
    }
    for group, text in groups.items():
        found = xml_name.find(f"d:{group}", NS)
        if not text:
            assert found is None
            continue
        assert found is not None, group
        expected = {
            component: part
            for component, part in zip(PN_COMPONENTS, text.split("^"), strict=False)
            if part
        }
        assert {local(c): c.text for c in found} == expected, group


def assert_same_dataset(parent: ET.Element, dataset: Dataset) -> None:
    found = attributes(parent)
    assert set(found) == {f"{e.tag:08X}" for e in dataset}
    for element in dataset:
        assert_same(found[f"{element.tag:08X}"], element)


def test_round_trip_against_pydicom() -> None:
    ds = make_dataset()
    dicom_json = ds.to_json_dict(bulk_data_threshold=8, bulk_data_element_handler=bulk_uri)
    root = parse(dicom_json)
    assert_same_dataset(root, ds)


def test_round_trip_checker_sees_differences() -> None:
    # The comparison above is only worth something if it notices a wrong value.
    ds = make_dataset()
    dicom_json = ds.to_json_dict(bulk_data_threshold=8, bulk_data_element_handler=bulk_uri)
    dicom_json["00200013"]["Value"] = [8]
    with pytest.raises(AssertionError):
        assert_same_dataset(parse(dicom_json), ds)
