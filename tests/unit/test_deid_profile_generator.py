"""tools/gen_deid_profile.py turns a transcription of PS3.15 Table E.1-1 into the profile
data, joined with pydicom's dictionary (the shipped JSON is its output, never hand-edited)."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]


def generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "gen_deid_profile", ROOT / "tools" / "gen_deid_profile.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def transcription(extra_basic: str = "") -> str:
    columns = {
        "basic_profile": ("Basic Application Level Confidentiality Profile", "113100"),
        "retain_safe_private": ("Retain Safe Private Option", "113111"),
        "retain_uid": ("Retain UIDs", "113110"),
        "retain_device_id": ("Retain Device Identity Option", "113109"),
        "retain_institution_id": ("Retain Institution Identity Option", "113112"),
        "retain_patient_characteristics": ("Retain Patient Characteristics Option", "113108"),
        "retain_full_dates": ("Retain ... Full Dates Option", "113106"),
        "retain_modified_dates": ("Retain ... Modified Dates Option", "113107"),
        "clean_descriptors": ("Clean Descriptors Option", "113105"),
        "clean_structured_content": ("Clean Structured Content Option", "113104"),
        "clean_graphics": ("Clean Graphics Option", "113103"),
    }
    rules = {
        "basic_profile": [
            '(SingleTag("00100010"), ActionCodes.EMPTY)',
            '(SingleTag("00080018"), ActionCodes.UID)',
            '(SingleTag("00080020"), ActionCodes.EMPTY)',
            '(SingleTag("00081030"), ActionCodes.REMOVE)',
            '(SingleTag("00181000"), ActionCodes.REMOVE_OR_EMPTY_OR_DUMMY)',
            '(RepeatingGroup("60xx3000"), ActionCodes.REMOVE)',
            "(PrivateTags(), ActionCodes.REMOVE)",
            *([extra_basic] if extra_basic else []),
        ],
        "retain_uid": ['(SingleTag("00080018"), ActionCodes.KEEP)'],
        "retain_modified_dates": ['(SingleTag("00080020"), ActionCodes.CLEAN)'],
        "clean_descriptors": ['(SingleTag("00081030"), ActionCodes.CLEAN)'],
    }
    text = '"""Scraped.\n\nscrape date: 2024-09-19\n"""\n'
    for variable, (name, code) in columns.items():
        body = ", ".join(rules.get(variable, []))
        text += f'{variable} = RawNemaRuleSet(name="{name}", code="{code}", rules=[{body}])\n'
    return text


def test_the_table_is_parsed_and_joined_with_the_dictionary() -> None:
    gen = generator()
    columns, date = gen.parse(transcription())
    profile = gen.build(columns, date)
    assert date == "2024-09-19" and "2024-09-19" in profile["source"]
    name = profile["attributes"]["00100010"]
    assert name == {"keyword": "PatientName", "name": "Patient's Name", "vr": "PN", "basic": "Z"}
    sop = profile["attributes"]["00080018"]
    assert sop["keyword"] == "SOPInstanceUID" and sop["basic"] == "U"
    assert sop["retain-uids"] == "K"
    assert profile["attributes"]["00080020"]["retain-modified-dates"] == "C"
    assert profile["attributes"]["00181000"]["basic"] == "X/Z/D"
    assert profile["groups"] == {"60XX3000": {"basic": "X"}}
    assert profile["private"] == {"basic": "X"}
    assert profile["methods"]["retain-uids"] == {"code": "113110", "meaning": "Retain UIDs"}


def test_a_malformed_transcription_is_refused() -> None:
    gen = generator()
    with pytest.raises(KeyError):
        gen.parse(transcription('(SingleTag("00100020"), ActionCodes.SHRED)'))
    with pytest.raises(ValueError, match="missing"):
        gen.parse('basic_profile = RawNemaRuleSet(name="x", code="1", rules=[])\n')
