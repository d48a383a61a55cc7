"""DICOM audit messages (PS3.15 A.5) and the hash chain that makes the audit trail tamper-evident.

An audit message follows the DICOM schema derived from RFC 3881 (PS3.15 A.5.1): one
`EventIdentification`, one or more `ActiveParticipant`s (who, from where, in which role),
one `AuditSourceIdentification` (this archive) and `ParticipantObjectIdentification`s (the
patients, studies and queries touched). Coded values are `csd-code` / `codeSystemName` /
`originalText` attributes (PS3.15 A.5.1 "CodedValueType"). The specialisations of PS3.15
A.5.3 fix the EventID and action per message:

| message (PS3.15 clause) | EventID | action |
| --- | --- | --- |
| DICOM Instances Transferred (A.5.3.4): STOW-RS, C-STORE, WADO-RS | 110104 | C / R |
| Query (A.5.3.10): QIDO-RS, C-FIND | 110112 | E |
| Begin Transferring DICOM Instances (A.5.3.2): C-MOVE, C-GET | 110102 | E |
| DICOM Instances Accessed (A.5.3.3): DELETE | 110103 | D |
| Export (A.5.3.6): de-identified export | 110106 | R |
| User Authentication (A.5.3.11) | 110114 | E |
| Security Alert (A.5.3.12): administrative changes, lost audit records | 110113 | E |
| Audit Log Used (A.5.3.1): GET /api/audit | 110101 | R |

Records are chained: each stored record carries the SHA-256 of the previous one and its own
hash over its content (`record_hash`), so editing, deleting or reordering a record breaks the
chain at that record (`verify_chain`).

This module is pure: no I/O, no clock.
"""

from __future__ import annotations

import base64
import dataclasses
import enum
import hashlib
import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from xml.etree import ElementTree as ET

#: The hash that the first record of a chain carries as its predecessor's.
GENESIS = "0" * 64


@dataclass(frozen=True, slots=True)
class Code:
    """A coded value (PS3.15 A.5.1 CodedValueType)."""

    code: str
    scheme: str
    meaning: str


def _dcm(code: str, meaning: str) -> Code:
    return Code(code, "DCM", meaning)


class EventKind(enum.Enum):
    """The audit messages this archive emits (PS3.15 A.5.3), with their EventID (CID 400)."""

    AUDIT_LOG_USED = _dcm("110101", "Audit Log Used")
    BEGIN_TRANSFERRING = _dcm("110102", "Begin Transferring DICOM Instances")
    INSTANCES_ACCESSED = _dcm("110103", "DICOM Instances Accessed")
    INSTANCES_TRANSFERRED = _dcm("110104", "DICOM Instances Transferred")
    EXPORT = _dcm("110106", "Export")
    QUERY = _dcm("110112", "Query")
    SECURITY_ALERT = _dcm("110113", "Security Alert")
    USER_AUTHENTICATION = _dcm("110114", "User Authentication")

    @property
    def slug(self) -> str:
        """The short name used in the API and the index (`instances-transferred`...)."""
        return self.name.lower().replace("_", "-")

    @classmethod
    def from_slug(cls, slug: str) -> EventKind:
        for kind in cls:
            if kind.slug == slug:
                return kind
        raise ValueError(f"unknown audit event type {slug!r}")


class Action(enum.StrEnum):
    """EventActionCode (PS3.15 A.5.1, RFC 3881 5.1.2)."""

    CREATE = "C"
    READ = "R"
    UPDATE = "U"
    DELETE = "D"
    EXECUTE = "E"


class Outcome(enum.IntEnum):
    """EventOutcomeIndicator (RFC 3881 5.1.4)."""

    SUCCESS = 0
    MINOR_FAILURE = 4
    SERIOUS_FAILURE = 8
    MAJOR_FAILURE = 12


#: RoleIDCode values (PS3.15 A.5.2, CID 402).
SOURCE = _dcm("110153", "Source Role ID")
DESTINATION = _dcm("110152", "Destination Role ID")
APPLICATION = _dcm("110150", "Application")
DESTINATION_MEDIA = _dcm("110154", "Destination Media")

#: EventTypeCode values of Security Alert (CID 403) and User Authentication (CID 404).
NETWORK_CONFIGURATION = _dcm("110128", "Network Configuration")
SOFTWARE_CONFIGURATION = _dcm("110131", "Software Configuration")
USE_OF_RESTRICTED_FUNCTION = _dcm("110132", "Use of Restricted Function")
AUDIT_RECORDING_STOPPED = _dcm("110133", "Audit Recording Stopped")
OBJECT_SECURITY_ATTRIBUTES_CHANGED = _dcm("110135", "Object Security Attributes Changed")
LOGIN = _dcm("110122", "Login")

