"""C-MOVE and C-GET identifiers: which entities to retrieve (PS3.4 C.4.2.1.4.1, C.4.3.1.3.1).

A retrieve identifier names entities by their Unique Keys only (C.4.2.2.1 baseline behaviour):

- Query/Retrieve Level (0008,0052) is required and must belong to the model.
- The Unique Key of the retrieve level is required; for STUDY, SERIES and IMAGE it may be a
  List of UIDs (C.2.2.2.2, the Note of C.4.2.1.4.1); Patient ID takes a single value.
- Unique Keys of the levels above may be given, each with a single value; they narrow the
  retrieve. They may also be left out: the archive finds the parents itself (what relational
  retrieve, C.4.2.2.2, would negotiate, and harmless since unique keys are unique).
- In the Study Root model Patient ID is a study-level attribute; many SCUs send it along
  with the Study Instance UID, so a single value is accepted and checked as a constraint.
- Any other key with a value is A900 "Identifier does not match SOP Class": the SCP cannot
  retrieve by it, and ignoring it would retrieve more than was asked for. Zero-length keys
  are ignored, as are Specific Character Set and the Timezone Offset.
"""

from __future__ import annotations

from dataclasses import dataclass

from hounsfield.domain.cfind import fail, is_key, key_matcher, level_of_identifier
from hounsfield.domain.levels import PATIENT_ID
from hounsfield.domain.model import DicomJson, Level
from hounsfield.domain.qrmodel import Model, depth, unique_key
from hounsfield.domain.query import Matcher, MatchKey, SingleValue, UidList, Universal


@dataclass(frozen=True, slots=True)
class RetrieveRequest:
    """What a C-MOVE/C-GET asks for: the level and the unique keys given for each level."""

    model: Model
    level: Level
    patient_id: str | None = None
    study_uids: tuple[str, ...] = ()
    series_uids: tuple[str, ...] = ()
    sop_uids: tuple[str, ...] = ()

    def keys(self) -> tuple[MatchKey, ...]:
        """The request as query keys, to find the entities at `level` through the index."""
        keys: list[MatchKey] = []
        if self.patient_id is not None:
            keys.append(MatchKey(PATIENT_ID, "LO", SingleValue(self.patient_id)))
        for level, uids in (
            (Level.STUDY, self.study_uids),
            (Level.SERIES, self.series_uids),
            (Level.IMAGE, self.sop_uids),
        ):
            if uids:
                matcher = SingleValue(uids[0]) if len(uids) == 1 else UidList(uids)
                keys.append(MatchKey(unique_key(level), "UI", matcher))
        return tuple(keys)


def _values(matcher: Matcher) -> tuple[str, ...]:
    if isinstance(matcher, SingleValue):
        return (matcher.value,)
    if isinstance(matcher, UidList):
        return matcher.uids
    return ()


def parse_retrieve(identifier: DicomJson, model: Model) -> RetrieveRequest:
    """Read a C-MOVE/C-GET identifier (rules in the module docstring); A900 on violations."""
    level = level_of_identifier(identifier, model)
    given: dict[Level, tuple[str, ...]] = {}
    patient_id: str | None = None
    for tag, element in sorted(identifier.items()):
        if not is_key(tag):
            continue
        matcher, _ = key_matcher(tag, element)
        if isinstance(matcher, Universal):
            continue
        owner = model.level_of(tag, level)
        if tag == PATIENT_ID and model is Model.STUDY_ROOT:
            owner = Level.PATIENT
        if tag != unique_key(owner) or depth(owner) > depth(level):
            raise fail(f"({tag}) is not a unique key of the {level.value} retrieve", tag)
        single = isinstance(matcher, SingleValue)
        if not single and (owner is not level or owner is Level.PATIENT):
            raise fail(f"unique key ({tag}) needs a single value here", tag)
        if not isinstance(matcher, SingleValue | UidList):
            raise fail(f"unique key ({tag}): single value or UID list only", tag)
        if owner is Level.PATIENT:
            patient_id = _values(matcher)[0]
        else:
            given[owner] = _values(matcher)
    if level is Level.PATIENT and patient_id is None:
        raise fail("retrieve at PATIENT level needs Patient ID (0010,0020)", PATIENT_ID)
    if level is not Level.PATIENT and level not in given:
        tag = unique_key(level)
        raise fail(f"retrieve at {level.value} level needs ({tag})", tag)
    return RetrieveRequest(
        model=model,
        level=level,
        patient_id=patient_id,
        study_uids=given.get(Level.STUDY, ()),
        series_uids=given.get(Level.SERIES, ()),
        sop_uids=given.get(Level.IMAGE, ()),
    )
