"""The audit trail: who touched which patient's data, when, from where, with what outcome.

Front ends describe what happened with the builders below (one per PS3.15 A.5.3 message) and
hand the message to `AuditService.record`, which never blocks a request: messages go to a
bounded queue that a background thread drains in batches, each batch one transaction on the
hash-chained trail in the index (ports/audit.py), then copies to the other sinks (syslog).
A full queue drops nothing silently: the writer counts what it could not take and records a
Security Alert "Audit Recording Stopped" (PS3.15 A.5.3.12, CID 403) naming how many messages
were lost, and logs it (without PHI).

Who did it is an `Actor`: the principal of an authenticated request when there is one, else
the calling AE title (DIMSE) or the client address (HTTP). Messages that name studies but not
their patients get the Patient ID from the index in the writer thread, off the request path.
"""

from __future__ import annotations

import dataclasses
import logging
import queue
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from hounsfield.domain import audit as a
from hounsfield.domain.audit import (
    Action,
    AuditMessage,
    ChainState,
    Code,
    EventKind,
    Outcome,
    Participant,
    ParticipantObject,
    verify_chain,
)
from hounsfield.domain.model import Level
from hounsfield.domain.query import MatchKey, Query, SingleValue
from hounsfield.ports.audit import AuditFilter, AuditLog, AuditSink
from hounsfield.ports.index import IndexStore

log = logging.getLogger(__name__)

_PATIENT_ID = "00100020"
_STUDY_UID = "0020000D"


@dataclass(frozen=True, slots=True)
class Actor:
    """Who asked: a user id (principal, AE title or client address) and where from."""

    user_id: str
    address: str = ""
    user_name: str = ""
    alternative_user_id: str = ""

    def participant(self, role: Code | None) -> Participant:
        return Participant(
            user_id=self.user_id or self.address or "unknown",
            is_requestor=True,
            role=role,
            alternative_user_id=self.alternative_user_id,
            user_name=self.user_name,
            address=self.address,
        )


def outcome_of_http(status: int) -> Outcome:
    """An HTTP status as an EventOutcomeIndicator: 4xx the client's failure (minor), 5xx ours."""
    if status < 400:
        return Outcome.SUCCESS
    return Outcome.MINOR_FAILURE if status < 500 else Outcome.SERIOUS_FAILURE


def outcome_of_dimse(status: int) -> Outcome:
    """A DIMSE status (PS3.7 C) as an EventOutcomeIndicator: warnings (Bxxx, 0107, 0116) are
    successes with remarks, cancel (FE00) and failures are minor failures."""
    if status == 0 or status & 0xF000 == 0xB000 or status in (0x0107, 0x0116):
        return Outcome.SUCCESS
    return Outcome.MINOR_FAILURE


