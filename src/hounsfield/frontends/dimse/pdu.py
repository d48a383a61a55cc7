"""Reading upper-layer PDUs from asyncio streams (PS3.8 9.3); the codec is `domain.pdu`.

Reading is the hot path of C-STORE: one `readexactly` for the header and one for the body. The
header is checked (`domain.pdu.check_header`) before the body is read, so a hostile length
never makes the server allocate.
"""

from __future__ import annotations

import asyncio

from hounsfield.domain.pdu import HEADER, Pdu, check_header


async def read_pdu(reader: asyncio.StreamReader, max_pdata: int) -> Pdu:
    """Read one PDU. `max_pdata` is the Maximum Length we announced (0 = unlimited).

    Raises PduError for a malformed header and asyncio.IncompleteReadError when the peer
    closes mid-PDU (a truncated stream)."""
    header = await reader.readexactly(6)
    pdu_type, _, length = HEADER.unpack(header)
    check_header(pdu_type, length, max_pdata)
    body = await reader.readexactly(length) if length else b""
    return Pdu(pdu_type, body)
