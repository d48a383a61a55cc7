"""DICOM JSON (PS3.18 F.2) to the Native DICOM Model XML (PS3.19 A.1).

The archive keeps DICOM JSON as its one prebuilt representation; XML responses are produced from
it on request, which keeps the two representations equal by construction.
"""

from __future__ import annotations

import re
from typing import Any
from xml.sax.saxutils import escape, quoteattr

from pydicom.datadict import keyword_for_tag

from hounsfield.domain.model import DicomJson

NAMESPACE = "http://dicom.nema.org/PS3.19/models/NativeDICOM"
_PN_COMPONENTS = ("FamilyName", "GivenName", "MiddleName", "NamePrefix", "NameSuffix")
# Characters that XML 1.0 cannot hold even as references (XML 1.0 2.2), but DICOM text can
# (FF and ESC in ST, LT and UT, PS3.5 6.1.3).
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def _text(value: str) -> str:
    """Character data: escaped, CR as a reference so that parsers keep CR LF (XML 1.0 2.11),
    and what XML cannot hold replaced by U+FFFD so that the document stays well-formed."""
    return _NOT_XML.sub("\ufffd", escape(value, {"\r": "&#13;"}))


def _person_name(number: int, value: dict[str, str]) -> str:
    groups = []
    for group in ("Alphabetic", "Ideographic", "Phonetic"):
        text = value.get(group)
        if text is None:
            continue
        components = text.split("^")
        inner = "".join(
            f"<{name}>{_text(part)}</{name}>"
            for name, part in zip(_PN_COMPONENTS, components, strict=False)
            if part
        )
        groups.append(f"<{group}>{inner}</{group}>")
    return f'<PersonName number="{number}">{"".join(groups)}</PersonName>'


def _attribute(tag: str, element: dict[str, Any]) -> str:
    vr = element.get("vr", "UN")
    keyword = keyword_for_tag(int(tag, 16)) if tag[4:] != "0000" else ""
    open_tag = f'<DicomAttribute tag="{tag}" vr="{vr}"'
    if keyword:
        open_tag += f' keyword="{keyword}"'
    body: list[str] = []
    if "Value" in element:
        for number, value in enumerate(element["Value"], start=1):
            if vr == "SQ":
                body.append(f'<Item number="{number}">{_dataset(value)}</Item>')
            elif vr == "PN" and isinstance(value, dict):
                body.append(_person_name(number, value))
            elif value is None:
                body.append(f'<Value number="{number}"/>')
            else:
                body.append(f'<Value number="{number}">{_text(str(value))}</Value>')
    elif "BulkDataURI" in element:
        body.append(f"<BulkData uri={quoteattr(element['BulkDataURI'])}/>")
    elif "InlineBinary" in element:
        body.append(f"<InlineBinary>{element['InlineBinary']}</InlineBinary>")
    return f"{open_tag}>{''.join(body)}</DicomAttribute>"


def _dataset(dataset: DicomJson) -> str:
    return "".join(_attribute(tag, dataset[tag]) for tag in sorted(dataset))


def to_xml(dataset: DicomJson) -> bytes:
    """One data set as a PS3.19 NativeDicomModel document, UTF-8."""
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<NativeDicomModel xmlns="{NAMESPACE}">{_dataset(dataset)}</NativeDicomModel>\n'
    ).encode()
