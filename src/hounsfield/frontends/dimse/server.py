"""The DIMSE server: accepts TCP connections and runs one `DimseAssociation` per connection.

- TCP_NODELAY on every socket (DESIGN.md §4: with Nagle each C-STORE-RSP waits ~40 ms for the
  delayed ACK of the previous segment).
- A limit on concurrent associations: beyond it the A-ASSOCIATE-RQ is still read, then rejected
  as transient, source service-provider (presentation), reason local-limit-exceeded
  (PS3.8 9.3.4), so the peer knows to retry later rather than seeing a reset.
- The calling AE's partition comes from the remote AE registry (DESIGN.md key idea 6).
- Everything blocking (index, blob store) runs in worker threads; the event loop only moves
  bytes, so one process serves many associations and the HTTP server on the same loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import ssl
from dataclasses import dataclass, field

from hounsfield.frontends.dimse import negotiation
from hounsfield.frontends.dimse.api import (
    Association,
    CommandField,
    HandlerRegistry,
    Message,
    Status,
)
from hounsfield.frontends.dimse.association import DimseAssociation
from hounsfield.frontends.dimse.store import StoreOutcome, StoreReceiver
from hounsfield.services.container import Services

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class DimseOptions:
    """The dimse_* settings (config/defaults.toml documents each)."""

    ae_title: str
    max_pdu: int = 131072
    max_associations: int = 64
    acse_timeout: float = 30.0
    idle_timeout: float = 300.0
    dimse_timeout: float = 60.0
    require_called_ae: bool = True
    allowed_calling_aes: tuple[str, ...] = ()
    default_partition: str = "default"
    #: Largest data set of a non-C-STORE message (identifiers, N-ACTION lists), buffered whole.
    max_identifier_bytes: int = 16 * 1024 * 1024


async def handle_echo(assoc: Association, message: Message) -> None:
    """C-ECHO SCP (PS3.7 9.1.5, PS3.4 Annex A): Success, always."""
    await assoc.send_response(message, Status.SUCCESS)


def default_registry() -> HandlerRegistry:
    """The handlers of the core: C-ECHO on Verification. Other services register theirs."""
    registry = HandlerRegistry()
    registry.register_handler(CommandField.C_ECHO_RQ, [negotiation.VERIFICATION], handle_echo)
    return registry


@dataclass
class ServerContext:
    """What every association of one server shares."""

    services: Services
    registry: HandlerRegistry
    options: DimseOptions
    policy: negotiation.Policy = field(init=False)

    def __post_init__(self) -> None:
        self.policy = negotiation.Policy(
            ae_title=self.options.ae_title,
            require_called_ae=self.options.require_called_ae,
            allowed_calling_aes=frozenset(self.options.allowed_calling_aes),
        )

    async def partition_of(self, calling_ae: str) -> str:
        """The partition of a registered remote AE, else the default one."""
        try:
            remote = await asyncio.to_thread(self.services.admin.get_remote_ae, calling_ae)
        except Exception:
            log.exception("remote AE lookup failed for %r; using the default partition", calling_ae)
            remote = None
        return remote.partition if remote is not None else self.options.default_partition

    async def store(self, assoc: DimseAssociation, message: Message, job: object | None) -> None:
        """Answer a fully received C-STORE-RQ: ingest it (durably) then respond."""
        if isinstance(job, StoreReceiver):
            try:
                outcome = await asyncio.wrap_future(
                    job.lane.submit(job.finish_and_ingest, self.services.ingest, assoc.partition)
                )
            except asyncio.CancelledError:
                # The association ended first; if the ingest had not started on the lane it
                # never will, and the staged file must not wait for the sweeper.
                job.discard()
                raise
            except Exception:
                log.exception("C-STORE ingest failed")
                job.discard()
                outcome = StoreOutcome(Status.PROCESSING_FAILURE, "internal error during ingest")
        elif isinstance(job, tuple):
            outcome = StoreOutcome(int(job[0]), str(job[1]))
        else:
            outcome = StoreOutcome(Status.PROCESSING_FAILURE, "no data set received")
        extra = {"ErrorComment": outcome.comment[:64]} if outcome.comment else None
        if assoc.audit is not None:
            assoc.audit.stored(outcome.status, outcome.study_uid, outcome.sop_class_uid)
        await assoc.send_response(message, outcome.status, command_extra=extra)


class DimseServer:
    """Listens on (host, port) and serves associations until closed."""

    def __init__(
        self, services: Services, options: DimseOptions, registry: HandlerRegistry
    ) -> None:
        self.context = ServerContext(services, registry, options)
        self._servers: list[asyncio.Server] = []
        self._tasks: dict[asyncio.Task[None], DimseAssociation] = {}
        self._active = 0

    @property
    def port(self) -> int:
        """The port of the first listener (the plain one when both are started)."""
        return self.ports[0] if self.ports else 0

    @property
    def ports(self) -> list[int]:
        return [
            int(server.sockets[0].getsockname()[1]) for server in self._servers if server.sockets
        ]

    async def start(
        self,
        host: str,
        port: int,
        *,
        tls: ssl.SSLContext | None = None,
        reuse_port: bool = False,
    ) -> None:
        """Listen on (host, port); with `tls`, every connection is a TLS one (PS3.15 Annex B:
        the TLS handshake precedes the A-ASSOCIATE-RQ). Call again for a second listener.
        With `reuse_port` (SO_REUSEPORT), several processes listen on the same port and the
        kernel spreads incoming connections over them (the dimse_workers setting)."""
        server = await asyncio.start_server(
            self._on_connect,
            host,
            port,
            backlog=256,
            ssl=tls,
            ssl_handshake_timeout=self.context.options.acse_timeout if tls else None,
            reuse_port=reuse_port or None,
        )
        self._servers.append(server)
        log.info(
            "DIMSE AE %s listening on %s:%d%s",
            self.context.options.ae_title,
            host,
            int(server.sockets[0].getsockname()[1]) if server.sockets else port,
            " (TLS)" if tls else "",
        )

    async def serve_forever(self) -> None:
        assert self._servers
        await asyncio.gather(*(server.serve_forever() for server in self._servers))

    async def _on_connect(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        sock = writer.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        over_limit = self._active >= self.context.options.max_associations
        self._active += 1
        task = asyncio.current_task()
        association = DimseAssociation(reader, writer, self.context, over_limit=over_limit)
        if task is not None:
            self._tasks[task] = association
        try:
            await association.run()
        finally:
            self._active -= 1
            if task is not None:
                self._tasks.pop(task, None)

    async def close(self) -> None:
        """Stop listening, abort open associations (A-ABORT, source service user: a local
        decision, PS3.8 9.3.8), wait for their tasks. Requests in progress are not answered;
        an instance whose ingest already ran is stored, and a resend is a duplicate."""
        for server in self._servers:
            server.close()
        for association in list(self._tasks.values()):
            association.abort_for_shutdown()
        if self._tasks:
            # Not task.cancel(): asyncio logs cancelled connection callbacks as errors (3.11).
            _, pending = await asyncio.wait(list(self._tasks), timeout=5)
            for task in pending:
                task.cancel()
        for server in self._servers:
            await server.wait_closed()
