"""The Query/Retrieve information models (PS3.4 C.6) and the statuses their services return.

The tables (SOP Class UIDs, levels top-down, the Unique Key of each level) are data, in
`_standard/query_retrieve.json`; this module reads them and answers the questions C-FIND,
C-MOVE and C-GET ask of a model:

- which levels exist (Study Root has no PATIENT level, PS3.4 C.6.2.1);
- at which level an attribute lives. In the Patient Root model the patient attributes form
  the PATIENT level (C.6.1.1.2); in the Study Root model they are attributes of the STUDY
  level (C.6.2.1.1, Table C.6-5). Attributes the archive computes belong to the level whose
  entity they describe (C.3.4, e.g. Number of Study Related Instances to STUDY), and
  Retrieve AE Title / Instance Availability to whichever level is queried (C.4.1.1.3.2).
"""

from __future__ import annotations

import enum
import functools
import json
from dataclasses import dataclass
from importlib import resources
from typing import Any

from hounsfield.domain.errors import HounsfieldError
from hounsfield.domain.levels import (
    INSTANCE_AVAILABILITY,
    MODALITIES_IN_STUDY,
    NUMBER_OF_PATIENT_RELATED_INSTANCES,
    NUMBER_OF_PATIENT_RELATED_SERIES,
    NUMBER_OF_PATIENT_RELATED_STUDIES,
    NUMBER_OF_SERIES_RELATED_INSTANCES,
    NUMBER_OF_STUDY_RELATED_INSTANCES,
    NUMBER_OF_STUDY_RELATED_SERIES,
    RETRIEVE_AE_TITLE,
    RETRIEVE_URL,
    SOP_CLASSES_IN_STUDY,
    level_tags,
    tag_hex,
)
from hounsfield.domain.model import Level

QUERY_RETRIEVE_LEVEL = "00080052"
FAILED_SOP_INSTANCE_UID_LIST = "00080058"

#: Status codes of the Query/Retrieve services (PS3.4 C.4.1.1.4, C.4.2.1.5, C.4.3.1.4).
SUCCESS = 0x0000
PENDING = 0xFF00
CANCEL = 0xFE00
WARNING_SUBOPERATIONS = 0xB000  # sub-operations complete, one or more failures or warnings
OUT_OF_RESOURCES = 0xA700  # C-FIND: refused, out of resources
UNABLE_TO_CALCULATE_MATCHES = 0xA701  # C-MOVE/C-GET: unable to calculate number of matches
UNABLE_TO_PERFORM_SUBOPERATIONS = 0xA702  # C-MOVE/C-GET: unable to perform sub-operations
MOVE_DESTINATION_UNKNOWN = 0xA801
IDENTIFIER_DOES_NOT_MATCH_SOP_CLASS = 0xA900
UNABLE_TO_PROCESS = 0xC000

#: Attributes answered for any level (PS3.4 C.4.1.1.3.2, C.6.1.1.x "Retrieve AE Title").
_ANY_LEVEL = frozenset({RETRIEVE_AE_TITLE, INSTANCE_AVAILABILITY, RETRIEVE_URL})
_COMPUTED_LEVEL = {
    NUMBER_OF_PATIENT_RELATED_STUDIES: Level.PATIENT,
    NUMBER_OF_PATIENT_RELATED_SERIES: Level.PATIENT,
    NUMBER_OF_PATIENT_RELATED_INSTANCES: Level.PATIENT,
    MODALITIES_IN_STUDY: Level.STUDY,
    SOP_CLASSES_IN_STUDY: Level.STUDY,
    NUMBER_OF_STUDY_RELATED_SERIES: Level.STUDY,
    NUMBER_OF_STUDY_RELATED_INSTANCES: Level.STUDY,
    NUMBER_OF_SERIES_RELATED_INSTANCES: Level.SERIES,
}


class QueryRetrieveError(HounsfieldError):
    """A request the SCP refuses, with the status and the Error Comment (0000,0902) and
    Offending Element (0000,0901) PS3.7 C.4.1.1 lets the response carry."""

    def __init__(self, status: int, comment: str, offending: tuple[str, ...] = ()) -> None:
        super().__init__(comment)
        self.status = status
        # PS3.7 9.1.2.1.6: Error Comment is LO, at most 64 characters.
        self.comment = comment[:64]
        self.offending = offending