@dataclass
class AuditService:
    """Builds and records audit messages; `record` is cheap and never blocks."""

    trail: AuditLog
    sinks: Sequence[AuditSink] = ()
    #: This archive as an active participant and the audit source (its AE title).
    source_id: str = "HOUNSFIELD"
    index: IndexStore | None = None
    queue_size: int = 10_000
    batch_size: int = 500
    #: Seconds over which the HTTP front end gathers one requester's successful reads of a
    #: study into one Instances Transferred message (0: one message per request).
    transfer_window: float = 0.0
    #: Messages the full queue could not take, and how many of those an alert has reported.
    dropped: int = 0
    _reported: int = 0
    _queue: queue.Queue[AuditMessage | None] = field(init=False)
    _thread: threading.Thread | None = field(default=None, init=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False)
    _sink_failures: int = field(default=0, init=False)
    #: Patient IDs of recently audited studies (the writer thread's only), bounded.
    _patients: dict[tuple[str, str], str] = field(default_factory=dict, init=False)

    def __post_init__(self) -> None:
        self._queue = queue.Queue(maxsize=max(self.queue_size, 1))

    # -- recording ---------------------------------------------------------------------------

    def record(self, message: AuditMessage) -> None:
        """Queue a message for the writer (started on first use)."""
        if self._thread is None:
            self._start()
        try:
            self._queue.put_nowait(message)
        except queue.Full:
            with self._lock:
                self.dropped += 1
                count = self.dropped
            if count == 1 or count % 1000 == 0:
                log.error("audit queue full: %d audit message(s) lost so far", count)

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until every queued message is written; False on timeout."""
        deadline = time.monotonic() + timeout
        while self._queue.unfinished_tasks or self._pending_alert():
            if time.monotonic() > deadline:
                return False
            time.sleep(0.01)
        return True

    def close(self) -> None:
        """Write what is queued, then stop the writer."""
        with self._lock:
            thread, self._thread = self._thread, None
        if thread is None:
            return
        self._queue.put(None)
        thread.join(timeout=30)

    def _pending_alert(self) -> bool:
        with self._lock:
            return self.dropped > self._reported and self._thread is not None

    def _start(self) -> None:
        with self._lock:
            if self._thread is not None:
                return
            self._thread = threading.Thread(target=self._run, name="audit-writer", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        stopping = False
        while not stopping:
            batch: list[AuditMessage] = []
            taken = 0
            wait: float | None = 0.2
            while len(batch) < self.batch_size:
                try:
                    item = self._queue.get(timeout=wait) if wait else self._queue.get_nowait()
                except queue.Empty:
                    break
                wait = None
                taken += 1
                if item is None:
                    stopping = True
                    break
                batch.append(item)
            alert = self._overflow_alert()
            if alert is not None:
                batch.insert(0, alert)
            try:
                if batch:
                    self._write(batch)
            finally:
                for _ in range(taken):
                    self._queue.task_done()

    def _overflow_alert(self) -> AuditMessage | None:
        with self._lock:
            lost = self.dropped - self._reported
            if lost <= 0:
                return None
            self._reported = self.dropped
        return self.security_alert(
            Actor(self.source_id),
            a.AUDIT_RECORDING_STOPPED,
            f"{lost} audit message(s) lost: the audit queue ({self.queue_size}) was full",
            outcome=Outcome.SERIOUS_FAILURE,
        )

    def _write(self, batch: list[AuditMessage]) -> None:
        """Append to the trail until it succeeds (nothing is dropped once taken), then copy
        to the other sinks, whose failures are logged and counted only."""
        batch = [self._with_patients(m) for m in batch]
        delay = 0.1
        while True:
            try:
                self.trail.append(batch)
                break
            except Exception:
                log.exception("could not write %d audit message(s); retrying", len(batch))
                time.sleep(delay)
                delay = min(delay * 2, 5.0)
        for sink in self.sinks:
            try:
                sink.append(batch)
            except Exception as exc:
                self._sink_failures += 1
                log.warning("audit sink %s failed: %s", type(sink).__name__, exc)

    def _with_patients(self, message: AuditMessage) -> AuditMessage:
        if self.index is None or not message.partition or message.patient_ids:
            return message
        if not message.study_uids:
            return message
        patients: list[str] = []
        for uid in message.study_uids[:20]:
            try:
                patient_id = self._patients.get((message.partition, uid))
                if patient_id is None:
                    patient_id = self.patient_of(message.partition, uid)
                    if patient_id is not None:
                        if len(self._patients) >= 10_000:
                            self._patients.clear()
                        self._patients[(message.partition, uid)] = patient_id
            except Exception:
                log.debug("no patient for an audited study", exc_info=True)
                continue
            if patient_id is not None and patient_id not in patients:
                patients.append(patient_id)
        if not patients:
            return message
        extra = tuple(a.patient(p) for p in patients)
        return dataclasses.replace(message, objects=(*extra, *message.objects))

    def patient_of(self, partition: str, study_uid: str) -> str | None:
        """The Patient ID of a stored study (None when the index has no such study)."""
        if self.index is None:
            return None
        page = self.index.query(
            Query(
                level=Level.STUDY,
                keys=(MatchKey(_STUDY_UID, "UI", SingleValue(study_uid)),),
                include=(_PATIENT_ID,),
                limit=1,
                partition=partition,
            )
        )
        for row in page.rows:
            values = row.get(_PATIENT_ID, {}).get("Value") or [""]
            return str(values[0])
        return None

    # -- reading and verifying ---------------------------------------------------------------

    def find(self, where: AuditFilter) -> list[a.AuditRecord]:
        return self.trail.find(where)

    def verify(self, progress: Callable[[int], None] | None = None) -> ChainState:
        """Check the whole chain from its first record (see domain/audit.py)."""
        state = ChainState()
        batch: list[a.AuditRecord] = []
        for record in self.trail.records():
            batch.append(record)
            if len(batch) >= 1000:
                verify_chain(batch, state)
                batch.clear()
                if progress is not None:
                    progress(state.checked)
                if state.breaks:
                    return state
        verify_chain(batch, state)
        if progress is not None:
            progress(state.checked)
        return state

    # -- message builders (PS3.15 A.5.3) -----------------------------------------------------

    def _archive(self, role: Code | None) -> Participant:
        return Participant(user_id=self.source_id, is_requestor=False, role=role)

    def _message(
        self,
        kind: EventKind,
        action: Action,
        outcome: Outcome,
        participants: Iterable[Participant],
        objects: Iterable[ParticipantObject] = (),
        *,
        partition: str = "",
        description: str = "",
        type_codes: tuple[Code, ...] = (),
    ) -> AuditMessage:
        return AuditMessage(
            kind=kind,
            action=action,
            time=datetime.now(UTC),
            outcome=outcome,
            participants=tuple(participants),
            objects=tuple(objects),
            outcome_description=description,
            type_codes=type_codes,
            partition=partition,
            source_id=self.source_id,
        )

    def instances_stored(
        self,
        actor: Actor,
        partition: str,
        studies: Mapping[str, Mapping[str, int]],
        outcome: Outcome,
        description: str = "",
    ) -> AuditMessage:
        """DICOM Instances Transferred (A.5.3.4), action Create: the sender is the source,
        the archive the destination; one study object per study, with its SOP classes."""
        return self._message(
            EventKind.INSTANCES_TRANSFERRED,
            Action.CREATE,
            outcome,
            [actor.participant(a.SOURCE), self._archive(a.DESTINATION)],
            [a.study(uid, sorted(classes.items())) for uid, classes in studies.items()],
            partition=partition,
            description=description,
        )

    def query(
        self,
        actor: Actor,
        partition: str,
        query: bytes,
        target: str,
        outcome: Outcome,
        *,
        uri: bool = False,
    ) -> AuditMessage:
        """Query (A.5.3.10): the query itself (a C-FIND identifier, or a QIDO-RS URL) is the
        participant object, identified by the SOP class (C-FIND) or as a URI (QIDO-RS)."""
        obj = ParticipantObject(
            target,
            a.URI if uri else a.SOP_CLASS_UID,
            a.SYSTEM_OBJECT,
            a.ROLE_QUERY if uri else a.ROLE_REPORT,
            query=query,
        )
        return self._message(
            EventKind.QUERY,
            Action.EXECUTE,
            outcome,
            [actor.participant(a.SOURCE), self._archive(a.DESTINATION)],
            [obj],
            partition=partition,
        )

    def transferred(
        self,
        actor: Actor,
        partition: str,
        study_uids: Sequence[str],
        outcome: Outcome,
        patient_ids: Sequence[str] = (),
    ) -> AuditMessage:
        """DICOM Instances Transferred (A.5.3.4), action Read: a retrieval (WADO-RS) from the
        archive (source) by the requestor (destination)."""
        return self._message(
            EventKind.INSTANCES_TRANSFERRED,
            Action.READ,
            outcome,
            [self._archive(a.SOURCE), actor.participant(a.DESTINATION)],
            [*(a.patient(p) for p in patient_ids), *(a.study(u) for u in study_uids)],
            partition=partition,
        )

    def begin_transfer(
        self,
        actor: Actor,
        partition: str,
        study_uids: Sequence[str],
        destination: str,
        outcome: Outcome,
    ) -> AuditMessage:
        """Begin Transferring DICOM Instances (A.5.3.2): C-MOVE / C-GET; the archive is the
        source, the move destination (or the C-GET requestor) the destination."""
        participants = [actor.participant(None), self._archive(a.SOURCE)]
        if destination and destination != actor.user_id:
            participants.append(
                Participant(user_id=destination, is_requestor=False, role=a.DESTINATION)
            )
        else:
            participants[0] = actor.participant(a.DESTINATION)
        return self._message(
            EventKind.BEGIN_TRANSFERRING,
            Action.EXECUTE,
            outcome,
            participants,
            [a.study(u) for u in study_uids],
            partition=partition,
        )

    def deleted(
        self,
        actor: Actor,
        partition: str,
        study_uids: Sequence[str],
        outcome: Outcome,
        patient_ids: Sequence[str] = (),
    ) -> AuditMessage:
        """DICOM Instances Accessed (A.5.3.3) with action Delete."""
        return self._message(
            EventKind.INSTANCES_ACCESSED,
            Action.DELETE,
            outcome,
            [actor.participant(None), self._archive(None)],
            [*(a.patient(p) for p in patient_ids), *(a.study(u) for u in study_uids)],
            partition=partition,
        )

    def exported(
        self,
        actor: Actor,
        partition: str,
        study_uids: Sequence[str],
        destination: str,
        outcome: Outcome,
        patient_ids: Sequence[str] = (),
        description: str = "",
    ) -> AuditMessage:
        """Export (A.5.3.6): data leaving the archive's control (a de-identified copy to a
        folder or another partition); the destination media is a participant."""
        return self._message(
            EventKind.EXPORT,
            Action.READ,
            outcome,
            [
                actor.participant(a.SOURCE),
                Participant(user_id=destination, is_requestor=False, role=a.DESTINATION_MEDIA),
            ],
            [*(a.patient(p) for p in patient_ids), *(a.study(u) for u in study_uids)],
            partition=partition,
            description=description,
        )

    def security_alert(
        self,
        actor: Actor,
        alert_type: Code,
        description: str,
        *,
        outcome: Outcome = Outcome.SUCCESS,
        subject: str = "",
    ) -> AuditMessage:
        """Security Alert (A.5.3.12): an administrative change (network or software
        configuration, use of a restricted function) or a failure of the audit trail."""
        objects = (
            [ParticipantObject(subject, a.URI, a.SYSTEM_OBJECT, a.ROLE_SECURITY_RESOURCE)]
            if subject
            else []
        )
        return self._message(
            EventKind.SECURITY_ALERT,
            Action.EXECUTE,
            outcome,
            [actor.participant(None), self._archive(a.APPLICATION)],
            objects,
            description=description,
            type_codes=(alert_type,),
        )

    def authentication(self, actor: Actor, outcome: Outcome, description: str = "") -> AuditMessage:
        """User Authentication (A.5.3.11): a login, successful or refused."""
        return self._message(
            EventKind.USER_AUTHENTICATION,
            Action.EXECUTE,
            outcome,
            [actor.participant(None), self._archive(a.APPLICATION)],
            description=description,
            type_codes=(a.LOGIN,),
        )

    def audit_log_used(self, actor: Actor, outcome: Outcome, query: str) -> AuditMessage:
        """Audit Log Used (A.5.3.1): someone read the trail."""
        return self._message(
            EventKind.AUDIT_LOG_USED,
            Action.READ,
            outcome,
            [actor.participant(None), self._archive(a.APPLICATION)],
            [ParticipantObject(query or "/api/audit", a.URI, a.SYSTEM_OBJECT, a.ROLE_REPORT)],
        )
