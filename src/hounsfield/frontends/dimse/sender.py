"""Sending DIMSE messages as P-DATA-TF PDUs (PS3.8 9.3.5, Annex E; PS3.7 6.3.1).

A message is its command set fragments followed by its data set fragments, each PDV no larger
than the peer's Maximum Length minus the PDV header (PS3.8 D.1.1: the limit covers the whole
P-DATA-TF variable field). The last fragment of each part carries bit 1 of the message control
header. Each PDU is handed to the transport in a single write, so PDUs from different tasks
(a handler's response, an A-ABORT from the reader) never interleave inside a PDU; `drain`
applies back-pressure so a C-GET sub-operation of 2 GB is streamed, not buffered.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterable, AsyncIterator

from hounsfield.domain.pdu import PDV_OVERHEAD, encode_pdata
from hounsfield.frontends.dimse.api import DataSource

COMMAND = 0x01
LAST = 0x02
#: Fragment size when the peer announced no limit (Maximum Length 0, PS3.8 D.1.1).
UNLIMITED_FRAGMENT = 1 << 20


def fragment_size(peer_max_length: int) -> int:
    if peer_max_length <= 0:
        return UNLIMITED_FRAGMENT
    return max(peer_max_length - PDV_OVERHEAD, 2)


async def _chunks(source: DataSource) -> AsyncIterator[bytes]:
    if isinstance(source, bytes | bytearray | memoryview):
        yield bytes(source)
    elif isinstance(source, AsyncIterable):
        async for chunk in source:
            yield chunk
    else:
        for chunk in source:
            yield chunk


class MessageSender:
    """Writes whole DIMSE messages to one association's transport."""

    def __init__(self, writer: asyncio.StreamWriter, peer_max_length: int) -> None:
        self.writer = writer
        self.fragment = fragment_size(peer_max_length)

    async def send(
        self, context_id: int, command: bytes, dataset: DataSource | None = None
    ) -> None:
        write = self.writer.write
        size = self.fragment
        for start in range(0, len(command), size):
            end = start + size
            control = COMMAND | (LAST if end >= len(command) else 0)
            write(encode_pdata(context_id, control, command[start:end]))
        if dataset is not None:
            await self._send_data(context_id, dataset)
        await self.writer.drain()

    async def _send_data(self, context_id: int, dataset: DataSource) -> None:
        """Re-chunk the source into fragments, holding back one so the last is marked."""
        size = self.fragment
        pending = bytearray()
        async for chunk in _chunks(dataset):
            pending += chunk
            while len(pending) > size:
                self.writer.write(encode_pdata(context_id, 0, bytes(pending[:size])))
                del pending[:size]
                await self.writer.drain()
        # At most one fragment's worth is left (the whole data set when it was empty).
        self.writer.write(encode_pdata(context_id, LAST, bytes(pending)))