#: ParticipantObjectIDTypeCode values (RFC 3881 and PS3.15 A.5.2 CID 404).
PATIENT_NUMBER = Code("2", "RFC-3881", "Patient Number")
STUDY_INSTANCE_UID = _dcm("110180", "Study Instance UID")
SOP_CLASS_UID = _dcm("110181", "SOP Class UID")
NODE_ID = _dcm("110182", "Node ID")
URI = Code("12", "RFC-3881", "URI")

#: ParticipantObjectTypeCode (RFC 3881 5.5.1) and ...TypeCodeRole (5.5.2).
PERSON, SYSTEM_OBJECT = 1, 2
ROLE_PATIENT, ROLE_REPORT, ROLE_SECURITY_RESOURCE, ROLE_QUERY = 1, 3, 13, 24

#: NetworkAccessPointTypeCode (RFC 3881 5.3.4): 1 machine name, 2 IP address.
MACHINE_NAME, IP_ADDRESS = "1", "2"


@dataclass(frozen=True, slots=True)
class Participant:
    """An ActiveParticipant: a user or process, where it connected from, and its role."""

    user_id: str
    is_requestor: bool
    role: Code | None = None
    alternative_user_id: str = ""
    user_name: str = ""
    address: str = ""

    @property
    def address_type(self) -> str:
        return IP_ADDRESS if self.address and self.address[0] in "0123456789[:" else MACHINE_NAME


@dataclass(frozen=True, slots=True)
class ParticipantObject:
    """A ParticipantObjectIdentification: a patient, a study, a query, a configuration item."""

    object_id: str
    id_type: Code
    type_code: int
    role: int
    name: str = ""
    query: bytes = b""
    description: str = ""
    #: SOP classes and how many instances of each (ParticipantObjectDescription/SOPClass).
    sop_classes: tuple[tuple[str, int], ...] = ()
    details: tuple[tuple[str, str], ...] = ()


def patient(patient_id: str, name: str = "") -> ParticipantObject:
    return ParticipantObject(patient_id, PATIENT_NUMBER, PERSON, ROLE_PATIENT, name=name)


def study(uid: str, sop_classes: Iterable[tuple[str, int]] = ()) -> ParticipantObject:
    return ParticipantObject(
        uid, STUDY_INSTANCE_UID, SYSTEM_OBJECT, ROLE_REPORT, sop_classes=tuple(sop_classes)
    )


@dataclass(frozen=True, slots=True)
class AuditMessage:
    """One audit message, before it is stored (PS3.15 A.5.1)."""

    kind: EventKind
    action: Action
    time: datetime
    outcome: Outcome
    participants: tuple[Participant, ...]
    objects: tuple[ParticipantObject, ...] = ()
    outcome_description: str = ""
    type_codes: tuple[Code, ...] = ()
    #: The partition whose data the event touched ("" when none: a configuration change).
    partition: str = ""
    source_id: str = "HOUNSFIELD"
    enterprise_site_id: str = ""

    @property
    def requestor(self) -> Participant | None:
        return next((p for p in self.participants if p.is_requestor), None)

    @property
    def patient_ids(self) -> list[str]:
        return [o.object_id for o in self.objects if o.id_type == PATIENT_NUMBER]

    @property
    def study_uids(self) -> list[str]:
        return [o.object_id for o in self.objects if o.id_type == STUDY_INSTANCE_UID]


def timestamp(moment: datetime) -> str:
    """EventDateTime as xs:dateTime in UTC with microseconds (sortable as text)."""
    moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _coded(parent: ET.Element, tag: str, code: Code) -> ET.Element:
    return ET.SubElement(
        parent,
        tag,
        {"csd-code": code.code, "codeSystemName": code.scheme, "originalText": code.meaning},
    )


