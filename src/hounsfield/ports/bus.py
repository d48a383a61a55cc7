"""The event bus port: at-least-once delivery of outbox events to subscribers."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from hounsfield.ports.index import Event


class EventBus(Protocol):
    def publish(self, event: Event) -> None: ...

    def subscribe(self, handler: Callable[[Event], None]) -> None:
        """Handlers must be idempotent: an event may be delivered more than once."""
