"""Identifier syntax: UIDs (PS3.5 9.1) and partition names."""

from __future__ import annotations

import re

_UID = re.compile(r"^(0|[1-9][0-9]*)(\.(0|[1-9][0-9]*))*$")
_PARTITION = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


def is_valid_uid(uid: str) -> bool:
    """PS3.5 9.1: digits and dots, components without leading zeros, at most 64 characters.

    Leading zeros are widespread in the wild and harmless to an archive, so they are accepted;
    only the character set and length are enforced.
    """
    return 0 < len(uid) <= 64 and all(part.isdigit() and part.isascii() for part in uid.split("."))


def is_strict_uid(uid: str) -> bool:
    """PS3.5 9.1 to the letter, including the rule on leading zeros."""
    return len(uid) <= 64 and _UID.match(uid) is not None


def is_valid_partition(name: str) -> bool:
    """Partition names appear in URLs and blob keys: letters, digits, '_', '.', '-'."""
    return _PARTITION.match(name) is not None