def to_xml(message: AuditMessage) -> str:
    """The message as an `AuditMessage` XML document (PS3.15 A.5.1), attributes in the
    schema's order so that the same message always gives the same text."""
    root = ET.Element("AuditMessage")
    event = ET.SubElement(
        root,
        "EventIdentification",
        {
            "EventActionCode": message.action.value,
            "EventDateTime": timestamp(message.time),
            "EventOutcomeIndicator": str(int(message.outcome)),
        },
    )
    _coded(event, "EventID", message.kind.value)
    for code in message.type_codes:
        _coded(event, "EventTypeCode", code)
    if message.outcome_description:
        ET.SubElement(event, "EventOutcomeDescription").text = message.outcome_description
    for p in message.participants:
        attributes = {"UserID": p.user_id}
        if p.alternative_user_id:
            attributes["AlternativeUserID"] = p.alternative_user_id
        if p.user_name:
            attributes["UserName"] = p.user_name
        attributes["UserIsRequestor"] = "true" if p.is_requestor else "false"
        if p.address:
            attributes["NetworkAccessPointID"] = p.address
            attributes["NetworkAccessPointTypeCode"] = p.address_type
        element = ET.SubElement(root, "ActiveParticipant", attributes)
        if p.role is not None:
            _coded(element, "RoleIDCode", p.role)
    source_attributes = {"AuditSourceID": message.source_id}
    if message.enterprise_site_id:
        source_attributes["AuditEnterpriseSiteID"] = message.enterprise_site_id
    source = ET.SubElement(root, "AuditSourceIdentification", source_attributes)
    # RFC 3881 5.4.3: 4 = application server process tier in a multi-tier system.
    _coded(source, "AuditSourceTypeCode", Code("4", "RFC-3881", "Application Server"))
    for o in message.objects:
        element = ET.SubElement(
            root,
            "ParticipantObjectIdentification",
            {
                "ParticipantObjectID": o.object_id,
                "ParticipantObjectTypeCode": str(o.type_code),
                "ParticipantObjectTypeCodeRole": str(o.role),
            },
        )
        _coded(element, "ParticipantObjectIDTypeCode", o.id_type)
        if o.name:
            ET.SubElement(element, "ParticipantObjectName").text = o.name
        if o.query:
            ET.SubElement(element, "ParticipantObjectQuery").text = base64.b64encode(
                o.query
            ).decode()
        for key, value in o.details:
            ET.SubElement(
                element,
                "ParticipantObjectDetail",
                {"type": key, "value": base64.b64encode(value.encode()).decode()},
            )
        if o.description:
            ET.SubElement(element, "ParticipantObjectDescription").text = o.description
        for uid, count in o.sop_classes:
            ET.SubElement(element, "SOPClass", {"UID": uid, "NumberOfInstances": str(count)})
    return ET.tostring(root, encoding="unicode")


#: Per EventID, the roles its active participants must include (PS3.15 A.5.3 tables).
_REQUIRED_ROLES: dict[str, tuple[str, ...]] = {
    "110104": ("110153", "110152"),
    "110102": ("110153", "110152"),
    "110112": ("110153", "110152"),
    "110106": ("110153",),
}
#: Per EventID, the participant object ID types it must carry.
_REQUIRED_OBJECTS: dict[str, tuple[str, ...]] = {
    "110104": ("110180",),
    "110102": ("110180",),
    "110103": ("110180",),
    "110106": ("110180",),
    "110112": (),
}


def validate_xml(text: str) -> list[str]:
    """The problems of an audit message against PS3.15 A.5.1 and the A.5.3 specialisations
    (mandatory elements and attributes, coded values, required roles and objects); empty when
    it conforms."""
    problems: list[str] = []
    try:
        root = ET.fromstring(text)  # noqa: S314 - our own output, parsed to check it
    except ET.ParseError as exc:
        return [f"not well-formed XML: {exc}"]
    if root.tag != "AuditMessage":
        problems.append(f"root element is {root.tag}, not AuditMessage")

    def coded(element: ET.Element | None, where: str) -> str:
        if element is None:
            problems.append(f"{where} is missing")
            return ""
        for attribute in ("csd-code", "codeSystemName", "originalText"):
            if not element.get(attribute):
                problems.append(f"{where} lacks {attribute}")
        return element.get("csd-code", "")

    events = root.findall("EventIdentification")
    if len(events) != 1:
        problems.append(f"{len(events)} EventIdentification elements, expected 1")
        return problems
    event = events[0]
    if event.get("EventActionCode") not in {a.value for a in Action}:
        problems.append("EventIdentification/@EventActionCode is missing or invalid")
    if not event.get("EventDateTime"):
        problems.append("EventIdentification/@EventDateTime is missing")
    if event.get("EventOutcomeIndicator") not in {str(int(o)) for o in Outcome}:
        problems.append("EventIdentification/@EventOutcomeIndicator is missing or invalid")
    event_id = coded(event.find("EventID"), "EventID")
    participants = root.findall("ActiveParticipant")
    if not participants:
        problems.append("no ActiveParticipant")
    roles = set()
    for participant in participants:
        if not participant.get("UserID"):
            problems.append("ActiveParticipant/@UserID is missing")
        if participant.get("UserIsRequestor") not in ("true", "false"):
            problems.append("ActiveParticipant/@UserIsRequestor is missing or invalid")
        role_element = participant.find("RoleIDCode")
        if role_element is not None:
            roles.add(coded(role_element, "RoleIDCode"))
    if not any(p.get("UserIsRequestor") == "true" for p in participants):
        problems.append("no ActiveParticipant is the requestor")
    for role in _REQUIRED_ROLES.get(event_id, ()):
        if role not in roles:
            problems.append(f"EventID {event_id} needs an ActiveParticipant in role {role}")
    sources = root.findall("AuditSourceIdentification")
    if len(sources) != 1 or not sources[0].get("AuditSourceID"):
        problems.append("AuditSourceIdentification/@AuditSourceID is missing")
    id_types = set()
    for obj in root.findall("ParticipantObjectIdentification"):
        if not obj.get("ParticipantObjectID"):
            problems.append("ParticipantObjectIdentification/@ParticipantObjectID is missing")
        id_types.add(coded(obj.find("ParticipantObjectIDTypeCode"), "ParticipantObjectIDTypeCode"))
    for id_type in _REQUIRED_OBJECTS.get(event_id, ()):
        if id_type not in id_types:
            problems.append(f"EventID {event_id} needs a participant object of type {id_type}")
    if event_id == "110112" and root.find("ParticipantObjectIdentification") is None:
        problems.append("a Query message needs the query as a participant object")
    return problems


