"""Modality Worklist C-FIND (PS3.4 Annex K): identifiers to match keys, items to responses.

The Modality Worklist Information Model (K.6.1) has a single level: every key of the request
is matched against the worklist item, with the same matcher as every other query
(`domain.matching`, PS3.4 C.2.2.2; K.2.2.1.1 states the same rules). The Scheduled Procedure
Step attributes sit in the Scheduled Procedure Step Sequence (0040,0100), so most matching is
Sequence Matching (C.2.2.2.6) on its one item: Scheduled Station AE Title, Modality, Scheduled
Procedure Step Start Date and Time, Scheduled Performing Physician's Name (K.6.1.2.2 required
matching keys). Keys are read by `cfind.key_matcher`: an invalid value is A900.

Not supported: combined date-and-time range matching of Scheduled Procedure Step Start Date
and Time (C.2.2.2.5.1: the date and the time are matched separately here), and Extended
Negotiation (fuzzy or relational matching).
"""

from __future__ import annotations

from dataclasses import dataclass

from hounsfield.domain.cfind import RequestedKey, echo_keys, is_key, key_matcher
from hounsfield.domain.levels import SPECIFIC_CHARACTER_SET
from hounsfield.domain.matching import matches
from hounsfield.domain.model import DicomJson
from hounsfield.domain.query import MatchKey, Universal

SCHEDULED_PROCEDURE_STEP_SEQUENCE = "00400100"
#: Modality Worklist Information Model - FIND (PS3.4 K.6.1.2, PS3.6 Annex A).
WORKLIST_FIND = "1.2.840.10008.5.1.4.31"


@dataclass(frozen=True, slots=True)
class WorklistRequest:
    """A worklist query understood: keys to match and keys to return."""

    keys: tuple[MatchKey, ...]
    requested: tuple[RequestedKey, ...]
    character_set: tuple[str, ...] = ()

    def matches(self, item: DicomJson) -> bool:
        """Whether a worklist item matches every key (PS3.4 K.2.2.1.1)."""
        return matches(self.keys, item)


def parse_worklist(identifier: DicomJson) -> WorklistRequest:
    """Read a Modality Worklist C-FIND identifier; `QueryRetrieveError` A900 when invalid."""
    keys: list[MatchKey] = []
    requested: list[RequestedKey] = []
    for tag, element in sorted(identifier.items()):
        if not is_key(tag):
            continue
        matcher, wanted = key_matcher(tag, element)
        requested.append(wanted)
        if not isinstance(matcher, Universal):
            keys.append(MatchKey(tag, wanted.vr, matcher))
    charset = tuple(
        str(v).strip() for v in identifier.get(SPECIFIC_CHARACTER_SET, {}).get("Value") or ()
    )
    return WorklistRequest(tuple(keys), tuple(requested), charset)


def worklist_response(item: DicomJson, request: WorklistRequest) -> DicomJson:
    """The identifier of one pending response: the requested keys with the item's values
    (zero length when absent, K.6.1.1.3 / C.4.1.1.3.2) and the Specific Character Set."""
    return dict(sorted(echo_keys(item, request.requested, request.character_set).items()))
