"""Status codes for per-instance store outcomes, shared by STOW-RS and C-STORE.

Failure Reason (0008,1197) values follow PS3.18 Table I.2-2 and PS3.4 Table B.2-1; Warning Reason
(0008,1196) values follow PS3.4 B.2.3. Codes marked "implementation-specific" use the ranges the
standard reserves for that meaning and are listed in the conformance statement
(docs/conformance.md), as PS3.18 I.2.2 asks.
"""

from __future__ import annotations

import enum


class FailureReason(enum.IntEnum):
    PROCESSING_FAILURE = 0x0110
    #: The SOP Instance UID is already stored and the duplicate policy is "reject" (PS3.7 C.4).
    DUPLICATE_SOP_INSTANCE = 0x0111
    SOP_CLASS_NOT_SUPPORTED = 0x0122
    OUT_OF_RESOURCES = 0xA700
    DATA_SET_DOES_NOT_MATCH_SOP_CLASS = 0xA900
    #: Implementation-specific (A9xx): the instance's Study Instance UID differs from the one in
    #: the request URL (PS3.18 10.5.3, "Study Instance UID mismatch" is a 409 condition).
    STUDY_UID_MISMATCH = 0xA901
    #: Implementation-specific (A9xx): the SOP Instance UID is stored under another study/series.
    UID_CONFLICT = 0xA902
    CANNOT_UNDERSTAND = 0xC000
    TRANSFER_SYNTAX_NOT_SUPPORTED = 0xC122


class WarningReason(enum.IntEnum):
    COERCION_OF_DATA_ELEMENTS = 0xB000
    ELEMENTS_DISCARDED = 0xB006
    DATA_SET_DOES_NOT_MATCH_SOP_CLASS = 0xB007
    #: Implementation-specific (Bxxx): an identical SOP Instance UID was already stored; the
    #: stored object was kept and the new one discarded (duplicate policy "keep-first").
    DUPLICATE_KEPT = 0xB111