# -- the hash chain -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AuditRecord:
    """A stored audit message: its place in the chain and the columns it is searched by."""

    seq: int
    event_time: str
    event_type: str
    action: str
    outcome: int
    user_id: str
    address: str
    partition: str
    patient_ids: tuple[str, ...]
    study_uids: tuple[str, ...]
    xml: str
    prev_hash: str
    hash: str = ""


def record_of(message: AuditMessage, seq: int, prev_hash: str) -> AuditRecord:
    """The record a message becomes at position `seq` after a record whose hash is
    `prev_hash`; its own hash is computed here."""
    requestor = message.requestor
    record = AuditRecord(
        seq=seq,
        event_time=timestamp(message.time),
        event_type=message.kind.slug,
        action=message.action.value,
        outcome=int(message.outcome),
        user_id=requestor.user_id if requestor else "",
        address=requestor.address if requestor else "",
        partition=message.partition,
        patient_ids=tuple(dict.fromkeys(message.patient_ids)),
        study_uids=tuple(dict.fromkeys(message.study_uids)),
        xml=to_xml(message),
        prev_hash=prev_hash,
    )
    return with_hash(record)


def record_hash(record: AuditRecord) -> str:
    """SHA-256 over every stored field of the record (canonical JSON, its own hash
    excepted), the previous record's hash included: the link of the chain."""
    content = [
        record.seq,
        record.prev_hash,
        record.event_time,
        record.event_type,
        record.action,
        record.outcome,
        record.user_id,
        record.address,
        record.partition,
        list(record.patient_ids),
        list(record.study_uids),
        record.xml,
    ]
    canonical = json.dumps(content, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def with_hash(record: AuditRecord) -> AuditRecord:
    return dataclasses.replace(record, hash=record_hash(record))


@dataclass(frozen=True, slots=True)
class ChainBreak:
    """The first record at which the chain no longer holds, and why."""

    seq: int
    reason: str


@dataclass(slots=True)
class ChainState:
    """Where a verification walking the chain in order has got to."""

    expected_seq: int = 1
    prev_hash: str = GENESIS
    checked: int = 0
    breaks: list[ChainBreak] = field(default_factory=list)


def verify_chain(records: Iterable[AuditRecord], state: ChainState | None = None) -> ChainState:
    """Walk records in sequence order and stop at the first break: a gap in the sequence (a
    record deleted), a record whose stored hash is not the hash of its content (edited), or
    one whose predecessor hash is not the previous record's hash (removed or reordered)."""
    state = state if state is not None else ChainState()
    for record in records:
        if state.breaks:
            break
        if record.seq != state.expected_seq:
            state.breaks.append(
                ChainBreak(
                    record.seq,
                    f"sequence gap: expected record {state.expected_seq}, found {record.seq}",
                )
            )
        elif record.prev_hash != state.prev_hash:
            state.breaks.append(
                ChainBreak(record.seq, "previous-record hash does not match the chain")
            )
        elif record_hash(record) != record.hash:
            state.breaks.append(ChainBreak(record.seq, "content does not match its hash"))
        else:
            state.checked += 1
            state.expected_seq = record.seq + 1
            state.prev_hash = record.hash
    return state


def chain(messages: Sequence[AuditMessage], last_seq: int, last_hash: str) -> Iterator[AuditRecord]:
    """The records that `messages` become when appended after (last_seq, last_hash)."""
    seq, prev = last_seq, last_hash
    for message in messages:
        seq += 1
        record = record_of(message, seq, prev)
        prev = record.hash
        yield record