class Model(enum.Enum):
    """A Query/Retrieve information model (PS3.4 C.6.1, C.6.2)."""

    PATIENT_ROOT = "PATIENT_ROOT"
    STUDY_ROOT = "STUDY_ROOT"

    @property
    def levels(self) -> tuple[Level, ...]:
        """Levels from the top of the hierarchy down."""
        return _model_levels(self)

    def sop_class(self, service: str) -> str:
        """The SOP Class UID of "find", "move" or "get" on this model."""
        uid = _tables()["models"][self.value][service]
        assert isinstance(uid, str)
        return uid

    def level_of(self, tag: str, query_level: Level) -> Level:
        """The level whose entity carries `tag` in this model (module docstring)."""
        if tag in _ANY_LEVEL:
            return query_level
        computed = _COMPUTED_LEVEL.get(tag)
        if computed is not None:
            level = computed
        elif tag in level_tags("patient"):
            level = Level.PATIENT
        elif tag in level_tags("study"):
            level = Level.STUDY
        elif tag in level_tags("series"):
            level = Level.SERIES
        else:
            level = Level.IMAGE
        if level is Level.PATIENT and self is Model.STUDY_ROOT:
            return Level.STUDY
        return level

    @classmethod
    def for_sop_class(cls, uid: str) -> tuple[Model, str] | None:
        """(model, service) of a Q/R SOP Class UID, or None when it is none of them."""
        return _by_sop_class().get(uid)


def unique_key(level: Level) -> str:
    """The tag of the Unique Key of a level (PS3.4 C.6.1.1, C.6.2.1)."""
    return tag_hex(_tables()["unique_keys"][level.value])


def depth(level: Level) -> int:
    """PATIENT 0, STUDY 1, SERIES 2, IMAGE 3: comparable across models."""
    return list(Level).index(level)


@dataclass(frozen=True, slots=True)
class SubOperations:
    """The sub-operation counts of a C-MOVE or C-GET (PS3.4 C.4.2.1.4.2, PS3.7 9.1.3/9.1.4)."""

    remaining: int = 0
    completed: int = 0
    failed: int = 0
    warning: int = 0

    def command(self, *, final: bool = False) -> dict[str, int]:
        """The Number of ... Sub-operations elements of a response.

        A final Success/Warning/Failure response carries no Number of Remaining
        Sub-operations (PS3.7 Table 9.1-4 note: it is present for Pending and Cancel only).
        """
        counts = {
            "NumberOfCompletedSuboperations": self.completed,
            "NumberOfFailedSuboperations": self.failed,
            "NumberOfWarningSuboperations": self.warning,
        }
        if not final:
            counts["NumberOfRemainingSuboperations"] = self.remaining
        return counts


def final_status(ops: SubOperations, *, cancelled: bool = False) -> int:
    """The status of the final C-MOVE/C-GET response (PS3.4 C.4.2.3.1, C.4.3.3.1).

    Cancel (FE00) when cancelled before the sub-operations ran out; otherwise Success when
    none failed or warned, Failure A702 ("unable to perform sub-operations") when every one
    failed, and Warning B000 otherwise (some completed, or all completed with warnings).
    """
    if cancelled and ops.remaining:
        return CANCEL
    if not ops.failed and not ops.warning:
        return SUCCESS
    if ops.failed and not ops.completed and not ops.warning:
        return UNABLE_TO_PERFORM_SUBOPERATIONS
    return WARNING_SUBOPERATIONS


@functools.cache
def _tables() -> dict[str, Any]:
    text = resources.files("hounsfield.domain").joinpath("_standard/query_retrieve.json")
    loaded: dict[str, Any] = json.loads(text.read_text())
    return loaded


@functools.cache
def _model_levels(model: Model) -> tuple[Level, ...]:
    return tuple(Level(name) for name in _tables()["models"][model.value]["levels"])


@functools.cache
def _by_sop_class() -> dict[str, tuple[Model, str]]:
    found: dict[str, tuple[Model, str]] = {}
    for model in Model:
        for service in ("find", "move", "get"):
            found[model.sop_class(service)] = (model, service)
    return found


#: Modality Worklist Information Model - FIND (PS3.4 K.6.1.2).
WORKLIST_FIND = "1.2.840.10008.5.1.4.31"
