"""Forwarding rules: "send every CT of partition P to AE X", as durable jobs (issue 3 routing).

A rule names a destination in the remote AE registry, a trigger and filters:

- `instance`: each stored instance is forwarded on its own, as soon as it is stored;
- `series-stable` / `study-stable`: the whole series or study is sent in one association once
  it is stable (services/stability.py), the usual choice for a downstream PACS or an AI node
  that wants complete studies.

Filters are attribute/value pairs with the matching rules of C-FIND and QIDO-RS (PS3.4
C.2.2.2: single value, wildcards, ranges, UID lists), checked by the reference matcher
(domain/matching.py) against the instance's DICOM JSON; for the stable triggers, against the
first instance of the series or study (patient, study and series attributes are shared).

This service is an event consumer (DESIGN.md key idea 4): for each matching event it enqueues
a `forward` job whose idempotency key is derived from the event id, so at-least-once delivery
does not send twice because of a redelivery. The job C-STOREs the instances through the same
Storage SCU as C-MOVE (services/dicom_send.py); failures are retried with back-off by the job
worker and end in the dead-letter state, visible in `GET /api/jobs`, from where an operator
can retry them.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from hounsfield.domain import events
from hounsfield.domain.errors import HounsfieldError
from hounsfield.domain.keyvalues import matcher_for
from hounsfield.domain.matching import matches
from hounsfield.domain.model import DicomJson
from hounsfield.domain.qido import attribute_path
from hounsfield.domain.query import MatchKey
from hounsfield.ports.index import Event, IndexStore
from hounsfield.ports.jobs import Job, NewJob
from hounsfield.services.cloudevents import event_id
from hounsfield.services.dicom_send import DicomSendService, SendOutcome
from hounsfield.services.jobs import PermanentJobError

log = logging.getLogger(__name__)

FORWARD_JOB = "forward"
TRIGGERS = {
    "instance": events.INSTANCE_STORED,
    "series-stable": events.SERIES_STABLE,
    "study-stable": events.STUDY_STABLE,
}
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
#: Seconds the consumer keeps the rule list before reading it again (other replicas edit it).
RULES_TTL_SECONDS = 5.0


class InvalidRuleError(HounsfieldError):
    """A forwarding rule document is not valid; the message says which field and why."""


@dataclass(frozen=True, slots=True)
class ForwardRule:
    name: str
    destination: str
    partition: str = "default"
    trigger: str = "instance"
    filters: Mapping[str, str] = field(default_factory=dict)
    priority: int = 0
    max_attempts: int = 10
    enabled: bool = True
    keys: tuple[MatchKey, ...] = ()

    @classmethod
    def from_document(cls, name: str, doc: Mapping[str, Any]) -> ForwardRule:
        """Validate a rule as the admin API receives it (camelCase JSON)."""
        if not _NAME.fullmatch(name):
            raise InvalidRuleError(
                "a rule name is 1-64 letters, digits, '.', '_' or '-', starting with a letter"
                " or digit"
            )
        known = {"destination", "partition", "trigger", "filters", "priority", "maxAttempts"}
        known |= {"enabled", "name"}
        if unknown := sorted(set(doc) - known):
            raise InvalidRuleError(f"unknown field(s) {unknown}; known: {sorted(known)}")
        destination = doc.get("destination")
        if not isinstance(destination, str) or not 1 <= len(destination.strip()) <= 16:
            raise InvalidRuleError("'destination' must be the AE title of a registered remote AE")
        trigger = doc.get("trigger", "instance")
        if trigger not in TRIGGERS:
            raise InvalidRuleError(f"'trigger' must be one of {sorted(TRIGGERS)}")
        filters = doc.get("filters", {})
        if not isinstance(filters, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in filters.items()
        ):
            raise InvalidRuleError("'filters' must map attribute keywords or tags to strings")
        partition, priority = doc.get("partition", "default"), doc.get("priority", 0)
        max_attempts, enabled = doc.get("maxAttempts", 10), doc.get("enabled", True)
        if not isinstance(partition, str) or not partition:
            raise InvalidRuleError("'partition' must be a non-empty string")
        if not isinstance(priority, int) or isinstance(priority, bool):
            raise InvalidRuleError("'priority' must be an integer")
        if not isinstance(max_attempts, int) or not 1 <= max_attempts <= 100:
            raise InvalidRuleError("'maxAttempts' must be an integer from 1 to 100")
        if not isinstance(enabled, bool):
            raise InvalidRuleError("'enabled' must be true or false")
        return cls(
            name=name,
            destination=destination.strip(),
            partition=partition,
            trigger=trigger,
            filters=dict(filters),
            priority=priority,
            max_attempts=max_attempts,
            enabled=enabled,
            keys=_filter_keys(filters),
        )

    def document(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "destination": self.destination,
            "partition": self.partition,
            "trigger": self.trigger,
            "filters": dict(self.filters),
            "priority": self.priority,
            "maxAttempts": self.max_attempts,
            "enabled": self.enabled,
        }


def _filter_keys(filters: Mapping[str, str]) -> tuple[MatchKey, ...]:
    keys = []
    for attribute, value in filters.items():
        try:
            path = attribute_path(attribute)
            if len(path) != 1:
                raise InvalidRuleError(f"filter {attribute!r}: sequence paths are not supported")
            tag, vr = path[0]
            keys.append(MatchKey(tag, vr, matcher_for(vr, value, attribute=attribute)))
        except InvalidRuleError:
            raise
        except HounsfieldError as exc:
            raise InvalidRuleError(f"filter {attribute!r}: {exc}") from None
    return tuple(keys)


class ForwardingService:
    def __init__(self, index: IndexStore, sender: DicomSendService | None) -> None:
        self.index = index
        self.sender = sender
        self._rules: list[ForwardRule] = []
        self._loaded_at = float("-inf")
        self._lock = threading.Lock()

    # -- rules (admin API) -----------------------------------------------------------------

    def put_rule(self, rule: ForwardRule) -> bool:
        created = self.index.forward_rules.put(rule.name, rule.document())
        self._invalidate()
        return created

    def get_rule(self, name: str) -> ForwardRule | None:
        doc = self.index.forward_rules.get(name)
        return None if doc is None else ForwardRule.from_document(name, doc)

    def rules(self) -> list[ForwardRule]:
        return [ForwardRule.from_document(d["name"], d) for d in self.index.forward_rules.all()]

    def delete_rule(self, name: str) -> bool:
        deleted = self.index.forward_rules.delete(name)
        self._invalidate()
        return deleted

    def _invalidate(self) -> None:
        with self._lock:
            self._loaded_at = float("-inf")

    def _current_rules(self) -> list[ForwardRule]:
        with self._lock:
            if time.monotonic() - self._loaded_at > RULES_TTL_SECONDS:
                self._rules = [r for r in self.rules() if r.enabled]
                self._loaded_at = time.monotonic()
            return self._rules

    # -- the event consumer ------------------------------------------------------------------

    def on_event(self, event: Event) -> int:
        """Enqueue the forward jobs an event calls for; returns how many were new."""
        triggered = [
            r
            for r in self._current_rules()
            if TRIGGERS[r.trigger] == event.type and r.partition == event.partition
        ]
        if not triggered:
            return 0
        scope = _scope(event)
        if scope is None:
            return 0
        document: DicomJson | None = None
        jobs = []
        for rule in triggered:
            if rule.keys:
                if document is None:
                    document = self._first_document(event.partition, scope)
                if document is None or not matches(rule.keys, document):
                    continue
            jobs.append(
                NewJob(
                    kind=FORWARD_JOB,
                    partition=event.partition,
                    payload={**scope, "destination": rule.destination, "rule": rule.name},
                    priority=rule.priority,
                    idempotency_key=f"forward:{rule.name}:{event_id(event)}",
                    max_attempts=rule.max_attempts,
                )
            )
        created = sum(e.created for e in self.index.jobs.enqueue(jobs)) if jobs else 0
        if created:
            log.info("event %s: %d forward job(s) queued", event_id(event), created)
        return created

    def _first_document(self, partition: str, scope: dict[str, str]) -> DicomJson | None:
        for _, doc in self.index.metadata(
            partition, scope["study"], scope.get("series"), scope.get("sop")
        ):
            loaded: DicomJson = orjson.loads(doc)
            return loaded
        return None

    # -- the job -----------------------------------------------------------------------------

    def run_job(self, job: Job) -> None:
        """C-STORE what a forward job names to its destination (the `forward` job handler)."""
        if self.sender is None:
            raise PermanentJobError("this archive has no DICOM network client")
        payload = job.payload
        destination = str(payload["destination"])
        remote = self.index.get_remote_ae(destination)
        if remote is None or remote.partition != job.partition:
            raise PermanentJobError(
                f"destination AE {destination!r} is not registered in partition {job.partition!r}"
            )
        instances = self.index.instances(
            job.partition, str(payload["study"]), payload.get("series"), payload.get("sop")
        )
        if not instances:
            raise PermanentJobError("nothing to send: the instances were deleted")
        results = self.sender.send_instances(remote, instances)
        failed = [r for r in results if r.outcome == SendOutcome.FAILED]
        if failed:
            first = failed[0]
            status = "" if first.status is None else f" status {first.status:04X}"
            raise RuntimeError(
                f"{len(failed)} of {len(results)} C-STORE sub-operations to {destination}"
                f" failed ({first.reason or 'no reason'}{status})"
            )

    def forward(self, partition: str, destination: str, scope: dict[str, str]) -> int:
        """Queue a one-off forward job (admin API); returns its id."""
        [enqueued] = self.index.jobs.enqueue(
            [
                NewJob(
                    kind=FORWARD_JOB,
                    partition=partition,
                    payload={**scope, "destination": destination, "rule": None},
                )
            ]
        )
        return enqueued.id


def _scope(event: Event) -> dict[str, str] | None:
    """study / series / sop of the event, as far as its type reaches."""
    data = event.data
    study = data.get("studyInstanceUID")
    if not isinstance(study, str):
        return None
    scope = {"study": study}
    if event.type in (events.INSTANCE_STORED, events.SERIES_STABLE):
        scope["series"] = str(data["seriesInstanceUID"])
    if event.type == events.INSTANCE_STORED:
        scope["sop"] = str(data["sopInstanceUID"])
    return scope
