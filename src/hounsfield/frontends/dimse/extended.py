"""SOP Class Extended Negotiation, acceptor side (PS3.7 D.3.3.5): each proposed sub-item is
answered with exactly the options the archive implements, and the handlers then behave as
answered.

Rules (PS3.7 D.3.3.5): a sub-item is answered only when the requestor proposed one, for a SOP
class whose presentation context was accepted, one per SOP class. Each option is a byte,
1 = requested / supported; an option is granted (1) only when it was requested *and* is
implemented, never otherwise. A sub-item for a SOP class whose Service-class-application-
information we do not define (Modality Worklist, Storage Commitment, ...) is not answered,
which means "no extended negotiation" (its defaults apply, PS3.4 B.3.1, C.5, K.5).

Query/Retrieve FIND (PS3.4 C.5.1.1, Tables C.5-1 and C.5-2), byte by byte:

1. relational-queries: yes (`domain.cfind`, C.4.1.2.2.1: keys of the levels above the query
   level may match, and their unique keys may be missing);
2. combined date-time matching: yes (C.2.2.2.5.1, `domain.cfind.combine_date_time`);
3. fuzzy semantic matching of person names: yes (C.2.2.2.1.1, the matcher's method, also
   QIDO-RS `fuzzymatching=true`);
4. timezone query adjustment: no;
5. enhanced multi-frame image conversion: no (no conversion is offered);
6. empty value matching: no;
7. multiple value matching: no.

The answer is as long as the proposal (at most these 7 bytes): the requestor learns nothing
about options it did not ask about.

Query/Retrieve MOVE and GET (C.5.2.1, C.5.3.1): 1. relational-retrieval: yes (`domain.
cretrieve` finds the parents of any entity named by its unique key); 2. enhanced multi-frame
image conversion: no.

Storage (PS3.4 B.3.1, Table B.3-2), answered whatever was proposed: level of support 2
(Level 2 / Full: every attribute stored, byte for byte), level of digital signature support 2
(the bytes are stored as received, so incoming Digital Signatures keep their integrity and are
never replaced), element coercion 0 (no element is coerced).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Final

from hounsfield.domain.qrmodel import Model

#: C-FIND options by byte position (Table C.5-2); True where implemented.
FIND_SUPPORT: Final = (True, True, True, False, False, False, False)
#: C-MOVE / C-GET options by byte position (Tables C.5-4 and C.5-6).
RETRIEVE_SUPPORT: Final = (True, False)
#: Storage SCP answer (Table B.3-2): level of support, reserved, level of digital signature
#: support, reserved, element coercion, reserved.
STORAGE_ANSWER: Final = bytes((2, 0, 2, 0, 0, 0))


@dataclass(frozen=True, slots=True)
class FindOptions:
    """The C-FIND options granted on an association for one Q/R SOP class."""

    relational: bool = False
    combined_datetime: bool = False
    fuzzy: bool = False

    @classmethod
    def from_answer(cls, answer: bytes | None) -> FindOptions:
        relational, combined, fuzzy = (answer or b"")[:3].ljust(3, b"\x00")
        return cls(relational == 1, combined == 1, fuzzy == 1)


def _grant(proposed: bytes, support: tuple[bool, ...]) -> bytes:
    """Each proposed option byte answered 1 only when requested and implemented."""
    size = min(len(proposed), len(support))
    return bytes(int(proposed[i] == 1 and support[i]) for i in range(size))


def answer(sop_class: str, proposed: bytes, storage_classes: Collection[str]) -> bytes | None:
    """The Service-class-application-information to answer for one proposed sub-item, or
    None when the SOP class has no extended negotiation we define."""
    if not proposed:
        return None
    found = Model.for_sop_class(sop_class)
    if found is not None:
        return _grant(proposed, FIND_SUPPORT if found[1] == "find" else RETRIEVE_SUPPORT)
    if sop_class in storage_classes:
        return STORAGE_ANSWER
    return None


def negotiate(
    proposed: Mapping[str, bytes], accepted: Collection[str], storage_classes: Collection[str]
) -> dict[str, bytes]:
    """The answers of the A-ASSOCIATE-AC (PS3.7 D.3.3.5.2): SOP class UID -> information,
    for the proposed sub-items whose SOP class has an accepted presentation context."""
    answers: dict[str, bytes] = {}
    for sop_class, information in proposed.items():
        if sop_class not in accepted:
            continue
        given = answer(sop_class, information, storage_classes)
        if given is not None:
            answers[sop_class] = given
    return answers
