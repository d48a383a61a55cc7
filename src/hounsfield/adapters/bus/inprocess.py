"""The in-process event bus (`inprocess://`, the embedded default).

Groups live in this process's memory: nothing survives a restart and other processes see
nothing. That is enough for the embedded archive, because the outbox in the index is the
durable log: after a restart the relay publishes from its saved position again, and the
change feed reads the outbox directly. Events published while no group exists are dropped,
so memory stays bounded by what declared groups have not yet acknowledged.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field

from hounsfield.ports.bus import BusCapabilities, Delivery
from hounsfield.ports.index import Event


@dataclass
class _Group:
    ready: deque[tuple[int, Event, bool]] = field(default_factory=deque)
    #: token -> (deadline, event): fetched, not yet acknowledged.
    inflight: dict[int, tuple[float, Event]] = field(default_factory=dict)


class InProcessBus:
    capabilities = BusCapabilities(durable=False, ordered=True, shared_groups=False)

    def __init__(self, ack_wait: float = 30.0) -> None:
        self.ack_wait = ack_wait
        self._groups: dict[str, _Group] = {}
        self._cond = threading.Condition()
        self._tokens = 0

    def publish(self, events: Sequence[Event]) -> None:
        with self._cond:
            for event in events:
                for group in self._groups.values():
                    self._tokens += 1
                    group.ready.append((self._tokens, event, False))
            self._cond.notify_all()

    def declare(self, group: str) -> None:
        with self._cond:
            self._groups.setdefault(group, _Group())

    def _expire(self, group: _Group, now: float) -> None:
        for token, (deadline, event) in list(group.inflight.items()):
            if deadline <= now:
                del group.inflight[token]
                group.ready.appendleft((token, event, True))

    def fetch(self, group: str, max_events: int, timeout: float) -> list[Delivery]:
        end = time.monotonic() + timeout
        with self._cond:
            state = self._groups.setdefault(group, _Group())
            while True:
                now = time.monotonic()
                self._expire(state, now)
                if state.ready or now >= end:
                    break
                self._cond.wait(min(end - now, 0.05))
            out: list[Delivery] = []
            while state.ready and len(out) < max_events:
                token, event, again = state.ready.popleft()
                state.inflight[token] = (now + self.ack_wait, event)
                out.append(Delivery(event, token, again))
            return out

    def ack(self, group: str, deliveries: Sequence[Delivery]) -> None:
        with self._cond:
            state = self._groups.get(group)
            for delivery in deliveries:
                if state is not None:
                    state.inflight.pop(delivery.token, None)

    def nack(self, group: str, deliveries: Sequence[Delivery]) -> None:
        with self._cond:
            state = self._groups.get(group)
            if state is None:
                return
            for delivery in reversed(deliveries):
                entry = state.inflight.pop(delivery.token, None)
                if entry is not None:
                    state.ready.appendleft((delivery.token, entry[1], True))
            self._cond.notify_all()

    def close(self) -> None:
        """Nothing to release; groups stay, since the relay and consumers share one bus."""
